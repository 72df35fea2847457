"""Two runs on one store at once: the second is refused by the lock, and the first run's store and
configuration come out exactly as if it had run alone."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from matteralign.cli.main import app
from matteralign.config import load_config
from matteralign.run.study import embed_study
from matteralign.store.embedding_store import EmbeddingStore
from tests.reliability.faulty_models import patch_registry
from tests.reliability.toy_cli import spawn
from tests.store.lock_holder import held_elsewhere

runner = CliRunner()


def study_file(path: Path, delay: float, seed: int = 0) -> Path:
    config = {"name": f"lock-{seed}", "datasets": [{"name": "toy"}],
              "models": [{"id": "toy-geometry", "options": {"delay": delay, "seed": seed}},
                         {"id": "toy-geometry-b"}],
              "metrics": ["cknna-k10"], "shard_size": 4, "device": "cpu"}
    path.write_text(yaml.safe_dump(config))
    return path


LOCKED = "is locked by another matteralign run; wait for it to finish or use another --out folder"


def test_a_second_run_on_a_busy_store_is_refused_and_changes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = study_file(tmp_path / "first.yaml", delay=1.0)
    other = study_file(tmp_path / "other.yaml", delay=0.0, seed=7)  # a different study
    running = spawn("embed", str(first), "--out", str(out))
    shards = out / "store" / "embeddings" / "toy" / "toy-geometry"
    deadline = time.monotonic() + 120
    while not list(shards.glob("shard-*.safetensors")):
        assert running.poll() is None, running.stdout.read()
        assert time.monotonic() < deadline, "the first run wrote no shard in time"
        time.sleep(0.05)

    second = spawn("embed", str(other), "--out", str(out))
    output, _ = second.communicate(timeout=120)
    assert running.poll() is None, "the first run ended before the second one tried"
    assert second.returncode == 1, output
    assert f"error: the store {out / 'store'} {LOCKED}" in " ".join(output.split()), output

    output, _ = running.communicate(timeout=300)
    assert running.returncode == 0, output
    assert yaml.safe_load((out / "config.yaml").read_text())["name"] == "lock-0"
    # the store holds exactly what the first study makes on its own
    patch_registry(monkeypatch)
    embed_study(load_config(first), tmp_path / "alone")
    a, b = EmbeddingStore(out / "store"), EmbeddingStore(tmp_path / "alone" / "store")
    for model in ("toy-geometry", "toy-geometry-b"):
        assert a.completed_shards("toy", model) == 10
        x, y = a.load("toy", model, "last", n_shards=10), b.load("toy", model, "last", n_shards=10)
        assert x.ids == y.ids and x.failures == y.failures
        np.testing.assert_array_equal(x.values, y.values)


def test_embed_run_and_align_are_refused_while_another_run_holds_the_lock(tmp_path, monkeypatch):
    patch_registry(monkeypatch)
    out = tmp_path / "out"
    config = study_file(tmp_path / "study.yaml", delay=0.0)
    with held_elsewhere(out / "store"):  # another run is writing
        for command in ("embed", "run", "align"):
            result = runner.invoke(app, [command, str(config), "--out", str(out)])
            assert result.exit_code == 1, result.output
            assert LOCKED in " ".join(result.output.split())
        assert not (out / "config.yaml").exists()
        assert not (out / "store" / "embeddings").exists()
    assert runner.invoke(app, ["embed", str(config), "--out", str(out)]).exit_code == 0
