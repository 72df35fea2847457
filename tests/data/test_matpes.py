"""MatPES elemental references from matcalc."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matcalc")

from matteralign.data import matpes  # noqa: E402


@pytest.fixture(scope="module")
def pbe():
    return matpes.build_pbe()


def test_89_elements_with_energies_and_forces(pbe):
    assert len(pbe) == 89
    assert {label.unit for label in pbe.card.labels} == {"eV", "eV/atom"}
    for sample in pbe:
        assert sample.atoms.pbc.all()
        assert sample.atoms.arrays["forces"].shape == (len(sample.atoms), 3)
        assert sample.labels["energy_per_atom"] == pytest.approx(
            sample.labels["energy"] / len(sample.atoms)
        )


def test_cohesive_energy_is_energy_per_atom_minus_isolated_atom(pbe):
    for sample in pbe:
        expected = sample.labels["energy_per_atom"] - sample.labels["isolated_atom_energy"]
        assert sample.labels["cohesive_energy_per_atom"] == pytest.approx(expected, abs=1e-6)


def test_relaxed_references_have_small_forces(pbe):
    largest = np.array([np.abs(s.atoms.arrays["forces"]).max() for s in pbe])
    assert np.median(largest) < 0.01  # eV/Å: most are relaxed to symmetry
    assert largest.max() < 1.5  # a few (S, N, actinides) keep residual forces


def test_r2scan_differs_from_pbe(pbe):
    r2scan = matpes.build_r2scan()
    assert len(r2scan) == 89
    assert r2scan.fingerprint() != pbe.fingerprint()
    assert pbe.fingerprint() == matpes.build_pbe().fingerprint()
