"""Backbones from PDB/mmCIF files and Biopython structures."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.data.protein_structure import read_chains
from matteralign.errors import DatasetError


def test_pfam_file_backbone(shared_data):
    path = shared_data / "proteins/pfam_domains/PF00041_1TEN_A.pdb"
    ((chain, protein),) = read_chains(path)
    assert chain == "A"
    # 90 residues in the file; the first (ARG 802) has only C and O, so no CA: left out
    assert len(protein.sequence) == 89
    assert protein.sequence.startswith("LDAPSQIEVKDVTDTTALIT")
    n_ca = np.linalg.norm(protein.backbone[:, 1] - protein.backbone[:, 0], axis=1)
    assert n_ca.mean() == pytest.approx(1.46, abs=0.02)
    ca_ca = np.linalg.norm(np.diff(protein.backbone[:, 1], axis=0), axis=1)
    assert np.median(ca_ca) == pytest.approx(3.80, abs=0.05)


def test_mmcif_round_trip(tmp_path, shared_data):
    from biotite.structure.io import pdb, pdbx

    source = shared_data / "proteins/pfam_domains/PF00240_2BWF_A.pdb"
    atoms = pdb.PDBFile.read(str(source)).get_structure(model=1, altloc="first")
    cif = pdbx.CIFFile()
    pdbx.set_structure(cif, atoms)
    target = tmp_path / "2bwf.cif"
    cif.write(str(target))
    ((_, from_pdb),) = read_chains(source)
    ((_, from_cif),) = read_chains(target)
    assert from_cif.sequence == from_pdb.sequence
    np.testing.assert_allclose(from_cif.backbone, from_pdb.backbone, atol=1e-3)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_chains(tmp_path / "missing.pdb")
    empty = tmp_path / "water.pdb"
    empty.write_text(
        "HETATM    1  O   HOH A   1       0.000   0.000   0.000  1.00  0.00           O\nEND\n"
    )
    with pytest.raises(DatasetError, match="water.pdb: no protein chain"):
        read_chains(empty)
