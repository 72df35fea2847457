"""Semi-empirical labels for any structure: GFN2-xTB (molecules) or GFN1-xTB energies and forces.

Uses the ``tblite`` package; about 10 ms per QM9-size molecule on one core.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from matteralign.data.sample import Label, Sample
from matteralign.data.sources import package_dir

BOHR_ANGSTROM = 0.529177210903  # Å per bohr (CODATA 2018)
HARTREE_EV = 27.211386245988  # eV per hartree
XTB_LABELS = [
    Label(name="xtb_energy", unit="eV", description="GFN2-xTB total energy (tblite)"),
]


def xtb_available() -> bool:
    """Whether the ``tblite`` package is installed."""
    try:
        package_dir("tblite", "xtb labels")
    except Exception:  # noqa: BLE001
        return False
    return True


def xtb_energy_forces(
    atoms: Any, method: str = "GFN2-xTB", charge: float = 0.0
) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces ((N, 3) eV/Å) of one structure, single point.

    Call it inside ``threadpoolctl.threadpool_limits(1)`` (as :func:`label_with_xtb` does):
    tblite's OpenMP threads slow it down 100x on a busy machine.

    Parameters
    ----------
    atoms : ase.Atoms
        Positions in Å; periodic cells are passed with their lattice.
    method : {"GFN2-xTB", "GFN1-xTB"}
    charge : float
        Total charge in e.

    Raises
    ------
    RuntimeError
        If the SCF does not converge (tblite's error, e.g. for strongly distorted structures).
    """
    from tblite.interface import Calculator

    kwargs = {}
    if atoms.pbc.any():
        kwargs = {"lattice": atoms.cell[:] / BOHR_ANGSTROM, "periodic": np.asarray(atoms.pbc)}
    calculator = Calculator(
        method, atoms.numbers, atoms.positions / BOHR_ANGSTROM, charge=charge, **kwargs
    )
    calculator.set("verbosity", 0)
    result = calculator.singlepoint()
    energy = float(result.get("energy")) * HARTREE_EV
    forces = -np.asarray(result.get("gradient")) * HARTREE_EV / BOHR_ANGSTROM
    return energy, forces


def with_xtb_labels(sample: Sample, method: str = "GFN2-xTB") -> Sample:
    """A copy of ``sample`` with label ``xtb_energy`` (eV) and ``arrays["xtb_forces"]`` (eV/Å).

    When the SCF fails the sample is returned unlabelled with the error in
    ``atoms.info["xtb_error"]``.
    """
    atoms = sample.atoms.copy()
    try:
        energy, forces = xtb_energy_forces(atoms, method)
    except RuntimeError as error:
        atoms.info["xtb_error"] = str(error).splitlines()[0] if str(error) else "SCF failed"
        return Sample(id=sample.id, atoms=atoms, smiles=sample.smiles, labels=dict(sample.labels))
    atoms.arrays["xtb_forces"] = forces
    labels = {**sample.labels, "xtb_energy": energy}
    return Sample(id=sample.id, atoms=atoms, smiles=sample.smiles, labels=labels)


def label_with_xtb(samples: list[Sample], method: str = "GFN2-xTB") -> list[Sample]:
    """:func:`with_xtb_labels` for every sample, with OpenMP limited to one thread."""
    import tblite.interface  # noqa: F401 - load libgomp first, so that the limit reaches it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return [with_xtb_labels(sample, method) for sample in samples]
