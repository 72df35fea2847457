"""MACE adapter checks that run inside the ``mace`` model environment.

Not collected by the main suite (the name does not start with ``test_``):
``tests/models/test_mace.py`` runs this file with the environment's Python, passing the tiny
checkpoint in ``MATTERALIGN_TINY_MACE``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from ase.build import bulk

from matteralign.data.sample import Sample
from matteralign.errors import ModelNotFoundError, SampleError
from matteralign.models.registry import create_adapter
from matteralign.models.validate import validate_adapter

warnings.filterwarnings("ignore", category=UserWarning)


@pytest.fixture(scope="module")
def checkpoint() -> str:
    return os.environ["MATTERALIGN_TINY_MACE"]


@pytest.fixture
def samples(crystals) -> list[Sample]:
    """Si diamond, NaCl and water: the crystals of tests/models/conftest.py."""
    return crystals


def test_invariant_layers_pass_validate_adapter(checkpoint, samples):
    adapter = create_adapter("mace-mp-0-medium", checkpoint=checkpoint)
    report = validate_adapter(adapter, samples)  # shapes, determinism, batched, invariance
    assert report.ok
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    assert {layer: v.shape for layer, v in out.pooled.items()} == {
        "interaction_0": (3, 8), "interaction_1": (3, 8)}


def test_equivariant_layers_are_the_full_irreps(checkpoint, samples):
    adapter = create_adapter("mace-mp-0-medium-equivariant", checkpoint=checkpoint)
    report = validate_adapter(adapter, samples, check_invariance=False)
    assert report.ok
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    # 8x0e + 8x1o = 8 + 24 columns in block 0; the last block carries 8 scalars only
    assert out.pooled["interaction_0"].shape == (3, 32)
    assert out.pooled["interaction_1"].shape == (3, 8)


@pytest.mark.parametrize("invariants_only", [True, False])
def test_per_atom_features_equal_mace_get_descriptors(checkpoint, samples, invariants_only):
    """The reference is mace-torch's own MACECalculator.get_descriptors (all layers, float64)."""
    from mace.calculators import MACECalculator

    calculator = MACECalculator(model_paths=checkpoint, device="cpu", default_dtype="float64")
    adapter = create_adapter("mace-mp-0-medium", checkpoint=checkpoint,
                             invariants_only=invariants_only)
    adapter.load("cpu", "float64")
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean",
                        per_item=True)
    for index, sample in enumerate(samples):
        reference = calculator.get_descriptors(sample.atoms, invariants_only=invariants_only)
        ours = np.concatenate([out.per_item[layer][index] for layer in adapter.layer_names],
                              axis=1)
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)
        energy = calculator.get_potential_energy(sample.atoms)
        np.testing.assert_allclose(out.energy[index], energy, rtol=1e-6)


def test_checkpoint_hash_and_uncovered_elements(checkpoint):
    import hashlib
    from pathlib import Path

    adapter = create_adapter("mace-mp-0-small", checkpoint=checkpoint)
    adapter.load()
    assert adapter.checkpoint_sha256 == hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    with pytest.raises(SampleError, match="element.*Po.*not covered by mace-mp-0-small"):
        adapter.prepare(Sample("polonium", atoms=bulk("Po", "sc", a=3.35)))


def test_published_name_without_network_names_the_model(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing cached: the loader downloads
    import mace.calculators.foundations_models as foundations

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(foundations, "_urlretrieve_with_timeout", offline)
    adapter = create_adapter("mace-off23-small")
    with pytest.raises(ModelNotFoundError, match="mace-off23-small.*checkpoint="):
        adapter.load()
