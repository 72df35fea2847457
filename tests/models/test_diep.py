"""Tests of models/diep.py: batched DIEP against the package's own ASE calculator."""

from __future__ import annotations

import pytest

from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

pytest.importorskip("diep")


@pytest.fixture(scope="module")
def adapter():
    diep = create_adapter("diep-fold1")
    diep.load("cpu", "float32")
    return diep


def test_card(adapter):
    card = get_card("diep-fold1")
    assert card.layer_names == ["gc_1", "gc_2", "gc_3"]
    assert card.parameters == sum(p.numel() for p in adapter.model.parameters()) == 403_181
    assert card.level_of_theory == "r2SCAN"


def test_validate_adapter_passes(adapter, crystals):
    assert validate_adapter(adapter, crystals).ok


def test_energies_match_the_diep_calculator(adapter, crystals):
    from diep.pretrained import make_calculator

    samples = crystals
    out = adapter.embed([adapter.prepare(s) for s in samples], ["gc_3"], "mean")
    assert out.pooled["gc_3"].shape == (3, 64)
    calculator = make_calculator()
    for row, sample in enumerate(samples):
        atoms = sample.atoms.copy()
        atoms.calc = calculator
        assert out.energy[row] == pytest.approx(atoms.get_potential_energy(), abs=1e-3)
