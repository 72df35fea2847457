"""Nothing silently wrong: every way a store, a configuration or a command line can hold
something other than what a result claims is refused with one line, or repaired exactly.

One test (or a group) per class of fault: shard content outside the old checksum, foreign files,
the lock over a whole run, results answering for other data, inputs that change the answer, and
exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from matteralign import metrics
from matteralign.cli.main import app
from matteralign.config import StudyConfig, load_config
from matteralign.errors import ConfigError, NothingScoredError, StoreError
from matteralign.run import study as study_module
from matteralign.store.embedding_store import EmbeddingStore
from matteralign.store.output_set import read_output_set
from tests.reliability.faulty_models import patch_registry
from tests.store.test_embedding_store import _rewrite_header, _swap_first_ids

runner = CliRunner()
STUDY = {"name": "integrity", "datasets": [{"name": "toy", "n": 30, "seed": 1}],
         "models": [{"id": "toy-geometry-b"}, {"id": "toy-geometry-b2", "options": {"seed": 3}}],
         "metrics": ["cknna-k10", "cka-linear"], "shard_size": 8, "device": "cpu"}


@pytest.fixture
def toy(monkeypatch):
    from tests.reliability import faulty_models

    monkeypatch.setitem(faulty_models.CARDS, "toy-geometry-b2",
                        faulty_models.card("toy-geometry-b2"))
    patch_registry(monkeypatch)


def _config(**change) -> StudyConfig:
    return StudyConfig(**{**STUDY, **change})


def _write(path, **change):
    path.write_text(yaml.safe_dump({**STUDY, **change}))
    return path


def _one_line_error(result) -> str:
    """The output of a failed command: exactly one `error:` line and no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def _run(out, **change):
    config = _config(**change)
    outcome = study_module.embed_study(config, out)
    return study_module.align_study(config, out, outcome)


# ---- 1. the checksum covers ids and header ----------------------------------------------------

def test_swapped_ids_are_corrupt_for_status_refused_by_align_and_recomputed_by_embed(tmp_path,
                                                                                      toy):
    _run(tmp_path)
    reference = pd.read_parquet(tmp_path / "scores.parquet")
    store = EmbeddingStore(tmp_path / "store")
    path = store.shard_path("toy", "toy-geometry-b", 1)
    _rewrite_header(path, _swap_first_ids)  # same size, tensors untouched

    status = runner.invoke(app, ["status", "--out", str(tmp_path)])
    assert status.exit_code == 0
    assert f"corrupt: shard {path} fails its checksum" in " ".join(status.output.split())

    outcome = study_module.StudyOutcome(tmp_path)
    with pytest.raises(NothingScoredError):  # one model left: nothing to score
        study_module.align_study(_config(), tmp_path, outcome)
    assert dict(outcome.skipped)["model toy-geometry-b on toy"].startswith(
        f"shard {path} fails its checksum")
    assert not (tmp_path / "scores.parquet").exists()

    embedded = study_module.embed_study(_config(), tmp_path)
    assert [(s.model, s.computed) for s in embedded.embedded] == [("toy-geometry-b", 1),
                                                                  ("toy-geometry-b2", 0)]
    study_module.align_study(_config(), tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "scores.parquet"), reference,
                                  check_exact=True)


# ---- 2. foreign files ---------------------------------------------------------------------------

def test_a_stray_copy_is_reported_never_deleted_and_never_costs_a_real_shard(tmp_path, toy):
    _run(tmp_path)
    store = EmbeddingStore(tmp_path / "store")
    folder = store.model_dir("toy", "toy-geometry-b")
    stray = folder / "shard-00001.bak.safetensors"
    stray.write_bytes(store.shard_path("toy", "toy-geometry-b", 1).read_bytes())
    before = {p: p.stat().st_mtime_ns for p in store.shard_paths("toy", "toy-geometry-b")}

    status = runner.invoke(app, ["status", "--out", str(tmp_path)])
    assert status.exit_code == 0, status.output
    assert f"foreign file {stray}" in " ".join(status.output.split())
    embedded = study_module.embed_study(_config(), tmp_path)
    assert [s.computed for s in embedded.embedded] == [0, 0]  # nothing recomputed, twice
    study_module.embed_study(_config(), tmp_path)
    assert stray.exists()
    assert {p: p.stat().st_mtime_ns for p in store.shard_paths("toy", "toy-geometry-b")} == before
    assert store.completed_shards("toy", "toy-geometry-b") == 4
    study_module.align_study(_config(), tmp_path)


# ---- 3. one lock from the first write to the last -------------------------------------------

def _lock_is_free(root) -> bool:
    import subprocess
    import sys

    code = ("import sys\nfrom matteralign.store.embedding_store import EmbeddingStore\n"
            "from matteralign.errors import StoreError\n"
            "try:\n    with EmbeddingStore(sys.argv[1]).lock(): print('free')\n"
            "except StoreError: print('held')\n")
    result = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True,
                            text=True, check=True)
    return result.stdout.strip() == "free"


def test_run_holds_the_lock_from_config_yaml_to_the_report(tmp_path, toy, monkeypatch):
    seen = {}
    out = tmp_path / "out"

    def watching(name, function):
        def call(*args, **kwargs):
            seen[name] = _lock_is_free(out / "store")
            return function(*args, **kwargs)
        monkeypatch.setattr(study_module, name, call)

    for name in ("write_resolved_config", "embed_study", "align_study", "_write_summary"):
        watching(name, getattr(study_module, name))
    import matteralign.report as report

    monkeypatch.setattr(report, "report_study", lambda config, out, report_dir, options: (
        seen.setdefault("report", _lock_is_free(out / "store")),
        (report_dir / "report.html").write_text("report"))[1])
    study_module.run_study(_config(), out)
    assert seen == {"write_resolved_config": False, "embed_study": False, "align_study": False,
                    "_write_summary": False, "report": False}
    assert _lock_is_free(out / "store")
    assert read_output_set(out, "report")["files"].keys() == {"report.html"}


# ---- 4. results carry the fingerprint of what they were computed from -----------------------

def test_align_refuses_another_selection_than_the_stored_one(tmp_path, toy):
    _run(tmp_path)
    scores = (tmp_path / "scores.parquet").read_bytes()
    for change, message in (
            ({"datasets": [{"name": "toy", "n": 30, "seed": 2}]},
             "holds dataset 'toy' embedded with n=30, seed=1 (model toy-geometry-b), but "
             "configuration 'integrity' asks for n=30, seed=2; run `matteralign embed` with this "
             "configuration first"),
            ({"datasets": [{"name": "toy"}]}, "asks for n=None, seed=0"),
            ({"models": [{"id": "toy-geometry-b", "options": {"seed": 5}},
                         {"id": "toy-geometry-b2", "options": {"seed": 3}}]},
             "model toy-geometry-b on dataset 'toy' was embedded with options={}")):
        with pytest.raises(StoreError) as error:
            study_module.align_study(_config(**change), tmp_path)
        assert message in str(error.value)
    assert (tmp_path / "scores.parquet").read_bytes() == scores  # untouched, still current
    record = read_output_set(tmp_path, "alignment")
    [selection] = record["fingerprint"]["datasets"]
    assert (selection["name"], selection["n"], selection["seed"]) == ("toy", 30, 1)
    assert record["fingerprint"]["embeddings"]["toy"]["toy-geometry-b2"]["model"]["options"] \
        == {"seed": 3}
    assert sorted(record["files"]) == ["alignment/toy/cka-linear.parquet",
                                       "alignment/toy/cknna-k10.parquet",
                                       "alignment/toy/scores.json", "scores.parquet"]


def test_align_with_every_model_skipped_exits_non_zero_and_leaves_no_stale_scores(tmp_path,
                                                                                   toy):
    config = _write(tmp_path / "study.yaml")
    out = tmp_path / "out"
    assert runner.invoke(app, ["embed", str(config), "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["align", str(config), "--out", str(out)]).exit_code == 0
    assert (out / "scores.parquet").exists() and (out / "alignment").is_dir()
    path = EmbeddingStore(out / "store").shard_path("toy", "toy-geometry-b2", 0)
    data = bytearray(path.read_bytes())
    data[-2] ^= 1
    path.write_bytes(bytes(data))
    result = runner.invoke(app, ["align", str(config), "--out", str(out)])
    assert _one_line_error(result).startswith("error: nothing was scored in")
    said = "".join(result.output.split())  # the console wraps long paths anywhere
    assert f"skippingmodeltoy-geometry-b2ontoy:shard{path}failsitschecksum" in said
    assert not (out / "scores.parquet").exists() and not (out / "alignment").exists()
    assert not (out / "alignment.manifest.json").exists()


# ---- 5. inputs that would change the answer are refused at load -----------------------------

@pytest.mark.parametrize("text, message", [
    ("name: a\nname: b\n", "key 'name' is given twice (lines 1 and 2); give it once"),
    ("name: a\ndatasets: [{name: toy, seed: -1}]\nmodels: [{id: m}]\n",
     "datasets.0.seed: Input should be greater than or equal to 0"),
    ("name: a\ndatasets: [{name: toy}]\nmodels: [{id: m}, {id: m}]\n",
     "model 'm' is listed 2 times; list each once"),
    ("name: a\ndatasets: [{name: toy}, {name: toy, n: 3}]\nmodels: [{id: m}]\n",
     "dataset 'toy' is listed 2 times"),
    ("name: a\ndatasets: []\nmodels: [{id: m}]\n", "datasets: List should have at least 1 item"),
    ("name: a\ndatasets: [{name: toy}]\nmodels: []\n", "models: List should have at least 1 item"),
    ("name: a\ndatasets: [{name: toy}]\nmodels: [{id: m}]\nmetrics: []\n",
     "metrics: List should have at least 1 item"),
    ("name: a\ndatasets: [{name: toy}]\nmodels: [{id: m}]\nlayers: []\n",
     "layers.list[str]: List should have at least 1 item"),
    ("name: a\ndatasets: [{name: toy}]\nmodels: [{id: m}]\npreprocess: [l3]\n",
     "preprocess: Value error, unknown preprocessing step 'l3'"),
    ("name: a\ndatasets: [{name: toy}]\nmodels: [{id: m, options: {seed: 1, seed: 2}}]\n",
     "key 'seed' is given twice (lines 3 and 3)"),
], ids=["duplicate-key", "negative-seed", "model-twice", "dataset-twice", "no-datasets",
        "no-models", "no-metrics", "no-layers", "unknown-step", "duplicate-option"])
def test_configuration_that_would_change_the_answer_is_refused_at_load(tmp_path, text, message):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value) and str(path) in str(error.value)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in " ".join(_one_line_error(result).split())
    assert not (tmp_path / "out").exists()


def test_misspelled_option_too_many_samples_and_missing_gpu_stop_before_any_work(tmp_path, toy,
                                                                                 monkeypatch):
    cases = [
        ({"models": [{"id": "toy-geometry-b", "options": {"sed": 3}},
                     {"id": "toy-geometry-b2"}]},
         "model toy-geometry-b has no option 'sed' (did you mean 'seed'?); it accepts: "
         "data_root, delay, inf, max_cell_length, memory, min_distance, nan, nan_energy, path, "
         "refuse, seed, width"),
        ({"datasets": [{"name": "toy", "n": 41}]},
         "configuration 'integrity', datasets: toy has 40 samples, fewer than n: 41; lower n or "
         "leave it out to use every sample"),
        ({"device": "cuda"}, "configuration 'integrity', device: 'cuda' but torch sees no CUDA "
         "GPU here; use device: auto (GPU when there is one) or cpu"),
    ]
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for change, message in cases:
        config = _write(tmp_path / "study.yaml", **change)
        for command in ("run", "embed"):
            out = tmp_path / f"out-{command}"
            result = runner.invoke(app, [command, str(config), "--out", str(out)])
            assert _one_line_error(result) == f"error: {message}"
            assert not (out / "config.yaml").exists()
            assert not (out / "store" / "embeddings").exists()


def test_l2_of_embeddings_scaled_by_1e300_or_1e_300_equals_the_unscaled(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    reference = metrics.get_metric("cknna-k10")(metrics.apply_preprocessing(x, steps=["l2"]), y)
    for scale in (1e300, 1e-300):
        scaled = metrics.apply_preprocessing(x * scale, steps=["l2"])
        np.testing.assert_allclose(scaled, metrics.apply_preprocessing(x, steps=["l2"]),
                                   rtol=1e-14)
        assert metrics.get_metric("cknna-k10")(scaled, y) == pytest.approx(reference, rel=1e-12)


# ---- 6. exit codes and messages ------------------------------------------------------------

def test_out_naming_a_file_or_a_read_only_folder_is_one_error_line(tmp_path, toy, monkeypatch):
    config = _write(tmp_path / "study.yaml")
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    for command in ("run", "embed", "align", "status"):
        args = [command, str(config)] if command != "status" else [command]
        line = _one_line_error(runner.invoke(app, [*args, "--out", str(a_file)]))
        assert f"--out {a_file} is a file, not a folder" in line, line
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):  # root may write anywhere: the check must still answer
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: real_access(path, mode) and not (
            Path(path) == read_only and mode & os.W_OK))
    try:
        for command in ("run", "embed"):
            line = _one_line_error(runner.invoke(app, [command, str(config), "--out",
                                                       str(read_only)]))
            assert f"the results folder {read_only} is not writable" in line
    finally:
        read_only.chmod(0o755)


def test_status_only_reads_and_works_on_a_read_only_store(tmp_path, toy):
    _run(tmp_path)
    store = tmp_path / "store"
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    folders = [p for p in [store, *store.rglob("*")] if p.is_dir()]
    for folder in folders:
        folder.chmod(0o555)
    try:
        result = runner.invoke(app, ["status", "--out", str(tmp_path)])
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert result.exit_code == 0, result.output
    assert "toy-geometry-b2" in result.output
    assert before == {p: p.stat().st_mtime_ns for p in store.rglob("*")}


def test_report_refuses_negative_counts_in_one_line(tmp_path):
    for option in ("--n-permutations", "--n-bootstrap", "--max-samples"):
        result = runner.invoke(app, ["report", "smoke", "--out", str(tmp_path), option, "-1"])
        assert result.exit_code == 2
        assert _one_line_error(result).startswith(f"error: {option} must be at least")


def test_a_run_with_no_score_exits_non_zero_and_says_why(tmp_path, toy):
    config = _write(tmp_path / "study.yaml", models=[{"id": "toy-geometry-b"},
                                                     {"id": "toy-constant"}])
    result = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "out")])
    assert _one_line_error(result).startswith("error: nothing was scored in")
    assert "constant embedding" in " ".join(result.output.split())
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert any(row["what"] == "model toy-constant on toy" for row in summary["skipped"])
    assert not (tmp_path / "out" / "scores.parquet").exists()
