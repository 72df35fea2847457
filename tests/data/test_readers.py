"""load_file / read_file: every format, seeded samples, skipped records and error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matteralign.data.readers import detect_format, load_file, read_file
from matteralign.errors import DatasetError


@pytest.fixture
def crystals():
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for i, symbol in enumerate(("Cu", "Al", "Si", "Ni")):
        atoms = bulk(symbol).repeat(2)
        forces = np.full((len(atoms), 3), 0.1 * i)
        atoms.calc = SinglePointCalculator(atoms, energy=-3.0 * len(atoms), forces=forces)
        frames.append(atoms)
    return frames


def test_extxyz_energies_forces_and_sampling(tmp_path, crystals):
    from ase.io import write

    path = tmp_path / "frames.extxyz"
    write(path, crystals)
    dataset = load_file(path)
    assert len(dataset) == 4 and dataset.card.domain == "materials"
    assert dataset.samples[1].labels == pytest.approx(
        {"energy": -24.0, "energy_per_atom": -3.0, "max_force": 0.1 * np.sqrt(3)})
    np.testing.assert_allclose(dataset.samples[1].atoms.arrays["forces"], 0.1)
    assert {label.unit for label in dataset.card.labels} == {"eV", "eV/atom", "eV/Å"}
    sample = load_file(path, n=2, seed=7)
    assert len(sample) == 2 and sample.ids == load_file(path, n=2, seed=7).ids


def test_truncated_extxyz_keeps_good_frames(tmp_path, crystals):
    from ase.io import write

    path = tmp_path / "cut.extxyz"
    write(path, crystals)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")  # last frame loses three atoms
    result = read_file(path)
    assert len(result.dataset) == 3
    assert len(result.skipped) == 1 and f"{path}: frame 3: XYZError" in result.skipped[0]
    assert "Frame has 5 atoms, expected 8" in result.skipped[0]
    assert "1 records skipped" in result.dataset.card.description


def test_ase_db(tmp_path, crystals):
    import ase.db

    path = tmp_path / "omat.db"
    with ase.db.connect(path) as db:
        for atoms in crystals:
            db.write(atoms)
    dataset = load_file(path, n=3, seed=0)
    assert len(dataset) == 3 and all(s.id.startswith("row") for s in dataset)
    assert all("energy" in s.labels and "forces" in s.atoms.arrays for s in dataset)


def test_mptrj_json_with_a_bad_frame(tmp_path):
    structure = {
        "lattice": {"matrix": [[3.6, 0, 0], [0, 3.6, 0], [0, 0, 3.6]]},
        "sites": [{"species": [{"element": "Cu", "occu": 1}], "abc": [0, 0, 0]}],
    }
    data = {
        "mp-30": {
            "mp-30-0-0": {"structure": structure, "corrected_total_energy": -3.7,
                          "force": [[0.0, 0.0, 0.1]], "stress": [0.1] * 6},
            "mp-30-0-1": {"structure": {"sites": "broken"}, "corrected_total_energy": -3.6},
        }
    }  # fmt: skip
    path = tmp_path / "mptrj.json"
    path.write_text(json.dumps(data))
    result = read_file(path)
    assert result.dataset.ids == ["mp-30-0-0"]
    assert result.dataset.samples[0].labels["energy"] == -3.7
    assert result.dataset.samples[0].atoms.info["mp_id"] == "mp-30"
    assert "mp-30-0-1" in result.skipped[0]


def test_cif_blocks(tmp_path):
    from ase.build import bulk
    from ase.io import write

    path = tmp_path / "two.cif"
    write(path, [bulk("NaCl", "rocksalt", a=5.6), bulk("Cu")])
    dataset = load_file(path)
    assert len(dataset) == 2
    assert dataset.samples[0].atoms.get_chemical_formula(empirical=True) == "ClNa"


def test_smiles_csv_skips_invalid(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles,logp\na,OCC,0.5\nb,C1CC,1.0\nc,c1ccccc1,2.1\n")
    result = read_file(path)
    assert result.dataset.ids == ["a", "c"]
    assert result.dataset.samples[0].smiles == "CCO"
    assert result.dataset.samples[1].labels == {"logp": 2.1}
    assert result.skipped == [f"{path}:3: invalid SMILES 'C1CC'"]


def test_fasta_and_pdb(tmp_path, shared_data):
    fasta = tmp_path / "p.fasta"
    fasta.write_text(">s1\nMKTAYI\n>s2\nACDEFG\n")
    assert load_file(fasta).card.domain == "proteins"
    folder = shared_data / "proteins/pfam_domains"
    dataset = load_file(folder, n=3, seed=1)
    assert len(dataset) == 3 and dataset.modalities == {"sequence", "backbone"}
    assert detect_format(folder) == "pdb"


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_file(tmp_path / "missing.extxyz")
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    with pytest.raises(DatasetError, match="empty.extxyz is empty"):
        load_file(empty)
    garbage = tmp_path / "garbage.extxyz"
    garbage.write_text("not an xyz file\n")
    with pytest.raises(DatasetError,
                       match=r"garbage.extxyz: no readable record .*garbage.extxyz: frame 0: "):
        load_file(garbage)
    unknown = tmp_path / "data.parquet"
    unknown.write_text("x")
    with pytest.raises(DatasetError, match="unknown suffix '.parquet'"):
        load_file(unknown)
    bad_json = tmp_path / "mptrj.json"
    bad_json.write_text('{"mp-1": {')
    with pytest.raises(DatasetError, match=r"mptrj.json:1: invalid JSON"):
        load_file(bad_json)


def test_lmdb_message_without_package(tmp_path):
    try:
        import lmdb  # noqa: F401
    except ImportError:
        path = tmp_path / "omat.aselmdb"
        path.write_bytes(b"\0" * 16)
        with pytest.raises(DatasetError, match="pip install lmdb"):
            load_file(path)
    else:
        pytest.skip("lmdb is installed")
