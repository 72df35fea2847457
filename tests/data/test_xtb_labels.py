"""GFN2-xTB energies and forces through tblite."""

from __future__ import annotations

import pytest

pytest.importorskip("tblite")

from matteralign.data.xtb_labels import HARTREE_EV, xtb_energy_forces  # noqa: E402


def test_water_energy_and_forces_are_consistent():
    import tblite.interface  # noqa: F401
    from ase.build import molecule
    from threadpoolctl import threadpool_limits

    water = molecule("H2O")
    with threadpool_limits(1):
        energy, forces = xtb_energy_forces(water)
        # GFN2-xTB total energy of water near its minimum is about -5.070 Hartree
        assert energy / HARTREE_EV == pytest.approx(-5.070, abs=0.003)
        assert forces.shape == (3, 3)
        # forces are minus the gradient: compare with a central finite difference
        step = 1e-3
        plus, minus = water.copy(), water.copy()
        plus.positions[1, 2] += step
        minus.positions[1, 2] -= step
        numeric = -(xtb_energy_forces(plus)[0] - xtb_energy_forces(minus)[0]) / (2 * step)
    assert forces[1, 2] == pytest.approx(numeric, abs=2e-3)
