"""Drug-like molecules shipped with RDKit: 3D EGFR ligands and NCI molecules with unusual elements.

Both lie outside QM9: larger (20-70 atoms) or with elements such as Si, B, P, Se, As, Sn and metals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from matteralign.data.qm9 import canonical_smiles
from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.sources import package_file, package_provenance, package_version

EGFR_FILE = "Contrib/PBF/testData/egfr.sdf"
NCI_FILE = "Data/NCI/first_5K.smi"
COMMON_ELEMENTS = frozenset({"H", "C", "N", "O", "F", "S", "Cl", "Br", "I"})
_RDKIT_LICENSE = "BSD-3-Clause (RDKit)"


def atoms_from_rdkit(mol: Any) -> Any:
    """Non-periodic ``ase.Atoms`` from an RDKit molecule with one 3D conformer (positions in Å)."""
    from ase import Atoms

    positions = np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)
    return Atoms(symbols=[atom.GetSymbol() for atom in mol.GetAtoms()], positions=positions)


def build_egfr_ligands(
    n: int | None = None, seed: int = 0, data_root: Path | None = None
) -> Dataset:
    """365 drug-like EGFR ligands with 3D coordinates and hydrogens (RDKit PBF test data).

    Ids are ``egfr-<index>-<ZINC id>``; SMILES are RDKit-canonical, from the 3D structure.
    """
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    path = package_file("rdkit", EGFR_FILE, "egfr-ligands")
    samples = []
    for index, mol in enumerate(Chem.SDMolSupplier(str(path), removeHs=False)):
        if mol is None:
            continue
        zinc = mol.GetProp("id") if mol.HasProp("id") else "mol"
        smiles = Chem.MolToSmiles(Chem.RemoveHs(mol))
        samples.append(
            Sample(id=f"egfr-{index:03d}-{zinc}", atoms=atoms_from_rdkit(mol), smiles=smiles)
        )
    card = DatasetCard(
        name="egfr-ligands",
        version=f"rdkit-{package_version('rdkit')}",
        domain="molecules",
        description="Drug-like EGFR ligands (ZINC) with CORINA 3D coordinates and hydrogens",
        provenance=package_provenance("rdkit", f"rdkit/{EGFR_FILE}"),
        license=_RDKIT_LICENSE,
    )
    return Dataset(card, samples).subset(n, seed=seed)


def build_nci_unusual(
    n: int | None = None, seed: int = 0, data_root: Path | None = None
) -> Dataset:
    """NCI molecules (first 5K set) with an element outside H, C, N, O, F, S, Cl, Br, I.

    3D structures come from ETKDG (seeded) with MMFF relaxation where MMFF has parameters;
    molecules that RDKit cannot parse or embed (2 s limit) are left out, so ``n`` gives at most
    ``n`` molecules: candidates are embedded in a seeded order until ``n`` succeed. Ids are
    ``nci-<NSC number>``.
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    path = package_file("rdkit", NCI_FILE, "nci-unusual")
    candidates = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if len(fields) < 2:
            continue
        mol = Chem.MolFromSmiles(fields[0])
        if mol is None or mol.GetNumAtoms() > 60 or len(Chem.GetMolFrags(mol)) > 1:
            continue
        if {atom.GetSymbol() for atom in mol.GetAtoms()} <= COMMON_ELEMENTS:
            continue
        candidates.append((line_number, fields[1], fields[0], mol))
    # embed in a seeded order and stop at n successes, so a small subset is fast
    order = np.random.default_rng(seed).permutation(len(candidates))
    kept: list[tuple[int, Sample]] = []
    for position in order:
        if n is not None and len(kept) >= n:
            break
        line_number, nsc, smiles, mol = candidates[position]
        mol = Chem.AddHs(mol)
        params = AllChem.ETKDGv3()
        params.randomSeed = seed + line_number
        params.maxIterations = 200
        params.timeout = 2  # seconds per molecule
        try:
            if AllChem.EmbedMolecule(mol, params) != 0:
                continue
            if AllChem.MMFFHasAllMoleculeParams(mol):
                AllChem.MMFFOptimizeMolecule(mol, maxIters=200)
        except RuntimeError:  # RDKit invariant violations for some metal complexes
            continue
        sample = Sample(
            id=f"nci-{nsc}", atoms=atoms_from_rdkit(mol), smiles=canonical_smiles(smiles) or smiles
        )
        kept.append((line_number, sample))
    samples = [sample for _, sample in sorted(kept, key=lambda item: item[0])]
    card = DatasetCard(
        name="nci-unusual",
        version=f"rdkit-{package_version('rdkit')}-etkdg-seed{seed}" + (f"+n{n}" if n else ""),
        domain="molecules",
        description="NCI molecules containing Si, B, P, Se, As, metals and other elements outside "
        "QM9/drug-like chemistry; ETKDG + MMFF 3D structures",
        provenance=package_provenance("rdkit", f"rdkit/{NCI_FILE}"),
        license=f"{_RDKIT_LICENSE}; NCI data public domain",
        out_of_distribution=True,
    )
    return Dataset(card, samples)
