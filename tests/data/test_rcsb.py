"""RCSB loader, on local files only (no network in tests)."""

from __future__ import annotations

import shutil

import pytest

from matteralign.data import rcsb
from matteralign.errors import DatasetError


def test_reads_local_folder(tmp_path, shared_data):
    for name in ("PF00240_2BWF_A.pdb", "PF00249_1GUU_A.pdb"):
        shutil.copy(shared_data / "proteins/pfam_domains" / name, tmp_path / name)
    dataset = rcsb.load(folder=tmp_path)
    assert dataset.ids == ["PF00240_2BWF_A_A", "PF00249_1GUU_A_A"]
    assert len(dataset["PF00249_1GUU_A_A"].sequence) == 50


def test_existing_files_are_not_downloaded(tmp_path, shared_data):
    shutil.copy(shared_data / "proteins/pfam_domains/PF00240_2BWF_A.pdb", tmp_path / "x.pdb")
    from biotite.structure.io import pdb, pdbx

    atoms = pdb.PDBFile.read(str(tmp_path / "x.pdb")).get_structure(model=1)
    cif = pdbx.CIFFile()
    pdbx.set_structure(cif, atoms)
    cif.write(str(tmp_path / "2bwf.cif"))
    dataset = rcsb.load(["2BWF"], folder=tmp_path)
    assert dataset.ids == ["2bwf_A"]


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="no PDB/mmCIF files"):
        rcsb.load(folder=tmp_path)
