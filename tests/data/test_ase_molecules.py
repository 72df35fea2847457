"""G2 and S22 from ASE."""

from __future__ import annotations

import pytest

from matteralign.data.ase_molecules import build_g2, build_s22


def test_g2_has_162_molecules_with_odd_elements():
    g2 = build_g2()
    assert len(g2) == 162
    symbols = {s for sample in g2 for s in sample.atoms.get_chemical_symbols()}
    assert {"Li", "Na", "Si", "P", "Cl", "Al"} <= symbols
    assert g2["g2-CH4"].atoms.get_chemical_formula() == "CH4"


def test_s22_water_dimer_interaction_energy():
    s22 = build_s22()
    assert len(s22) == 22 * 5
    # S22 water dimer: -4.97 kcal/mol = -0.2155 eV (CCSD(T)/CBS)
    energy = s22["s22-Water_dimer-1.0"].labels["interaction_energy"]
    assert energy * 23.0605 == pytest.approx(-4.97, abs=0.02)
    assert s22.card.labels[0].unit == "eV"
