"""Tests of models/sevennet.py: batched SevenNet against the package's own ASE calculator."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from ase import Atoms

from matteralign.data.sample import Sample
from matteralign.errors import SampleError
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.sevennet import scalar_columns
from matteralign.models.validate import validate_adapter

pytest.importorskip("sevenn")


@pytest.fixture(scope="module")
def adapter():
    sevennet = create_adapter("sevennet-0")
    sevennet.load("cpu", "float32")
    return sevennet


def test_scalar_columns_follow_the_irreps_layout():
    from e3nn import o3

    columns = scalar_columns(o3.Irreps("2x0e+1x1o+3x0e+1x0o"))
    assert columns.tolist() == [0, 1, 5, 6, 7]


def test_validate_adapter_passes(adapter, crystals):
    assert validate_adapter(adapter, crystals).ok


def test_energies_match_the_sevennet_calculator(adapter, crystals):
    from sevenn.calculator import SevenNetCalculator

    samples = crystals
    out = adapter.embed([adapter.prepare(s) for s in samples], ["interaction_4"], "mean")
    calculator = SevenNetCalculator("7net-0", device="cpu")
    for row, sample in enumerate(samples):
        atoms = sample.atoms.copy()
        atoms.calc = calculator
        assert out.energy[row] == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
    assert out.pooled["interaction_4"].shape == (3, 128)


def test_full_equivariant_features_contain_the_invariants(adapter, crystals):
    full = copy.copy(adapter)  # same loaded model, other options
    full.options = {**adapter.options, "invariants_only": False}
    items = [adapter.prepare(s) for s in crystals[:2]]
    scalars = adapter.embed(items, ["interaction_0"], "mean").pooled["interaction_0"]
    tensors = full.embed(items, ["interaction_0"], "mean").pooled["interaction_0"]
    assert tensors.shape == (2, 128 + 64 * 3 + 32 * 5)  # 128x0e+64x1e+32x2e
    np.testing.assert_allclose(tensors[:, :128], scalars, rtol=1e-6)


def test_uncovered_element_fails_naming_it(adapter):
    sample = Sample("og", atoms=Atoms("Og", positions=[[0, 0, 0]], cell=[4, 4, 4], pbc=True))
    with pytest.raises(SampleError, match="Og"):
        adapter.prepare(sample)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model_id", "n_blocks"),
    [("sevennet-0-22may2024", 5), ("sevennet-l3i5", 5), ("sevennet-mf-0", 5)],
)
def test_other_bundled_checkpoints_embed(model_id, n_blocks, crystals):
    card = get_card(model_id)
    assert len(card.layers) == n_blocks
    other = create_adapter(model_id)
    other.load("cpu", "float32")
    samples = crystals[:2]
    out = other.embed([other.prepare(s) for s in samples], card.layer_names, "mean")
    assert all(v.shape[0] == 2 and np.isfinite(v).all() for v in out.pooled.values())
    # Si diamond from PBE-level potentials: about -5.4 eV/atom.
    assert out.energy[0] / 8 == pytest.approx(-5.4, abs=0.15)
