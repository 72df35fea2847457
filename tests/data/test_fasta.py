"""FASTA reader: malformed records are reported with their line."""

from __future__ import annotations

import pytest

from matteralign.data.fasta import read_fasta
from matteralign.errors import DatasetError


def test_records_and_skips(tmp_path):
    path = tmp_path / "x.fasta"
    path.write_text(">a first\nMKT\nAYI*\n>b\n\n>c\nMK1\n")
    records, skipped = read_fasta(path)
    assert records == [("a first", "MKTAYI", 1)]
    assert skipped[0].endswith("record 'b' has no sequence") and ":4:" in skipped[0]
    assert ":6:" in skipped[1] and "'1'" in skipped[1]


def test_not_fasta(tmp_path):
    path = tmp_path / "y.fasta"
    path.write_text("MKT\n")
    with pytest.raises(DatasetError, match=r"y.fasta:1: sequence before"):
        read_fasta(path)
