"""mlearn (Zuo et al. 2020): PBE energies, forces and stresses of Cu, Ge, Li, Mo, Ni and Si.

Read from ``<data_root>/materials/mlearn/<El>.json.gz`` (JARVIS format, energies per atom).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from matteralign.data.sample import Dataset, DatasetCard, Label, Sample
from matteralign.data.sources import read_source_line, require_data_files
from matteralign.data.structure_dicts import atoms_from_jarvis_dict, attach_forces
from matteralign.errors import DatasetError

NAME = "mlearn"
ELEMENTS = ("Cu", "Ge", "Li", "Mo", "Ni", "Si")
FOLDER = "materials/mlearn"
VACUUM_GAP = 4.0  # Å: an empty slab this thick along a lattice vector marks a surface cell
LABELS = [
    Label(name="energy", unit="eV", description="total PBE energy (per-atom source value x N)"),
    Label(name="energy_per_atom", unit="eV/atom", description="PBE energy per atom"),
]
GROUPS = ("surface", "vacancy", "strain", "aimd", "small-cell")


def _vacuum_gap(atoms) -> float:  # noqa: ANN001 - ase.Atoms
    """Largest empty gap (Å) between atomic planes along any lattice vector, wrapping around."""
    fractional = atoms.get_scaled_positions(wrap=True)
    lengths = atoms.cell.lengths()
    largest = 0.0
    for axis in range(3):
        values = np.sort(fractional[:, axis])
        gaps = np.diff(np.concatenate([values, values[:1] + 1.0]))
        largest = max(largest, float(gaps.max()) * float(lengths[axis]))
    return largest


def infer_group(atoms, max_forces: float, bulk_size: int) -> str:  # noqa: ANN001
    """Configuration group of an mlearn record, inferred from its structure and forces.

    The JARVIS copy has no group tags, so: a cell with a vacuum gap > ``VACUUM_GAP`` is a
    ``surface``; a bulk cell with one atom fewer than the largest bulk cell is a ``vacancy``; a
    largest bulk cell with zero forces is a ``strain`` (homogeneously deformed perfect crystal),
    with forces an ``aimd`` snapshot; anything else is a ``small-cell``.
    """
    if _vacuum_gap(atoms) > VACUUM_GAP:
        return "surface"
    if len(atoms) == bulk_size - 1:
        return "vacancy"
    if len(atoms) == bulk_size:
        return "strain" if max_forces < 1e-4 else "aimd"
    return "small-cell"


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """The 1,730 mlearn configurations.

    Returns
    -------
    Dataset
        Samples ``mlearn-<El>-<group>-<jid>`` (groups: see :func:`infer_group`), periodic cells in
        Å; labels ``energy`` (eV) and ``energy_per_atom`` (eV/atom); forces (N, 3) in eV/Å in
        ``atoms.arrays["forces"]``; the 6 stress values as the source gives them (kBar, assumed)
        in ``atoms.info["stress_source"]``; the group in ``atoms.info["group"]``.

    Raises
    ------
    DatasetError
        If ``data_root`` is missing or lacks ``materials/mlearn/<El>.json.gz``.
    """
    paths = require_data_files(data_root, [f"{FOLDER}/{el}.json.gz" for el in ELEMENTS], NAME)
    samples = []
    for element, path in zip(ELEMENTS, paths, strict=True):
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                records = json.load(handle)
        except (OSError, EOFError, json.JSONDecodeError) as error:
            raise DatasetError(f"{path}: cannot read mlearn file ({error})") from None
        structures = []
        for record in records:
            where = f"{path.name} jid {record.get('jid')}"
            atoms = atoms_from_jarvis_dict(record["atoms"], where)
            attach_forces(atoms, record["forces"], where)
            structures.append((record, atoms))
        bulk_size = max(len(a) for _, a in structures if _vacuum_gap(a) <= VACUUM_GAP)
        for record, atoms in structures:
            group = infer_group(atoms, float(np.abs(atoms.arrays["forces"]).max()), bulk_size)
            atoms.info["group"] = group
            atoms.info["stress_source"] = np.asarray(record["stresses"], dtype=np.float64)
            per_atom = float(record["total_energy"])
            labels = {"energy": per_atom * len(atoms), "energy_per_atom": per_atom}
            sample_id = f"mlearn-{element}-{group}-{record['jid']}"
            samples.append(Sample(id=sample_id, atoms=atoms, labels=labels))
    root = paths[0].parent
    card = DatasetCard(
        name=NAME,
        version="alignn-a8be0be",
        domain="materials",
        description="mlearn PBE set: Cu, Ge, Li, Mo, Ni, Si ground state, strained, surface, "
        "vacancy and AIMD cells (groups inferred from structure, in the ids); forces in eV/Å on "
        "atoms.arrays['forces']",
        provenance=read_source_line(root)
        or "usnistgov/alignn@a8be0be:.../mlearn_data/<El>/id_prop.json",
        license="mlearn data BSD-3-Clause; alignn copy under NIST terms (public domain in the US)",
        labels=LABELS,
        citation="Zuo et al., J. Phys. Chem. A 124, 731 (2020)",
    )
    return Dataset(card, samples).subset(n, seed=seed)
