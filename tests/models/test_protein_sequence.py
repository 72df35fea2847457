"""Tests of models/protein_sequence.py: sequence checks, vocabulary file, padded token batch."""

from __future__ import annotations

import pytest

from matteralign.data.sample import Sample
from matteralign.errors import SampleError
from matteralign.models.protein_sequence import (
    read_vocabulary,
    residue_token_batch,
    standard_sequence,
)


def test_standard_sequence_checks() -> None:
    assert standard_sequence(Sample("a", sequence="acd"), "m") == "ACD"
    with pytest.raises(SampleError, match=r"'X'.*position 2"):
        standard_sequence(Sample("x", sequence="AXC"), "m")
    with pytest.raises(SampleError, match="at most 2"):
        standard_sequence(Sample("long", sequence="ACD"), "m", max_length=2)


def test_read_vocabulary_skips_blank_lines(tmp_path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[SEP]\n\nA\n")
    assert read_vocabulary(path) == {"[PAD]": 0, "[SEP]": 1, "A": 3}


def test_residue_token_batch_pads_and_marks_residues() -> None:
    vocab = {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[H]": 3, "A": 4, "C": 5}
    ids, attention, residues, last = residue_token_batch(["AC", "A"], vocab, ["[CLS]", "[H]"])
    assert ids.tolist() == [[1, 3, 4, 5, 2], [1, 3, 4, 2, 0]]
    assert attention.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert residues.tolist() == [[False, False, True, True, False],
                                 [False, False, True, False, False]]
    assert last == [4, 3]
