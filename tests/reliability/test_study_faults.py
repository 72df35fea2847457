"""A whole study with faulty models and data: the healthy part is scored exactly, every skipped
model, metric or sample is recorded with its reason, and a damaged store is never scored."""

from __future__ import annotations

import errno
import os

import numpy as np
import pandas as pd
import pytest

from matteralign import metrics
from matteralign.analysis.matrices import join_on_ids
from matteralign.config import StudyConfig
from matteralign.errors import NothingScoredError, StoreError
from matteralign.run import study as study_module
from matteralign.store import embedding_store
from matteralign.store.embedding_store import EmbeddingStore, StoredEmbeddings
from tests.reliability.faulty_models import patch_registry

STUDY = {
    "name": "faults",
    "datasets": [{"name": "toy"}, {"name": "toy-small"}],
    "models": [{"id": "toy-geometry"}, {"id": "toy-geometry-b", "options": {"seed": 3}},
               {"id": "toy-constant"}, {"id": "toy-broken"}],
    "layers": "all",
    "metrics": ["cknna-k10", "cka-linear"],
    "shard_size": 10,
    "device": "cpu",
}


@pytest.fixture
def toy_registry(monkeypatch):
    patch_registry(monkeypatch)


def _run(out, **change):
    config = StudyConfig(**{**STUDY, **change})
    outcome = study_module.embed_study(config, out)
    return study_module.align_study(config, out, outcome)


def _skipped(outcome) -> dict[str, str]:
    return dict(outcome.skipped)


def _l2(values: np.ndarray) -> np.ndarray:
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def test_faulty_models_and_small_data_are_skipped_with_reasons_rest_is_exact(tmp_path,
                                                                             toy_registry):
    outcome = _run(tmp_path)
    skipped = _skipped(outcome)
    assert skipped["model toy-broken on toy"] == (
        "AdapterError: model toy-broken returned (9, 6) embedding for layer 'first' on a batch "
        "of 10; expected (10, D): the adapter is broken, report it to its author")  # one shard
    for dataset, n in (("toy", 39), ("toy-small", 7)):
        why = skipped[f"model toy-constant on {dataset}"]
        assert why.startswith(f"its embeddings cannot be scored: all {n} rows are"), why
        assert "a constant embedding" in why, why
    # toy-geometry refuses the Xe molecule mol-005; the others embed it, but no score uses it
    dropped = ("another model has no embedding of them (see `matteralign status`); scores use "
               "the 39 samples every model embedded")
    assert skipped["1 samples of toy-geometry-b on toy"] == dropped
    assert skipped["metric cknna-k10 on toy-small"].endswith(
        "k=10 neighbours need N > 10 samples besides self, got N=7; lower k or embed more "
        "samples.")
    assert len(outcome.skipped) == 8  # the above, plus the same three drops on toy-small
    assert sorted(outcome.matrices) == [("toy", "cka-linear"), ("toy", "cknna-k10"),
                                        ("toy-small", "cka-linear")]

    store = EmbeddingStore(tmp_path / "store")
    a = store.load("toy", "toy-geometry", "last")
    b = store.load("toy", "toy-geometry-b", "last")
    assert "mol-005" not in a.ids and len(a.ids) == 39
    shared = [b.ids.index(i) for i in a.ids]
    x, y = _l2(a.values.astype(np.float64)), _l2(b.values[shared].astype(np.float64))
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert set(scores["model_a"]) == {"toy-geometry", "toy-geometry-b"}
    assert np.isfinite(scores["value"]).all()
    for metric in ("cknna-k10", "cka-linear"):
        matrix = pd.read_parquet(tmp_path / "alignment" / "toy" / f"{metric}.parquet")
        expected = metrics.get_metric(metric)(x, y)
        np.testing.assert_allclose(matrix.loc["toy-geometry", "toy-geometry-b"], expected,
                                   rtol=1e-10)
        assert set(scores.query("metric == @metric and dataset == 'toy'")["n"]) == {39}


def test_a_model_that_crashes_while_loading_is_skipped_and_the_others_run(tmp_path,
                                                                          toy_registry):
    models = [{"id": "toy-crashing"}, {"id": "toy-geometry"}, {"id": "toy-geometry-b"}]
    outcome = _run(tmp_path, models=models, datasets=STUDY["datasets"][:1])
    assert "AttributeError" in _skipped(outcome)["model toy-crashing on toy"]
    assert ("toy", "cknna-k10") in outcome.matrices


def test_corrupt_shard_is_never_scored_and_a_rerun_recomputes_only_it(tmp_path, toy_registry):
    _run(tmp_path)
    reference = pd.read_parquet(tmp_path / "scores.parquet")
    store = EmbeddingStore(tmp_path / "store")
    path = store.shard_path("toy", "toy-geometry-b", 1)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x10  # one flipped bit inside a tensor
    path.write_bytes(bytes(data))
    mtimes = {p: p.stat().st_mtime_ns for p in store.shard_paths("toy", "toy-geometry-b")}

    config = StudyConfig(**STUDY)
    aligned = study_module.align_study(config, tmp_path)
    assert _skipped(aligned)["model toy-geometry-b on toy"] == (
        f"shard {path} fails its checksum (its tensors, sample ids or header changed since it "
        "was written); rerun `matteralign embed` to recompute it")
    assert ("toy", "cknna-k10") not in aligned.matrices  # one healthy model left: no score

    embedded = study_module.embed_study(config, tmp_path)
    summary = {(s.dataset, s.model): s for s in embedded.embedded}[("toy", "toy-geometry-b")]
    assert (summary.computed, summary.skipped) == (1, 3)
    assert [p for p, t in mtimes.items() if p.stat().st_mtime_ns != t] == [path]
    study_module.align_study(config, tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "scores.parquet"), reference,
                                  check_exact=True)


def test_an_unfinished_embedding_is_not_scored(tmp_path, toy_registry):
    _run(tmp_path)
    reference = pd.read_parquet(tmp_path / "scores.parquet")
    store = EmbeddingStore(tmp_path / "store")
    # a rerun that rewrote shard 2 and was killed before the others: the record is gone
    store.write_shard("toy", "toy-geometry", 2,
                      store.read_shard(store.shard_path("toy", "toy-geometry", 2)))
    assert store.completed_shards("toy", "toy-geometry") is None
    # ... and a larger dataset whose last shards were never written
    store.shard_path("toy", "toy-geometry-b", 3).unlink()
    config = StudyConfig(**STUDY)
    outcome = study_module.align_study(config, tmp_path)
    skipped = _skipped(outcome)
    assert skipped["model toy-geometry on toy"].startswith(
        "the embedding of model 'toy-geometry' on 'toy' did not finish")
    # the analyses and the report leave it out too, with the same reason
    from matteralign.analysis.study import AnalysisOptions, StudyAnalysis, load_dataset_embeddings

    result = StudyAnalysis("toy", AnalysisOptions(), "cknna-k10")
    data = load_dataset_embeddings(store, config, "toy", AnalysisOptions(), result)
    assert data is None or "toy-geometry" not in data.values
    assert any("toy-geometry on toy left out: the embedding of model 'toy-geometry' on 'toy' "
               "did not finish" in note for note in result.notes.get("matrices", []))
    assert skipped["model toy-geometry-b on toy"] == (
        "3 of 4 shards of 'toy-geometry-b' on 'toy' are stored (missing "
        "shard-00003.safetensors); rerun `matteralign embed` to finish")
    assert ("toy", "cknna-k10") not in outcome.matrices
    # a killed run's half-written temporary file is cleaned up by the next run
    leftover = store.model_dir("toy", "toy-geometry-b") / ".shard-00003.safetensors.x1y2z3w4.tmp"
    leftover.write_bytes(b"half a shard")
    study_module.embed_study(config, tmp_path)
    assert not leftover.exists()
    study_module.align_study(config, tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "scores.parquet"), reference,
                                  check_exact=True)


def test_full_disk_is_a_store_error_naming_the_file_and_leaves_no_temp_file(tmp_path,
                                                                           toy_registry,
                                                                           monkeypatch):
    real_fdopen = os.fdopen
    room = {"files": 1}

    class FullDisk:
        """A file handle on a disk with room for ``room["files"]`` more files."""

        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            room["files"] -= 1
            if room["files"] < 0:
                self.handle.write(data[: len(data) // 2])  # a partial write, then ENOSPC
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(embedding_store.os, "fdopen",
                        lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    store = EmbeddingStore(tmp_path / "first")
    store.write_shard("toy", "m", 0, _record(1.0))
    with pytest.raises(StoreError, match=r"no space left on the disk to write .*shard-00000"
                                         r"\.safetensors \(No space left on device\); free some "
                                         "space"):
        store.write_shard("toy", "m", 0, _record(2.0))
    assert store.load("toy", "m", "h").values[0, 0] == 1.0  # the old shard is intact
    left = sorted(p.name for p in store.model_dir("toy", "m").iterdir())
    assert left == ["shard-00000.safetensors"]  # no temporary file, no completion record

    # a study: room for the sample table and six shards; toy-geometry's four fit,
    # toy-geometry-b's last two do not, and the completion record then fails the run
    config = StudyConfig(**{**STUDY, "models": STUDY["models"][:2],
                            "datasets": STUDY["datasets"][:1]})
    room["files"] = 7
    with pytest.raises(StoreError, match=r"no space left on the disk to write .*toy-geometry/"
                                         r"complete\.json"):
        study_module.embed_study(config, tmp_path)
    assert not list((tmp_path / "store").rglob("*.tmp"))
    monkeypatch.setattr(embedding_store.os, "fdopen", real_fdopen)
    aligned = study_module.StudyOutcome(tmp_path)
    with pytest.raises(NothingScoredError, match="nothing was scored"):
        study_module.align_study(config, tmp_path, aligned)
    assert [what for what, _ in aligned.skipped] == ["model toy-geometry on toy",
                                                     "model toy-geometry-b on toy"]
    assert not aligned.matrices

    # space freed: the rerun finishes the missing shards and equals a run that never failed
    rerun = study_module.embed_study(config, tmp_path)
    assert [(s.computed, s.skipped) for s in rerun.embedded] == [(0, 4), (2, 2)]
    study_module.align_study(config, tmp_path)
    clean = tmp_path / "clean"
    study_module.embed_study(config, clean)
    study_module.align_study(config, clean)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "scores.parquet"),
                                  pd.read_parquet(clean / "scores.parquet"), check_exact=True)


def _record(value: float):
    from matteralign.store.embedding_store import ShardRecord

    return ShardRecord(["a"], {"h": np.full((1, 3), value, np.float32)}, None, [], "hash", {})


def test_duplicated_or_disjoint_ids_are_store_errors_naming_model_and_dataset():
    def stored(model, ids):
        return StoredEmbeddings(model, "toy", "h", ids, np.eye(len(ids)), None, [])

    with pytest.raises(StoreError, match="model 'b' has duplicated sample ids in 'toy'"):
        join_on_ids([stored("a", ["x", "y"]), stored("b", ["x", "x"])])
    with pytest.raises(StoreError, match="share no embedded sample ids on dataset 'toy'"):
        join_on_ids([stored("a", ["x", "y"]), stored("b", ["z"])])
    joined = join_on_ids([stored("a", ["x", "y", "w"]), stored("b", ["w", "q", "x"])])
    assert joined.ids == ["x", "w"] and joined.dropped == {"a": 1, "b": 1}
    np.testing.assert_array_equal(joined.values["b"], np.eye(3)[[2, 0]])
