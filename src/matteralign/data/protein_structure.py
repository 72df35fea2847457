"""Protein chains from structure files (PDB, mmCIF via biotite) or Biopython models, as backbones.

A chain becomes a ProteinStructure: its one-letter sequence and (L, 4, 3) N/CA/C/O coordinates in Å.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from matteralign.data.sample import BACKBONE_ATOMS, ProteinStructure
from matteralign.errors import DatasetError

THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E",
    "GLY": "G", "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F",
    "PRO": "P", "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V",
    "MSE": "M", "SEC": "U", "PYL": "O", "HSD": "H", "HSE": "H", "HIE": "H", "HID": "H",
}  # fmt: skip
MIN_RESIDUES = 5


def backbone_from_atom_array(atoms: Any, where: str) -> ProteinStructure:
    """The backbone of one chain in a biotite ``AtomArray`` (first altloc, hydrogens ignored).

    Residues are the amino-acid residues of the array in order; a residue without CA is skipped;
    missing N, C or O stay NaN. Non-standard residues read as ``X``.

    Raises
    ------
    DatasetError
        If the chain has fewer than ``MIN_RESIDUES`` amino-acid residues.
    """
    import biotite.structure as struc

    amino = atoms[struc.filter_amino_acids(atoms) & (atoms.element != "H")]
    starts = struc.get_residue_starts(amino) if len(amino) else np.array([], dtype=int)
    bounds = np.append(starts, len(amino))
    sequence: list[str] = []
    rows: list[np.ndarray] = []
    for begin, end in zip(bounds[:-1], bounds[1:], strict=True):
        residue = amino[begin:end]
        coords = np.full((len(BACKBONE_ATOMS), 3), np.nan)
        for k, name in enumerate(BACKBONE_ATOMS):
            hit = np.flatnonzero(residue.atom_name == name)
            if len(hit):
                coords[k] = residue.coord[hit[0]]
        if np.isnan(coords[1]).any():
            continue
        sequence.append(THREE_TO_ONE.get(str(residue.res_name[0]), "X"))
        rows.append(coords)
    if len(sequence) < MIN_RESIDUES:
        raise DatasetError(
            f"{where}: {len(sequence)} amino-acid residues with CA; need >= {MIN_RESIDUES}"
        )
    return ProteinStructure(sequence="".join(sequence), backbone=np.stack(rows))


def read_chains(path: Path | str, chain: str | None = None) -> list[tuple[str, ProteinStructure]]:
    """Protein chains of the first model of a PDB or mmCIF file (``.pdb``, ``.ent``, ``.cif``,
    ``.bcif``, optionally gzipped), as ``(chain id, backbone)`` pairs.

    Chains with fewer than ``MIN_RESIDUES`` amino acids (ligands, DNA, water) are left out.

    Raises
    ------
    DatasetError
        If the file is missing, unreadable or holds no protein chain; the message names the file.
    """
    import gzip
    import io

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"structure file {path} does not exist")
    name = path.name.lower().removesuffix(".gz")
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt") as handle:
                text = io.StringIO(handle.read())
        else:
            text = None
        if name.endswith((".cif", ".mmcif")):
            from biotite.structure.io import pdbx

            block = pdbx.CIFFile.read(text or str(path))
            atoms = pdbx.get_structure(block, model=1, altloc="first")
        elif name.endswith(".bcif"):
            from biotite.structure.io import pdbx

            atoms = pdbx.get_structure(pdbx.BinaryCIFFile.read(str(path)), model=1, altloc="first")
        else:
            from biotite.structure.io import pdb

            atoms = pdb.PDBFile.read(text or str(path)).get_structure(model=1, altloc="first")
    except DatasetError:
        raise
    except Exception as error:  # noqa: BLE001 - biotite raises many types for malformed files
        raise DatasetError(
            f"structure file {path}: cannot parse ({type(error).__name__}: {error})"
        ) from None
    chain_ids = list(dict.fromkeys(str(c) for c in atoms.chain_id))
    if chain is not None:
        chain_ids = [c for c in chain_ids if c == chain]
    chains = []
    for chain_id in chain_ids:
        try:
            chains.append(
                (
                    chain_id,
                    backbone_from_atom_array(
                        atoms[atoms.chain_id == chain_id], f"{path} chain {chain_id}"
                    ),
                )
            )
        except DatasetError:
            continue
    if not chains:
        wanted = f" chain {chain!r}" if chain is not None else ""
        raise DatasetError(
            f"structure file {path}: no protein chain{wanted} with >= {MIN_RESIDUES} residues"
        )
    return chains


def backbone_from_biopython(structure: Any, where: str) -> ProteinStructure:
    """The backbone of the first chain of a Biopython ``Structure`` (e.g. from PeptideBuilder)."""
    chain = next(structure[0].get_chains())
    sequence, rows = [], []
    for residue in chain:
        coords = np.full((len(BACKBONE_ATOMS), 3), np.nan)
        for k, name in enumerate(BACKBONE_ATOMS):
            if name in residue:
                coords[k] = residue[name].coord
        sequence.append(THREE_TO_ONE.get(residue.get_resname(), "X"))
        rows.append(coords)
    if not rows:
        raise DatasetError(f"{where}: structure has no residues")
    return ProteinStructure(sequence="".join(sequence), backbone=np.stack(rows))
