"""Tests of models/matgl_models.py: M3GNet and TensorNet from the shared weights folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.errors import ModelNotFoundError
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

pytest.importorskip("matgl")


def loaded(model_id: str, data_root, **options):
    adapter = create_adapter(model_id, data_root=str(data_root), **options)
    adapter.load("cpu", "float32")
    return adapter


@pytest.fixture(scope="module")
def m3gnet(shared_data):
    return loaded("m3gnet-matpes-pbe", shared_data)


@pytest.fixture(scope="module")
def tensornet(shared_data):
    return loaded("tensornet-matpes-pbe", shared_data)


def reference_energies(adapter, samples):
    """Energies from matgl's own per-structure ASE calculator on the same weights."""
    import matgl
    from matgl.ext.ase import PESCalculator

    calculator = PESCalculator(matgl.load_model(adapter.weights_path()))
    energies = []
    for sample in samples:
        atoms = sample.atoms.copy()
        atoms.calc = calculator
        energies.append(atoms.get_potential_energy())
    return np.array(energies)


def test_tensor_invariants_are_rotation_invariant():
    from scipy.spatial.transform import Rotation

    from matteralign.models.matgl_models import tensor_invariants

    features = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    rotation = torch.as_tensor(Rotation.random(random_state=1).as_matrix())
    rotated = rotation @ features @ rotation.T
    np.testing.assert_allclose(tensor_invariants(rotated), tensor_invariants(features), atol=1e-10)
    assert tensor_invariants(features).shape == (4, 15)


def test_m3gnet_validates_and_matches_matgl(m3gnet, crystals):
    samples = crystals
    assert validate_adapter(m3gnet, samples).ok
    out = m3gnet.embed([m3gnet.prepare(s) for s in samples], ["gc_3"], "mean")
    assert out.pooled["gc_3"].shape == (3, 64)
    np.testing.assert_allclose(out.energy, reference_energies(m3gnet, samples), atol=1e-3)


def test_tensornet_validates_and_matches_matgl(tensornet, crystals):
    samples = crystals
    assert validate_adapter(tensornet, samples).ok
    out = tensornet.embed([tensornet.prepare(s) for s in samples], tensornet.layer_names, "mean")
    assert {k: v.shape[1] for k, v in out.pooled.items()} == {"gc_1": 384, "gc_2": 384,
                                                              "readout": 128}
    np.testing.assert_allclose(out.energy, reference_energies(tensornet, samples), atol=1e-3)


def test_tensornet_full_tensors(tensornet, crystals):
    import copy

    full = copy.copy(tensornet)
    full.options = {**tensornet.options, "invariants_only": False}
    out = full.embed([full.prepare(crystals[0])], ["gc_2"], "mean")
    assert out.pooled["gc_2"].shape == (1, 128 * 9)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model_id", ["m3gnet-mp-2021.2.8", "m3gnet-matpes-r2scan", "tensornet-matpes-r2scan"]
)
def test_other_matgl_cards_embed(model_id, shared_data, crystals):
    adapter = loaded(model_id, shared_data)
    card = get_card(model_id)
    assert card.parameters == sum(p.numel() for p in adapter.model.parameters())
    out = adapter.embed([adapter.prepare(s) for s in crystals[:2]], card.layer_names, "mean")
    assert all(np.isfinite(v).all() and v.shape[0] == 2 for v in out.pooled.values())
    assert np.isfinite(out.energy).all()


def test_missing_weights_say_what_to_pass(tmp_path):
    adapter = create_adapter("m3gnet-matpes-pbe", data_root=str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="not found"):
        adapter.load("cpu", "float32")
