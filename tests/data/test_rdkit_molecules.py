"""RDKit-shipped drug-like molecules: EGFR ligands and NCI molecules with unusual elements."""

from __future__ import annotations

from matteralign.data.rdkit_molecules import COMMON_ELEMENTS, build_egfr_ligands, build_nci_unusual


def test_egfr_ligands_have_3d_structures_and_smiles():
    from rdkit import Chem

    ligands = build_egfr_ligands()
    assert len(ligands) == 365
    sample = ligands.samples[0]
    assert sample.atoms.positions[:, 2].std() > 0.1  # 3D, not flat
    heavy = sum(1 for s in sample.atoms.get_chemical_symbols() if s != "H")
    assert Chem.MolFromSmiles(sample.smiles).GetNumHeavyAtoms() == heavy


def test_nci_unusual_elements_subset_is_deterministic():
    first = build_nci_unusual(n=2, seed=2)
    assert len(first) == 2
    assert first.card.out_of_distribution
    for sample in first:
        assert set(sample.atoms.get_chemical_symbols()) - COMMON_ELEMENTS
    assert build_nci_unusual(n=2, seed=2).fingerprint() == first.fingerprint()
