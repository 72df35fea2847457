"""Bad input: broken structures, unreadable files, messy proteins and a bad configuration are each
answered by an error naming the culprit, and never sink a run or leave a wrong number behind."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from typer.testing import CliRunner

from matteralign.analysis.embedding_file import load_embedding_file
from matteralign.cli.main import app
from matteralign.config import load_config
from matteralign.data.fasta import read_fasta
from matteralign.data.ideal_backbones import ideal_backbone
from matteralign.data.protein_structure import read_chains
from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.structure_checks import structure_problem
from matteralign.errors import ConfigError, DatasetError, SampleError, StoreError
from matteralign.run.embed import embed_dataset
from matteralign.store.embedding_store import EmbeddingStore
from tests.reliability.faulty_models import CARDS, GeometryAdapter

BINARY = bytes(range(256)) * 8
runner = CliRunner()


# ---- structures ---------------------------------------------------------------------------------

BAD_STRUCTURES = {
    "overlap": (Atoms("CHO", positions=[[0, 0, 0], [0, 0, 0.05], [1.2, 0, 0]]),
                r"atom 0 and atom 1 are 0.05 Å apart \(closer than 0.1 Å: overlapping atoms\)"),
    "duplicate-image": (Atoms("Cu2", positions=[[0, 0, 0], [3.6, 0, 0]], cell=[3.61] * 3,
                              pbc=True),
                        r"atom \d and atom \d are 0.01 Å apart"),
    "flat-cell": (Atoms("Cu", cell=[[2, 0, 0], [4, 0, 0], [0, 0, 3]], pbc=True),
                  r"periodic cell has zero volume .* set pbc=False"),
    "no-cell": (Atoms("Cu", pbc=True), r"periodic cell has zero volume"),
    "enormous-cell": (Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[1e6] * 3, pbc=True),
                      r"periodic cell vector of 1e\+06 Å is longer than 1000 Å .* pbc=False"),
    "dummy-atom": (Atoms("XH", positions=[[0, 0, 0], [1, 0, 0]]),
                   r"atomic number\(s\) 0 are no chemical element"),
    "beyond-oganesson": (Atoms(numbers=[200, 1], positions=[[0, 0, 0], [1, 0, 0]]),
                         r"atomic number\(s\) 200 are no chemical element"),
    "nan-position": (Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]]),
                     r"has NaN or inf atom positions; fix the structure"),
    "xenon": (Atoms("XeH", positions=[[0, 0, 0], [1.7, 0, 0]]),
              r"element\(s\) Xe not covered by toy-geometry"),
}


@pytest.mark.parametrize("name", sorted(BAD_STRUCTURES))
def test_bad_structure_is_a_sample_error_naming_sample_and_problem(name):
    atoms, reason = BAD_STRUCTURES[name]
    adapter = GeometryAdapter(CARDS["toy-geometry"])
    with pytest.raises(SampleError, match=rf"sample '{name}': {reason}"):
        adapter.prepare(Sample(id=name, atoms=atoms))


def test_sound_structures_pass_including_slabs_and_big_vacuum():
    slab = Atoms("Cu2", positions=[[0, 0, 0], [1.3, 1.3, 0]], cell=[[2.6, 0, 0], [0, 2.6, 0],
                                                                   [0, 0, 0]],
                 pbc=[True, True, False])
    sound = [molecule("H2"), bulk("Cu"), bulk("Si", cubic=True).repeat(3), slab,
             Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[999.0] * 3, pbc=True)]
    assert [structure_problem(atoms) for atoms in sound] == [None] * 5
    # the thresholds are options of every adapter: a study may be stricter
    adapter = GeometryAdapter(CARDS["toy-geometry"], min_distance=0.8, max_cell_length=500)
    with pytest.raises(SampleError, match="atom 0 and atom 1 are 0.737 Å apart"):
        adapter.prepare(Sample(id="h2", atoms=molecule("H2")))
    assert structure_problem(sound[-1], max_cell_length=500.0).startswith("periodic cell vector")


def test_a_run_over_bad_structures_records_each_and_embeds_the_rest_exactly(tmp_path):
    good = [Sample(id=f"ok-{i}", atoms=molecule(name))
            for i, name in enumerate(["H2O", "CH4", "NH3", "CO2"])]
    bad = [Sample(id=name, atoms=atoms) for name, (atoms, _) in sorted(BAD_STRUCTURES.items())]
    samples = []  # good and bad interleaved, so every shard mixes them
    for i, sample in enumerate(bad):
        samples += [good[i], sample] if i < len(good) else [sample]
    card = DatasetCard(name="messy", version="1", domain="molecules", description="bad input",
                       provenance="test", license="CC0")
    store = EmbeddingStore(tmp_path)
    adapter = GeometryAdapter(CARDS["toy-geometry"])
    summary = embed_dataset(adapter, Dataset(card, samples), store, shard_size=5)
    assert (summary.n_embedded, summary.n_failed) == (4, len(BAD_STRUCTURES))
    stored = store.load("messy", "toy-geometry", "last", n_shards=summary.n_shards)
    assert stored.ids == [s.id for s in good]
    reasons = dict(stored.failures)
    for name, (_, reason) in BAD_STRUCTURES.items():
        assert re.search(reason, reasons[name]), (name, reasons[name])
    alone = adapter.embed([adapter.prepare(s) for s in good], ["last"], "mean").pooled["last"]
    np.testing.assert_array_equal(stored.values, alone)
    assert np.isfinite(stored.values).all() and np.isfinite(stored.energy).all()


# ---- files --------------------------------------------------------------------------------------

def test_fasta_empty_binary_and_broken_records_name_file_and_line(tmp_path):
    empty, binary, messy = tmp_path / "e.fasta", tmp_path / "b.fasta", tmp_path / "m.fasta"
    empty.write_bytes(b"")
    binary.write_bytes(BINARY)
    messy.write_text(">ok\nMKTAYIAK\n>digits\nMK12\n>truncated\n")
    with pytest.raises(DatasetError, match=f"FASTA file {empty} holds no records"):
        read_fasta(empty)
    with pytest.raises(DatasetError, match=f"FASTA file {binary}: cannot read"):
        read_fasta(binary)
    records, skipped = read_fasta(messy)
    assert records == [("ok", "MKTAYIAK", 1)]
    assert skipped == [f"{messy}:3: record 'digits' has non-amino-acid letters ['1', '2']",
                       f"{messy}:5: record 'truncated' has no sequence"]
    headless = tmp_path / "h.fasta"
    headless.write_text("MKTAYIAK\n")
    with pytest.raises(DatasetError, match=f"{headless}:1: sequence before the first '>'"):
        read_fasta(headless)


@pytest.mark.parametrize("suffix", [".pdb", ".cif", ".bcif"])
@pytest.mark.parametrize("kind", ["empty", "binary"])
def test_unreadable_structure_files_name_the_file(tmp_path, suffix, kind):
    path = tmp_path / f"{kind}{suffix}"
    path.write_bytes(b"" if kind == "empty" else BINARY)
    with pytest.raises(DatasetError, match=f"structure file {path}"):
        read_chains(path)


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".safetensors"])
@pytest.mark.parametrize("kind", ["empty", "binary", "truncated"])
def test_unreadable_embedding_files_are_store_errors_naming_the_file(tmp_path, suffix, kind):
    path = tmp_path / f"{kind}{suffix}"
    if kind == "truncated":
        _write_embedding_file(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"" if kind == "empty" else BINARY)
    try:
        load_embedding_file(path)
    except StoreError as error:
        assert str(path) in str(error)
        return
    raise AssertionError("no error")


def _write_embedding_file(path):
    from safetensors.numpy import save_file

    ids, values = ["a", "b", "c"], np.eye(3)
    if path.suffix == ".npz":
        np.savez(path, ids=np.array(ids), embeddings=values)
    elif path.suffix == ".parquet":
        pd.DataFrame({"id": ids, "x": [1.0, 2.0, 3.0]}).to_parquet(path)
    else:
        save_file({"embeddings": values}, str(path), metadata={"ids": json.dumps(ids)})


@pytest.mark.parametrize(("content", "message"), [
    (b"", "must hold a mapping of settings, not NoneType"),
    (BINARY, "cannot be read as a YAML text file"),
    (b"name: x\ndatasets: [{name: qm9, n: 10\n", "is not valid YAML"),
    (b"name: x\ndatasets: []\nmodels: []\nshard_size: many\n", "shard_size: Input should be"),
])
def test_empty_binary_truncated_or_mistyped_config_is_a_config_error(tmp_path, content, message):
    path = tmp_path / "study.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"{path}.*{message}"):
        load_config(path)
    result = runner.invoke(app, ["embed", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message.split(":")[0] in result.output
    assert not (tmp_path / "out").exists()


def test_unknown_model_dataset_or_metric_stops_before_any_work(tmp_path):
    base = {"name": "typo", "datasets": [{"name": "elemental-crystals", "n": 4}],
            "models": [{"id": "composition"}], "metrics": ["cknna-k10"]}
    cases = [({"models": [{"id": "chgnet-0.3"}]}, "unknown model 'chgnet-0.3'. Did you mean"),
             ({"datasets": [{"name": "elemental-crystal"}]},
              "unknown dataset 'elemental-crystal'; known datasets:"),
             ({"metrics": ["cknna-k1O"]}, "unknown metric id 'cknna-k1O'")]
    for change, message in cases:
        path = tmp_path / "study.yaml"
        path.write_text(json.dumps({**base, **change}))
        for command in ("embed", "run", "align"):
            out = tmp_path / f"out-{command}"
            result = runner.invoke(app, [command, str(path), "--out", str(out)])
            assert result.exit_code == 1, (command, result.output)
            assert "error:" in result.output and message in result.output, result.output
            assert not (out / "store" / "embeddings").exists()


# ---- proteins -----------------------------------------------------------------------------------

THREE = {"M": "MET", "K": "LYS", "T": "THR", "A": "ALA", "Y": "TYR", "I": "ILE", "Q": "GLN",
         "R": "ARG"}
HELIX = ideal_backbone("MKTAYIAKQR", "H" * 10)


def _pdb(drop=(), names=None, altloc=None, models=1) -> str:
    """PDB text of HELIX: without the (residue, atom) pairs in ``drop``, residues renamed by
    ``names``, residue ``altloc`` in two conformers (A at the true place, B 3 Å off), and
    ``models`` models (model m shifted by 5 m Å)."""
    lines, serial = [], 1
    for model in range(models):
        lines.append(f"MODEL     {model + 1:>4}")
        for i, (letter, coords) in enumerate(zip(HELIX.sequence, HELIX.backbone, strict=True)):
            residue = (names or {}).get(i, THREE[letter])
            record = "ATOM" if residue in THREE.values() else "HETATM"
            for k, atom in enumerate(("N", "CA", "C", "O")):
                if (i, atom) in drop:
                    continue
                conformers = [(" ", 0.0, 1.0)] if altloc != i else [("A", 0.0, 0.6),
                                                                    ("B", 3.0, 0.4)]
                for code, shift, occupancy in conformers:
                    x, y, z = coords[k] + 5.0 * model + shift
                    lines.append(f"{record:<6}{serial:>5} {atom:<4}{code}{residue:>3} A{i + 1:>4}"
                                 f"    {x:>8.3f}{y:>8.3f}{z:>8.3f}{occupancy:>6.2f}  0.00"
                                 f"           {atom[0]}")
                    serial += 1
        lines.append("ENDMDL")
    return "\n".join([*lines, "END", ""])


def _chain(tmp_path, text: str):
    path = tmp_path / "protein.pdb"
    path.write_text(text)
    [(chain, protein)] = read_chains(path)
    assert chain == "A"
    return protein


def test_missing_backbone_atoms_are_nan_and_residues_without_ca_are_left_out(tmp_path):
    protein = _chain(tmp_path, _pdb(drop={(2, "O"), (4, "CA"), (6, "N")}))
    assert protein.sequence == "MKTAIAKQR"  # Y (no CA) left out
    missing = np.argwhere(np.isnan(protein.backbone).all(axis=2)).tolist()
    assert missing == [[2, 3], [5, 0]]  # O of T3, N of A7 (now row 5)
    kept = [0, 1, 2, 3, 5, 6, 7, 8, 9]
    finite = np.isfinite(protein.backbone)
    np.testing.assert_allclose(protein.backbone[finite], HELIX.backbone[kept][finite], atol=1e-3)


def test_non_standard_residues_read_as_x_or_their_parent(tmp_path):
    protein = _chain(tmp_path, _pdb(names={1: "SEP", 3: "UNK", 5: "MSE"}))
    assert protein.sequence == "MXTXYMAKQR"  # phosphoserine and unknown: X; selenomethionine: M
    np.testing.assert_allclose(protein.backbone, HELIX.backbone, atol=1e-3)


def test_alternate_locations_take_the_first_and_several_models_the_first(tmp_path):
    for text in (_pdb(altloc=2), _pdb(models=3), _pdb(altloc=4, models=2)):
        protein = _chain(tmp_path, text)
        assert protein.sequence == HELIX.sequence
        np.testing.assert_allclose(protein.backbone, HELIX.backbone, atol=1e-3)


def test_truncated_structure_file_names_the_file(tmp_path):
    text = _pdb()
    path = tmp_path / "cut.pdb"
    path.write_text(text[: len(text) // 2 + 17])  # cut inside a coordinate
    with pytest.raises(DatasetError, match=f"structure file {path}: cannot parse"):
        read_chains(path)


def test_closest_pair_agrees_with_ase_neighbour_list_on_random_skewed_cells():
    """The k-d tree over atoms near a face and their images finds exactly the pairs that ASE's
    neighbour list (the independent reference) finds closer than the cut-off, in skewed cells,
    slabs and wires, with atoms placed next to faces, edges and corners."""
    from ase.neighborlist import neighbor_list

    from matteralign.data.structure_checks import _closest_pair

    rng = np.random.default_rng(11)
    for trial in range(300):
        cell = np.diag(rng.uniform(2.0, 6.0, 3)) + np.triu(rng.uniform(-1.5, 1.5, (3, 3)), 1)
        n = int(rng.integers(1, 12))
        fractional = rng.uniform(0, 1, (n, 3))
        fractional[: n // 2] = rng.choice([0.0, 0.999, 0.002], size=(n // 2, 3))  # faces, corners
        fractional[: n // 2] += rng.uniform(0, 1e-3, (n // 2, 3))  # no two atoms coincide
        atoms = Atoms(f"Cu{n}", scaled_positions=fractional, cell=cell,
                      pbc=[True, trial % 3 != 1, trial % 3 == 0])
        cutoff = 0.4
        first, second, distance = neighbor_list("ijd", atoms, cutoff)
        found = _closest_pair(atoms, cutoff)
        if not len(distance):
            assert found is None, trial
        else:
            assert found is not None and abs(found[2] - distance.min()) < 1e-9, trial
            pairs = set(zip(first.tolist(), second.tolist(), strict=True))
            assert (found[0], found[1]) in pairs, trial


def test_a_structure_is_checked_once_per_options_and_the_answer_travels_with_the_sample(
        monkeypatch):
    """Every model of a study asks the same question: the sample answers it once per options,
    also after pickling (jobs carry their samples to worker processes), with the function's
    own answer."""
    import pickle

    import matteralign.data.sample as sample_module
    from matteralign.data.sample import Sample
    from matteralign.data.structure_checks import structure_problem

    calls = []
    monkeypatch.setattr(sample_module, "structure_problem",
                        lambda atoms, *args: calls.append(args) or structure_problem(atoms, *args))
    overlapping = Sample(id="s1", atoms=Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.05]]))
    answers = [overlapping.structure_problem() for _ in range(3)]
    assert answers == [structure_problem(overlapping.atoms)] * 3
    assert answers[0].startswith("atom 0 and atom 1 are 0.05 Å apart")
    assert len(calls) == 1
    assert overlapping.structure_problem(min_distance=0.01) is None
    assert len(calls) == 2
    copy = pickle.loads(pickle.dumps(overlapping))
    assert copy.structure_problem() == answers[0] and len(calls) == 2
    with pytest.raises(DatasetError, match="sample s2 has no atoms"):
        Sample(id="s2", smiles="C").structure_problem()
