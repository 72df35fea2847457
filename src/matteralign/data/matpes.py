"""MatPES elemental reference crystals (PBE and r2SCAN), with DFT energies, forces and stresses.

Read from the ``matcalc`` package, which ships the 89 ground-state elemental structures of MatPES.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from matteralign.data.sample import Dataset, DatasetCard, Label, Sample
from matteralign.data.sources import package_file, package_provenance, package_version
from matteralign.data.structure_dicts import atoms_from_pymatgen_dict, attach_forces

FILES = {
    "PBE": "elemental_refs/MatPES-PBE-Element-Refs.json.gz",
    "r2SCAN": "elemental_refs/MatPES-r2SCAN-Element-Refs.json.gz",
}
LABELS = [
    Label(name="energy", unit="eV", description="total DFT energy of the cell"),
    Label(name="energy_per_atom", unit="eV/atom", description="total energy per atom"),
    Label(
        name="cohesive_energy_per_atom", unit="eV/atom", description="relative to isolated atoms"
    ),
    Label(name="isolated_atom_energy", unit="eV", description="energy of the isolated atom"),
]
FORCES_NOTE = (
    "forces in eV/Å on atoms.arrays['forces']; stress (6 values, as the source gives) in "
    "atoms.info['stress_source']"
)


def build(
    functional: str = "PBE", n: int | None = None, seed: int = 0, data_root: Path | None = None
) -> Dataset:
    """The MatPES elemental references of one functional.

    Parameters
    ----------
    functional : {"PBE", "r2SCAN"}
    n, seed : subset options.
    data_root : unused; the data ship in the ``matcalc`` wheel.

    Returns
    -------
    Dataset
        Samples ``matpes-<functional>-<element>-<mp id>``: periodic crystals (Å) with labels in eV;
        forces (N, 3) in eV/Å are in ``atoms.arrays["forces"]``.
    """
    name = f"matpes-{functional.lower()}-refs"
    path = package_file("matcalc", FILES[functional], name)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = json.load(handle)
    samples = []
    for element in sorted(records):
        record = records[element]
        where = f"{path.name} element {element}"
        atoms = atoms_from_pymatgen_dict(record["structure"], where)
        attach_forces(atoms, record["forces"], where)
        atoms.info["stress_source"] = np.asarray(record["stress"], dtype=np.float64)
        mp_id = record.get("matpes_id") or record.get("provenance", {}).get("original_mp_id", "")
        labels = {
            "energy": float(record["energy"]),
            "energy_per_atom": float(record["energy"]) / len(atoms),
            "cohesive_energy_per_atom": float(record["cohesive_energy_per_atom"]),
            "isolated_atom_energy": float(record["energy_atomic"]),
        }
        sample_id = f"matpes-{functional.lower()}-{element}-{mp_id}".rstrip("-")
        samples.append(Sample(id=sample_id, atoms=atoms, labels=labels))
    card = DatasetCard(
        name=name,
        version=f"matcalc-{package_version('matcalc')}",
        domain="materials",
        description=f"MatPES {functional} ground-state crystals of 89 elements (1-84 atoms) with "
        f"DFT energies; {FORCES_NOTE}",
        provenance=package_provenance("matcalc", f"matcalc/{FILES[functional]}"),
        license="BSD-3-Clause (matcalc); MatPES data CC-BY-4.0",
        labels=LABELS,
        citation="Kaplan et al., MatPES, arXiv:2503.04070 (2025)",
    )
    return Dataset(card, samples).subset(n, seed=seed)


def build_pbe(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """MatPES PBE elemental references (89 crystals); see :func:`build`."""
    return build("PBE", n=n, seed=seed, data_root=data_root)


def build_r2scan(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """MatPES r2SCAN elemental references (89 crystals); see :func:`build`."""
    return build("r2SCAN", n=n, seed=seed, data_root=data_root)
