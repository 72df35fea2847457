"""A user's data, embeddings and model from the command line: studies on extxyz, SMILES CSV and
FASTA files through YAML and through ``run --data``, ``compare`` of embedding files, user cards,
and one clear line for a bad file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from matteralign.cli.main import app

runner = CliRunner()
FAST = {"layers": "last", "metrics": ["cknna-k10", "dcor"], "shard_size": 16, "device": "cpu"}


def _crystals(path, n=24, bad_frame=None):
    """``n`` rattled fcc/bcc cells with energies and forces; frame ``bad_frame`` gets a
    non-numeric coordinate."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        atoms = bulk(("Cu", "Al", "Ni", "Fe")[i % 4], cubic=True)
        atoms.rattle(0.05, seed=i)
        atoms.calc = SinglePointCalculator(atoms, energy=-3.0 * len(atoms) + rng.normal(),
                                           forces=rng.normal(size=(len(atoms), 3)))
        atoms.info["id"] = f"cell{i}"
        frames.append(atoms)
    write(path, frames, format="extxyz")
    if bad_frame is not None:
        lines = path.read_text().splitlines()
        start = sum(len(f) + 2 for f in frames[:bad_frame])
        fields = lines[start + 2].split()
        fields[1] = "zz"
        lines[start + 2] = " ".join(fields)
        path.write_text("\n".join(lines) + "\n")
    return path


def _random_cards(folder, modality):
    """Two user cards reading ``modality`` with the seeded random adapter (different seeds)."""
    paths = []
    for seed in (0, 1):
        card = {"id": f"my-random-{modality}-{seed}", "name": f"random {modality} {seed}",
                "family": "baseline", "input": modality,
                "domain": ["molecules", "materials", "proteins"],
                "adapter": "matteralign.models.random_baseline:RandomGaussianAdapter",
                "options": {"dim": 16, "seed": seed}, "layers": [{"name": "random"}],
                "license": "MIT"}
        path = folder / f"card-{modality}-{seed}.yaml"
        path.write_text(yaml.safe_dump(card))
        paths.append(path)
    return paths


def _assert_scored(out, dataset, models):
    scores = pd.read_parquet(out / "scores.parquet")
    assert set(scores.dataset) == {dataset}
    assert set(scores.model_a) | set(scores.model_b) >= set(models)
    assert np.isfinite(scores.value).all()
    assert (out / "report.html").is_file()


def test_yaml_study_on_an_extxyz_file_reports_its_bad_frame(tmp_path):
    _crystals(tmp_path / "cells.extxyz", bad_frame=5)
    study = {"name": "mine", "datasets": [{"path": "cells.extxyz"}],  # relative to the YAML
             "models": [{"id": "composition"}, {"id": "random-gaussian"}], **FAST}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["run", str(tmp_path / "study.yaml"), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    _assert_scored(tmp_path / "out", "cells", ["composition", "random-gaussian"])
    assert "frame 5" in " ".join(result.output.split())
    resolved = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert resolved["datasets"][0]["path"] == str((tmp_path / "cells.extxyz").resolve())
    # align and report find the study in --out, not the default preset
    result = runner.invoke(app, ["align", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "cells" in result.output
    result = runner.invoke(app, ["status", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0 and "of study 'mine'" in result.output


def test_overlapping_atoms_are_named_before_any_model_runs_and_failed_by_each_model(tmp_path):
    """A frame with two atoms 0.05 Å apart: one line before the first model's progress names
    it, each model records it as a failed sample, and the other frames are embedded."""
    from ase.io import read, write

    path = _crystals(tmp_path / "cells.extxyz", n=8)
    frames = read(path, ":")
    frames[3].positions[1] = frames[3].positions[0] + [0.05, 0.0, 0.0]
    write(path, frames, format="extxyz")
    study = {"name": "mine", "datasets": [{"path": "cells.extxyz"}],
             "models": [{"id": "composition"}, {"id": "coulomb-eigenvalues"}], **FAST}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["embed", str(tmp_path / "study.yaml"), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    line = "dataset cells: 1 structure(s) the models will refuse, first: cell3 atom 0 and atom 1"
    assert line in output and output.index(line) < output.index("composition")
    from matteralign.models.registry import get_card
    from matteralign.store.embedding_store import EmbeddingStore

    store = EmbeddingStore(tmp_path / "out" / "store")
    for model in ("composition", "coulomb-eigenvalues"):
        stored = store.load("cells", model, get_card(model).layers[-1].name)
        assert [i for i, _ in stored.failures] == ["cell3"]
        assert "0.05 Å apart" in dict(stored.failures)["cell3"]
        assert len(stored.ids) == 7


def test_yaml_study_on_a_smiles_csv_with_user_cards(tmp_path):
    rows = ["id,smiles,logp", *(f"m{i},{'C' * (i % 6 + 1)}O,{i / 10}" for i in range(20)),
            "broken,C1CC,0.3"]
    (tmp_path / "mols.csv").write_text("\n".join(rows) + "\n")
    cards = _random_cards(tmp_path, "smiles")
    study = {"name": "smiles", "datasets": [{"path": "mols.csv", "units": {"logp": "log10"}}],
             "models": [{"card": p.name} for p in cards], **FAST}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["run", str(tmp_path / "study.yaml"), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    _assert_scored(tmp_path / "out", "mols", ["my-random-smiles-0", "my-random-smiles-1"])
    assert "invalid SMILES 'C1CC'" in " ".join(result.output.split())


def test_yaml_study_on_a_fasta_file_with_user_cards(tmp_path):
    rng = np.random.default_rng(1)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    records = [f">p{i}\n{''.join(rng.choice(letters, 40))}" for i in range(20)]
    (tmp_path / "prot.fasta").write_text("\n".join([*records, ">bad\nMK12\n"]))
    cards = _random_cards(tmp_path, "sequence")
    study = {"name": "proteins", "datasets": [{"path": str(tmp_path / "prot.fasta")}],
             "models": [{"card": str(p)} for p in cards], **FAST}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["run", str(tmp_path / "study.yaml"), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    _assert_scored(tmp_path / "out", "prot", ["my-random-sequence-0", "my-random-sequence-1"])
    assert "non-amino-acid letters ['1', '2']" in " ".join(result.output.split())


def test_quick_study_from_the_command_line(tmp_path):
    path = _crystals(tmp_path / "cells.extxyz")
    result = runner.invoke(app, ["run", "--data", str(path), "--model", "composition",
                                 "--model", "random-gaussian", "--metric", "cknna-k10",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    _assert_scored(tmp_path / "out", "cells", ["composition", "random-gaussian"])
    resolved = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert [m["id"] for m in resolved["models"]] == ["composition", "random-gaussian"]


def test_a_wholly_bad_file_is_one_line_naming_file_and_record(tmp_path):
    path = tmp_path / "garbage.extxyz"
    path.write_text("not an xyz file\n")
    result = runner.invoke(app, ["run", "--data", str(path), "--model", "composition",
                                 "--model", "random-gaussian", "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if str(path) in line]  # one line
    assert f"file {path}: no readable record ({path}: frame 0: XYZError" in line


def test_compare_three_npy_files(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 8))
    np.save(tmp_path / "a.npy", base)
    np.save(tmp_path / "b.npy", base @ rng.normal(size=(8, 6)))
    np.save(tmp_path / "c.npy", rng.normal(size=(40, 5)))
    (tmp_path / "ids.txt").write_text("\n".join(f"s{i}" for i in range(40)) + "\n")
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", *(str(tmp_path / f"{m}.npy") for m in "abc"),
                                 "--ids", str(tmp_path / "ids.txt"), "--out", str(out),
                                 "--metric", "cknna-k10", "--metric", "cka-linear",
                                 "--metric", "id-twonn", "--permutations", "20"])
    assert result.exit_code == 0, result.output
    pairs = pd.read_csv(out / "pairs.csv")
    # cknna is asymmetric (both orders of each pair), linear CKA symmetric (each pair once)
    assert pairs.metric.value_counts().to_dict() == {"cknna-k10": 6, "cka-linear": 3}
    from matteralign.metrics import pairwise

    reference = pairwise({m: np.load(tmp_path / f"{m}.npy") for m in "abc"}, "cka-linear",
                         preprocessing=["l2"]).matrix
    row = pairs[(pairs.metric == "cka-linear") & (pairs.model_a == "a") & (pairs.model_b == "b")]
    assert row.raw.item() == pytest.approx(reference.loc["a", "b"], rel=1e-10)
    assert row.p_value.item() == pytest.approx(1 / 21)  # a linear map of a beats every shuffle
    assert len(pd.read_csv(out / "per_model.csv")) == 3
    assert (out / "matrices" / "cknna-k10-calibrated.csv").is_file()
    assert "cka-linear" in (out / "compare.md").read_text()


def test_compare_refuses_files_of_different_samples(tmp_path):
    for name, ids in (("a", ["s0", "s1", "s2"]), ("b", ["s0", "s1", "s9"])):
        np.savez(tmp_path / f"{name}.npz", ids=np.array(ids),
                 embeddings=np.random.default_rng(0).normal(size=(3, 2)))
    result = runner.invoke(app, ["compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"),
                                 "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 1
    assert "b has 's9', which a lacks" in result.output


def test_export_then_read_back_keeps_ids(tmp_path):
    out = tmp_path / "crystals.extxyz"
    result = runner.invoke(app, ["datasets", "export", "elemental-crystals", "--n", "6",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    from matteralign.data import load_dataset, load_file

    assert load_file(out).ids == load_dataset("elemental-crystals", n=6).ids
    result = runner.invoke(app, ["datasets", "export", "proteome", "--n", "3", "--out",
                                 str(tmp_path / "p.extxyz")])
    assert result.exit_code == 1 and "has no atoms" in result.output


def test_datasets_show_previews_a_file_with_its_skipped_records(tmp_path):
    path = _crystals(tmp_path / "cells.extxyz", n=8, bad_frame=2)
    result = runner.invoke(app, ["datasets", "show", str(path)])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["samples"] == 7 and shown["modalities"] == ["atoms"]
    assert shown["skipped"] == 1 and "frame 2" in shown["first_skipped"][0]
    assert {label["name"] for label in shown["labels"]} == {"energy", "energy_per_atom",
                                                            "max_force"}
    assert shown["files"][0]["size"] == path.stat().st_size


def test_align_notices_a_changed_file_and_embed_re_embeds_it(tmp_path):
    path = _crystals(tmp_path / "cells.extxyz", n=16)
    study = {"name": "mine", "datasets": [{"path": "cells.extxyz"}],
             "models": [{"id": "composition"}, {"id": "random-gaussian"}], **FAST}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    out = str(tmp_path / "out")
    assert runner.invoke(app, ["embed", str(tmp_path / "study.yaml"), "--out", out]).exit_code == 0
    _crystals(path, n=15)  # the user edits the file
    result = runner.invoke(app, ["align", "--out", out])
    assert result.exit_code == 1
    assert f"file {path} of dataset 'cells' changed since" in " ".join(result.output.split())
    assert runner.invoke(app, ["embed", str(tmp_path / "study.yaml"), "--out", out]).exit_code == 0
    result = runner.invoke(app, ["align", "--out", out])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(tmp_path / "out" / "scores.parquet")) > 0


def test_score_finds_its_study_and_refuses_bad_candidates_in_one_line(tmp_path):
    from matteralign.data import load_file

    path = _crystals(tmp_path / "cells.extxyz", n=20)
    study = {"name": "mine", "datasets": [{"path": "cells.extxyz"}],
             "models": [{"id": "composition"}, {"id": "random-gaussian"}], **FAST}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    out = str(tmp_path / "out")
    assert runner.invoke(app, ["embed", str(tmp_path / "study.yaml"), "--out", out]).exit_code == 0
    assert runner.invoke(app, ["align", "--out", out]).exit_code == 0
    ids = load_file(path).ids
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    values = np.random.default_rng(0).normal(size=(len(ids), 4))
    np.save(tmp_path / "cand.npy", values)
    base = ["score", "--dataset", "cells", "--out", out, "--ids", str(tmp_path / "ids.txt"),
            "--n-permutations", "20", "--n-bootstrap", "5", "--embeddings"]
    result = runner.invoke(app, [*base, str(tmp_path / "cand.npy"), "--save",
                                 str(tmp_path / "board.csv")])
    assert result.exit_code == 0, result.output
    assert "cand" in set(pd.read_csv(tmp_path / "board.csv").model)
    values[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", values)
    result = runner.invoke(app, [*base, str(tmp_path / "nan.npy")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"nan.npy: row 3 (id '{ids[3]}') holds NaN" in " ".join(result.output.split())
    result = runner.invoke(app, [*base, str(tmp_path / "cand.npy"), "--save", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.output
    result = runner.invoke(app, [*base, str(tmp_path / "cand.npy"), "--n-permutations", "5"])
    assert result.exit_code == 2 and result.output.startswith("error: 5 permutation rounds")


def test_datasets_show_takes_the_read_options(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("name,SMI,homo\na,OCC,-7\nb,CC,-8\n")
    result = runner.invoke(app, ["datasets", "show", str(path), "--smiles-column", "SMI",
                                 "--id-key", "name", "--label", "homo"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["first_ids"] == ["a", "b"] and shown["labels"][0]["name"] == "homo"
    result = runner.invoke(app, ["datasets", "show", str(path), "--frames", "::2"])
    assert result.exit_code == 1
    assert "option(s) frames do not apply to smiles files" in " ".join(result.output.split())
