"""Tests of models/antiberty_model.py against AntiBERTy's own tokenizer and hidden states."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.data.sample import Sample
from matteralign.errors import SampleError
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

pytest.importorskip("antiberty")

@pytest.fixture(scope="module")
def antiberty():
    adapter = create_adapter("antiberty")
    adapter.load()
    return adapter


def test_card() -> None:
    card = get_card("antiberty")
    assert card.layer_names == [str(i) for i in range(9)] and card.last_layer == "8"
    assert card.license == "MIT" and card.input == "sequence" and card.domain == ["proteins"]


def test_passes_validation(antiberty, vh, sequence_samples) -> None:
    assert len(vh) == 120
    report = validate_adapter(antiberty, sequence_samples, check_invariance=False)
    assert report.ok and "batched==single[8]" in report.passed


def test_pooling_matches_the_packaged_tokenizer(antiberty, vh) -> None:
    from antiberty.AntiBERTyRunner import VOCAB_FILE
    from transformers import BertTokenizer

    tokenizer = BertTokenizer(vocab_file=VOCAB_FILE, do_lower_case=False)
    ids = tokenizer(" ".join(vh), return_tensors="pt")["input_ids"]
    assert ids.shape == (1, 122)
    with torch.no_grad():
        states = antiberty.model_(input_ids=ids, output_hidden_states=True).hidden_states
    out = antiberty.embed([vh], ["0", "8"], "mean", per_item=True)
    for layer in ("0", "8"):
        reference = states[int(layer)][0].numpy()
        np.testing.assert_allclose(out.pooled[layer][0], reference[1:-1].mean(axis=0),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out.per_item[layer][0], reference[1:-1], rtol=1e-4,
                                   atol=1e-5)
    cls = antiberty.embed([vh], ["8"], "cls").pooled["8"][0]
    np.testing.assert_allclose(cls, states[8][0, 0].numpy(), rtol=1e-4, atol=1e-5)
    sep = antiberty.embed([vh], ["8"], "last").pooled["8"][0]
    np.testing.assert_allclose(sep, states[8][0, -1].numpy(), rtol=1e-4, atol=1e-5)


def test_non_standard_residues_fail_the_sample(antiberty) -> None:
    with pytest.raises(SampleError, match=r"'X'.*position 3"):
        antiberty.prepare(Sample("x", sequence="EVXLV"))
    with pytest.raises(SampleError, match="at most 510"):
        antiberty.prepare(Sample("long", sequence="A" * 511))
    assert antiberty.prepare(Sample("lower", sequence="evqlv")) == "EVQLV"
    assert antiberty.cost("EVQLV") == 7
