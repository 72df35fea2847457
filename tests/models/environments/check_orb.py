"""Orb adapter checks that run inside the ``orb`` model environment.

Not collected by the main suite: ``tests/models/test_orb.py`` runs this file with the
environment's Python, passing the folder of the tiny checkpoints in ``MATTERALIGN_TINY_ORB``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from matteralign.data.sample import Sample
from matteralign.errors import ModelNotFoundError
from matteralign.models.card import LayerInfo
from matteralign.models.orb import OrbAdapter
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter
from tests.models.environments.tiny_orb import architecture

warnings.filterwarnings("ignore", category=UserWarning)
TWO_STEPS = [LayerInfo(name="message_passing_0"), LayerInfo(name="message_passing_1")]


def tiny(kind: str, **options) -> OrbAdapter:
    """The tiny ``kind`` Orb under a copy of the matching published card with two layers."""
    card = get_card(f"orb-v3-{kind}-inf-omat").model_copy(update={"layers": TWO_STEPS})
    weights = Path(os.environ["MATTERALIGN_TINY_ORB"]) / f"{kind}.ckpt"
    return OrbAdapter(card, weights=str(weights), architecture=architecture(kind), **options)


@pytest.fixture
def samples(crystals) -> list[Sample]:
    """Si diamond, NaCl and water: the crystals of tests/models/conftest.py."""
    return crystals


@pytest.mark.parametrize("kind", ["conservative", "direct"])
def test_tiny_orb_passes_validate_adapter(kind, samples):
    adapter = tiny(kind)
    assert validate_adapter(adapter, samples, rtol=1e-4, atol=1e-4).ok
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    assert {layer: v.shape for layer, v in out.pooled.items()} == {
        "message_passing_0": (3, 16), "message_passing_1": (3, 16)}


@pytest.mark.parametrize("kind", ["conservative", "direct"])
def test_last_layer_and_energy_equal_orb_models_own_prediction(kind, samples):
    """The reference: orb-models' own batched ``predict`` (forces included), float64."""
    from orb_models.forcefield.atomic_system import ase_atoms_to_atom_graphs
    from orb_models.forcefield.base import batch_graphs

    adapter = tiny(kind)
    adapter.load("cpu", "float64")
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean",
                        per_item=True)
    import torch

    def graphs():  # fresh each time: a conservative predict rewrites the edge vectors
        return batch_graphs([ase_atoms_to_atom_graphs(s.atoms, adapter.system_config,
                                                      edge_method="knn_scipy") for s in samples])

    predicted = adapter.model.predict(graphs())
    np.testing.assert_allclose(out.energy, predicted["energy"].detach().numpy(), rtol=1e-9)
    with torch.no_grad():
        nodes = adapter.model.model(graphs())["node_features"].numpy()
    # the runner stores float32 features; the energy stays float64
    np.testing.assert_allclose(np.concatenate(out.per_item["message_passing_1"]), nodes,
                               rtol=1e-6, atol=1e-7)


def test_weights_hash_and_offline_error(monkeypatch, tmp_path):
    adapter = tiny("direct")
    adapter.load()
    weights = Path(os.environ["MATTERALIGN_TINY_ORB"]) / "direct.ckpt"
    assert adapter.checkpoint_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    import cached_path

    def offline(*args, **kwargs):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(cached_path, "cached_path", offline)
    with pytest.raises(ModelNotFoundError, match="orb-v2.*weights=<path"):
        create_adapter("orb-v2").load()
