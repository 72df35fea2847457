"""``matteralign embed`` killed with SIGKILL at 20 seeded random moments: every resumed run ends
with a store whose content is bit-identical to that of an uninterrupted run.

A moment is drawn as a stage, not a clock time, so that a loaded machine cannot shift every kill
before the first shard or after the last: a seeded number t of shards in 0..20; the kill comes a
random fraction of a batch's delay after the t-th shard appears (t = 0: after ``config.yaml``
is written, within half a batch's delay, so before any shard; t = 20: while the completion
records and manifest are written).

Content (see :func:`tests.reliability.store_snapshot.store_content`) means every shard's
tensors, sample ids, failures, configuration hash and provenance, the completion records and the
manifest; the one field left out is ``runtime_s`` (the seconds a shard took), which legitimately
differs between runs.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from matteralign.store.embedding_store import EmbeddingStore
from tests.reliability.store_snapshot import store_content
from tests.reliability.toy_cli import spawn

N_KILLS = 20
SEED = 20240611
MODELS = ("toy-geometry", "toy-nonfinite")


def study_file(path: Path) -> Path:
    config = {
        "name": "sigkill", "datasets": [{"name": "toy"}],
        "models": [
            {"id": "toy-geometry", "options": {"delay": 0.2, "width": 64}},  # refuses Xe
            {"id": "toy-nonfinite", "options": {"delay": 0.2, "nan": ["mol-007"],
                                                "nan_energy": ["mol-031"]}},
        ],
        "shard_size": 4, "device": "cpu",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def shard_count(out: Path) -> int:
    return len(list((out / "store" / "embeddings").glob("toy/*/shard-*.safetensors")))


def _wait_for(process, condition) -> None:
    """Poll until ``condition()`` holds or ``process`` has ended."""
    deadline = time.monotonic() + 600
    while not condition() and process.poll() is None:
        assert time.monotonic() < deadline, "the run did not get there in time"
        time.sleep(0.01)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_store(tmp_path):
    config = study_file(tmp_path / "study.yaml")
    reference = spawn("embed", str(config), "--out", str(tmp_path / "reference"))
    output, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, output
    expected = store_content(tmp_path / "reference" / "store")
    assert shard_count(tmp_path / "reference") == 20
    failures = EmbeddingStore(tmp_path / "reference" / "store").failures()
    assert {(f["model"], f["sample_id"]) for f in failures} == {
        ("toy-geometry", "mol-005"), ("toy-nonfinite", "mol-007"), ("toy-nonfinite", "mol-031")}

    rng = np.random.default_rng(SEED)
    stages = rng.integers(0, 21, size=N_KILLS)
    delays = rng.uniform(0.0, 0.2, size=N_KILLS)  # within one batch's delay
    written_at_kill = []
    for trial, (stage, delay) in enumerate(zip(stages, delays, strict=True)):
        out = tmp_path / f"killed-{trial}"
        process = spawn("embed", str(config), "--out", str(out))
        if stage == 0:
            _wait_for(process, lambda out=out: (out / "config.yaml").exists())
            time.sleep(delay / 2)
        else:
            _wait_for(process, lambda out=out, stage=stage: shard_count(out) >= stage)
            time.sleep(delay)
        moment = f"stage {stage}, +{delay:.2f} s"
        process.send_signal(signal.SIGKILL)
        process.communicate()
        written_at_kill.append(shard_count(out))
        store = EmbeddingStore(out / "store")
        # what a killed run leaves is sound: no half-written shard is visible, and no
        # unfinished model is marked complete
        for model in MODELS:
            for path in store.shard_paths("toy", model):
                store.read_shard(path, verify=True)
            n_shards = store.completed_shards("toy", model)
            assert n_shards is None or len(store.shard_paths("toy", model)) == n_shards == 10

        resumed = spawn("embed", str(config), "--out", str(out))
        output, _ = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, output
        assert store_content(out / "store") == expected, f"trial {trial}: killed at {moment}"
    # the kills hit every stage: before any shard, part-way, and (some) after the last one
    partway = [n for n in written_at_kill if 0 < n < 20]
    assert len(partway) >= N_KILLS // 4, written_at_kill
    assert 0 in written_at_kill, written_at_kill
