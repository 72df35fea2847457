"""The command line: fast help and listing, clean errors, and a run killed part-way resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from matteralign.cli.main import app
from matteralign.models.registry import get_card
from matteralign.store.embedding_store import EmbeddingStore

runner = CliRunner()
MATTERALIGN = [sys.executable, "-m", "matteralign.cli.main"]


def test_help_and_models_list_import_no_model_package():
    """Listing reads cards only (its speed is measured in benchmarks/bench_cli.py)."""
    code = (
        "import sys; from typer.testing import CliRunner; from matteralign.cli.main import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "r = CliRunner().invoke(app, ['models', 'list']); assert r.exit_code == 0, r.output;"
        "heavy = {'torch', 'chgnet', 'sevenn', 'transformers', 'jax', 'matgl', 'rdkit', 'ase'}"
        " & set(sys.modules); assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_models_list_shows_cards():
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "chgnet-0.3.0" in result.output


def test_unknown_model_suggests_close_ids():
    result = runner.invoke(app, ["models", "show", "chgnet-0.3"])
    assert result.exit_code == 1
    assert "unknown model 'chgnet-0.3'" in result.output


def test_bad_config_key_is_a_clean_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndatasets: []\nmodels: []\nmetricz: [cknna-k10]\n")
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "metricz" in result.output


def _kill_config(tmp_path: Path) -> Path:
    config = {
        "name": "kill-test",
        "datasets": [{"name": "elemental-crystals", "n": 48, "seed": 1}],
        "models": [{"id": "chgnet-0.3.0"}],
        "shard_size": 4,
        "device": "cpu",
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _embed(config: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*MATTERALIGN, "embed", str(config), "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_rerun_resumes_and_matches_uninterrupted_run(tmp_path):
    config = _kill_config(tmp_path)
    killed_out, clean_out = tmp_path / "killed", tmp_path / "clean"
    shard_dir = killed_out / "store" / "embeddings" / "elemental-crystals" / "chgnet-0.3.0"

    process = _embed(config, killed_out)
    deadline = time.monotonic() + 240
    while len(list(shard_dir.glob("shard-*.safetensors"))) < 3:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no shard written in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    survivors = {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("shard-*.safetensors")}
    assert 3 <= len(survivors) < 12, "the run was not killed part-way"

    assert _embed(config, killed_out).wait() == 0
    after = {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("shard-*.safetensors")}
    assert len(after) == 12
    assert all(after[name] == mtime for name, mtime in survivors.items()), "finished shards redone"
    assert not list(shard_dir.glob("*.tmp"))

    assert _embed(config, clean_out).wait() == 0
    killed, clean = EmbeddingStore(killed_out / "store"), EmbeddingStore(clean_out / "store")
    for layer in get_card("chgnet-0.3.0").layer_names:
        a = killed.load("elemental-crystals", "chgnet-0.3.0", layer)
        b = clean.load("elemental-crystals", "chgnet-0.3.0", layer)
        assert a.ids == b.ids
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.energy, b.energy)


@pytest.mark.parametrize(
    "command", [["datasets", "list"], ["datasets", "show", "elemental-crystals", "--n", "5"]])
def test_dataset_commands(command):
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "elemental-crystals" in result.output or "fingerprint" in result.output
