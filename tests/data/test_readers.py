"""load_file / read_file: every format, seeded samples, skipped records and error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matteralign.data.readers import ReadOptions, detect_format, load_file, read_file
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


def _write_aselmdb(path, frames, key_value_pairs=None, broken=()):
    """A fairchem-style ASE-LMDB: key ``"<id>"`` -> zlib(JSON row dict), as fairchem's
    ``LMDBDatabase._write`` stores rows (numpy arrays as nested lists), plus ``nextid``."""
    import zlib

    from ase.db.row import AtomsRow

    lmdb = pytest.importorskip("lmdb")

    env = lmdb.open(str(path), subdir=False, map_size=2**24)
    with env.begin(write=True) as txn:
        for idx, atoms in enumerate(frames, start=1):
            row = AtomsRow(atoms)
            dct = {key: row[key] for key in row.__dict__
                   if key[0] != "_" and key not in row._keys and key != "id"}
            dct["cell"] = np.asarray(dct["cell"])
            if key_value_pairs:
                dct["key_value_pairs"] = key_value_pairs[idx - 1]
            text = json.dumps(dct, default=lambda a: np.asarray(a).tolist())
            blob = b"not zlib" if idx in broken else zlib.compress(text.encode())
            txn.put(str(idx).encode("ascii"), blob)
        txn.put(b"nextid", zlib.compress(json.dumps(len(frames) + 1).encode()))
    env.close()


def test_ase_lmdb_omat24_style_energies_forces_and_a_broken_record(tmp_path, crystals):
    path = tmp_path / "omat.aselmdb"
    _write_aselmdb(path, crystals, broken=(3,))
    result = read_file(path)
    assert result.dataset.ids == ["row1", "row2", "row4"]
    sample = result.dataset.samples[1]
    assert sample.labels["energy"] == pytest.approx(-24.0)
    assert sample.labels["max_force"] == pytest.approx(0.1 * np.sqrt(3))
    np.testing.assert_allclose(sample.atoms.arrays["forces"], 0.1)
    np.testing.assert_allclose(sample.atoms.cell[:], crystals[1].cell[:])
    assert result.skipped == [f"{path}: record 3: error: Error -3 while decompressing data: "
                              "incorrect header check"]
    assert result.dataset.card.domain == "materials"


def test_ase_lmdb_omol25_style_ids_and_labels_from_keys(tmp_path):
    from ase.build import molecule
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for i, name in enumerate(("H2O", "CH4", "NH3")):
        atoms = molecule(name)
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0 - i,
                                           forces=np.zeros((len(atoms), 3)))
        frames.append(atoms)
    path = tmp_path / "omol.aselmdb"
    pairs = [{"source": f"mol-{i}", "charge": 0, "spin": 1 + i} for i in range(3)]
    _write_aselmdb(path, frames, key_value_pairs=pairs)
    options = ReadOptions(id_key="source", labels=["spin"], units={"spin": "multiplicity"})
    dataset = load_file(path, options=options)
    assert dataset.ids == ["mol-0", "mol-1", "mol-2"] and dataset.card.domain == "molecules"
    assert [s.labels["spin"] for s in dataset] == [1.0, 2.0, 3.0]
    assert {label.name: label.unit for label in dataset.card.labels}["spin"] == "multiplicity"


def test_extxyz_options_frames_keys_and_labels(tmp_path, crystals):
    from ase.io import write

    for i, atoms in enumerate(crystals):
        results = atoms.calc.results
        atoms.calc = None
        atoms.info.update(name=f"c{i}", dft_energy=results["energy"], gap=0.5 * i)
        atoms.arrays["dft_forces"] = results["forces"]
    path = tmp_path / "traj.extxyz"
    write(path, crystals)
    options = ReadOptions(id_key="name", energy_key="dft_energy", forces_key="dft_forces",
                          labels=["gap"], units={"gap": "eV"}, frames="::2")
    dataset = load_file(path, options=options)
    assert dataset.ids == ["c0", "c2"]
    assert dataset.samples[1].labels == pytest.approx(
        {"energy": -48.0, "energy_per_atom": -3.0, "max_force": 0.2 * np.sqrt(3), "gap": 1.0})
    with pytest.raises(DatasetError, match=r"smiles_column do not apply to extxyz"):
        load_file(path, options=ReadOptions(smiles_column="smiles"))
    with pytest.raises(DatasetError, match=r"frame 0: no id key 'missing'"):
        load_file(path, options=ReadOptions(id_key="missing"))
    with pytest.raises(DatasetError, match=r"frames '9' is not an index .* its 4 frames"):
        load_file(path, options=ReadOptions(frames="9"))


def test_smiles_csv_options(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("name,SMI,homo,note\na,OCC,-7.1,x\nb,c1ccccc1,n/a,y\nc,C,-9.0,z\n")
    dataset = load_file(path, options=ReadOptions(id_key="name", smiles_column="SMI",
                                                  labels=["homo"], units={"homo": "eV"}))
    assert dataset.ids == ["a", "c"]
    assert dataset.skipped == (f"{path}:3: label 'homo' is 'n/a', not a number",)
    assert dataset.card.labels[0].unit == "eV"
    with pytest.raises(DatasetError, match=r"no column 'smiles_x' \(smiles_column\)"):
        load_file(path, options=ReadOptions(smiles_column="smiles_x"))


def test_a_changed_file_is_another_dataset(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles\na,CCO\nb,CCN\n")
    before = load_file(path)
    path.write_text("id,smiles\na,CCO\nb,CCC\n")
    after = load_file(path)
    assert before.card.files[0].sha256 != after.card.files[0].sha256
    assert before.card.version != after.card.version
    assert before.fingerprint() != after.fingerprint()


def test_smi_file_through_rdkit(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text("# a comment\nOCC ethanol\nC1CC broken\nc1ccccc1\n")
    result = read_file(path)
    assert result.dataset.ids == ["ethanol", "line4"]
    assert [s.smiles for s in result.dataset] == ["CCO", "c1ccccc1"]
    assert result.skipped == [f"{path}:3: invalid SMILES 'C1CC'"]
    with pytest.raises(DatasetError, match="a .smi file has no columns"):
        read_file(path, options=ReadOptions(labels=["x"]))


def test_a_folder_of_lmdb_files_is_sampled_before_parsing(tmp_path, crystals):
    folder = tmp_path / "omat24"
    folder.mkdir()
    _write_aselmdb(folder / "a.aselmdb", crystals, broken=(2,))
    _write_aselmdb(folder / "b.aselmdb", crystals)
    everything = read_file(folder)
    assert everything.dataset.ids == ["a:row1", "a:row3", "a:row4",
                                      "b:row1", "b:row2", "b:row3", "b:row4"]
    assert everything.skipped == [f"{folder / 'a.aselmdb'}: record 2: error: Error -3 while "
                                  "decompressing data: incorrect header check"]
    # the sample is drawn over all 8 records first; only the chosen ones are parsed
    chosen = np.sort(np.random.default_rng(5).choice(8, size=3, replace=False))
    names = [f"{f}:row{i}" for f in "ab" for i in range(1, 5)]
    sample = read_file(folder, n=3, seed=5)
    assert sample.dataset.ids == [names[i] for i in chosen if names[i] != "a:row2"]
    assert len(sample.skipped) == ("a:row2" in [names[i] for i in chosen])
