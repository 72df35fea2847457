"""Tests of models/iglm_model.py against IgLM's own model and tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, SampleError
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

pytest.importorskip("iglm")

@pytest.fixture(scope="module")
def iglm_s():
    adapter = create_adapter("iglm-s")
    adapter.load()
    return adapter


def test_cards_flag_the_academic_license() -> None:
    for model_id, n_layers in (("iglm", 4), ("iglm-s", 3)):
        card = get_card(model_id)
        assert card.layer_names == [str(i) for i in range(n_layers + 1)]
        assert "academic" in card.license_note.lower() and "JHU" in card.license
        assert card.input == "sequence" and card.extra == "proteins"


@pytest.mark.parametrize("model_id", ["iglm-s", "iglm"])
def test_passes_validation(model_id: str, iglm_s, vh, sequence_samples) -> None:
    adapter = iglm_s if model_id == "iglm-s" else create_adapter(model_id)
    report = validate_adapter(adapter, sequence_samples, check_invariance=False)
    assert report.ok
    width = 192 if model_id == "iglm-s" else 512
    out = adapter.embed([vh], [adapter.card.last_layer], "mean")
    assert out.pooled[adapter.card.last_layer].shape == (1, width)


def test_pooling_matches_the_packaged_model(iglm_s, vh) -> None:
    from iglm import IgLM

    reference_model = IgLM("IgLM-S")
    tokens = ["[HEAVY]", "[HUMAN]", *vh, "[SEP]"]
    ids = torch.tensor([reference_model.tokenizer.convert_tokens_to_ids(tokens)])
    with torch.no_grad():
        states = reference_model.model(ids, output_hidden_states=True).hidden_states
    out = iglm_s.embed([vh], ["0", "3"], "mean", per_item=True)
    for layer in ("0", "3"):
        reference = states[int(layer)][0].numpy()
        np.testing.assert_allclose(out.pooled[layer][0], reference[2:-1].mean(axis=0),
                                   rtol=1e-4, atol=1e-5)
        assert out.per_item[layer][0].shape == (120, 192)
    last = iglm_s.embed([vh], ["3"], "last").pooled["3"][0]
    np.testing.assert_allclose(last, states[3][0, -1].numpy(), rtol=1e-4, atol=1e-5)


def test_conditioning_options_and_bad_residues(iglm_s, vh) -> None:
    light = create_adapter("iglm-s", chain="light", species="mouse")
    light.model_, light.vocab_ = iglm_s.model_, iglm_s.vocab_
    heavy = iglm_s.embed([vh], ["3"], "mean").pooled["3"]
    assert not np.allclose(light.embed([vh], ["3"], "mean").pooled["3"], heavy)
    with pytest.raises(AdapterError, match="species"):
        create_adapter("iglm-s", species="dog").load()
    with pytest.raises(SampleError, match="'B'"):
        iglm_s.prepare(Sample("b", sequence="EVQBL"))
