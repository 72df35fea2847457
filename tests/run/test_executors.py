"""Executors: serial, process pool and Ray runs of the same jobs give bit-identical stores."""

from __future__ import annotations

import importlib
import os
import queue
import sys
from pathlib import Path

import numpy as np
import pytest

from matteralign.config import StudyConfig
from matteralign.errors import ConfigError
from matteralign.models.card import Environment
from matteralign.run import study as study_module
from matteralign.run.embed import embed_dataset
from matteralign.run.executors import (
    EmbedJob,
    LocalExecutor,
    RayExecutor,
    _pin_worker,
    collect_summaries,
    make_executor,
    plan_embed_jobs,
    runtime_env_for,
)
from matteralign.store.embedding_store import EmbeddingStore

HERE = Path(__file__).resolve().parent
# Workers import the toy adapters as the top-level module their cards name ("toy_models:..."):
# this process and its spawned pool through sys.path, Ray workers through PYTHONPATH.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
toy_models = importlib.import_module("toy_models")
toy_card, toy_dataset = toy_models.toy_card, toy_models.toy_dataset
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module; workers import ``toy_models`` via PYTHONPATH."""
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def _run(executor, store, card, dataset, **kw):
    jobs = plan_embed_jobs(card, {}, dataset, store, shard_size=10, batch_budget=12, **kw)
    return collect_summaries(jobs, executor.run(jobs), store)


def _stored(store: EmbeddingStore, model: str = "toy-distance", dataset: str = "toy"):
    return {layer: store.load(dataset, model, layer, n_shards=3) for layer in ("first", "last")}


def _assert_same(a: EmbeddingStore, b: EmbeddingStore, model: str = "toy-distance") -> None:
    for layer, stored in _stored(a, model).items():
        other = _stored(b, model)[layer]
        assert stored.ids == other.ids
        assert stored.failures == other.failures
        assert stored.values.dtype == other.values.dtype
        np.testing.assert_array_equal(stored.values, other.values)
        np.testing.assert_array_equal(stored.energy, other.energy)
    for shard in range(3):  # the checksum also covers the provenance (runtime, threads)
        ra = a.read_shard(a.shard_path("toy", model, shard))
        rb = b.read_shard(b.shard_path("toy", model, shard))
        assert ra.config_hash == rb.config_hash
        assert {k: v.tobytes() for k, v in ra.layers.items()} == {
            k: v.tobytes() for k, v in rb.layers.items()}


def test_serial_executor_equals_embed_dataset_and_resumes_it(tmp_path):
    card, dataset = toy_card(), toy_dataset()
    reference = EmbeddingStore(tmp_path / "reference")
    embed_dataset(toy_models.PairDistanceAdapter(card), dataset, reference, shard_size=10,
                  batch_budget=12)
    store = EmbeddingStore(tmp_path / "serial")
    with LocalExecutor(workers=1) as executor:
        (summary,), failures = _run(executor, store, card, dataset)
        assert failures == []
        assert (summary.n_shards, summary.computed, summary.n_embedded, summary.n_failed) == (
            3, 3, 22, 1)
        _assert_same(reference, store)
        # the store embed_dataset filled is current for the executor: nothing is recomputed
        (again,), _ = _run(executor, reference, card, dataset)
    assert (again.computed, again.skipped, again.n_embedded) == (0, 3, 22)


def test_process_pool_equals_serial(tmp_path):
    card, dataset = toy_card(), toy_dataset()
    serial, pooled = EmbeddingStore(tmp_path / "a"), EmbeddingStore(tmp_path / "b")
    with LocalExecutor(workers=1) as executor:
        _run(executor, serial, card, dataset, cpu_threads=1)
    with LocalExecutor(workers=2) as executor:
        (summary,), _ = _run(executor, pooled, card, dataset, cpu_threads=1)
    assert summary.computed == 3
    _assert_same(serial, pooled)
    workers = {pooled.read_shard(p).provenance["hardware"] for p in pooled.shard_paths("toy",
                                                                                        card.id)}
    assert all(w.endswith("device cpu, torch threads 1") for w in workers)


def test_cpu_threads_are_one_count_for_every_executor_and_the_state_is_restored(tmp_path,
                                                                                monkeypatch):
    import torch

    from matteralign.run.executors import job_numerics

    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        cards, datasets = {"toy-distance": toy_card()}, {"toy": toy_dataset()}
        _patch_registry(monkeypatch, cards, datasets)
        raw = {"name": "toy", "datasets": [{"name": "toy"}], "models": [{"id": "toy-distance"}],
               "shard_size": 10, "device": "cpu"}
        # auto is one thread per job whatever the executor and worker count
        for workers in (1, 2, "auto"):
            assert study_module.job_cpu_threads(StudyConfig(**raw, workers=workers)) == 1
        assert study_module.job_cpu_threads(StudyConfig(**raw, executor="ray")) == 1
        # a study's cpu_threads reaches its jobs; a serial run gives the caller its count back
        study_module.embed_study(StudyConfig(**raw, cpu_threads=3), tmp_path / "three")
        assert torch.get_num_threads() == 4
        study_module.embed_study(StudyConfig(**raw), tmp_path / "auto")
        # a job starts from the same numeric state whatever ran before it in the process
        torch.set_default_dtype(torch.float64)
        torch.set_float32_matmul_precision("medium")
        with job_numerics(2):
            assert torch.get_num_threads() == 2
            assert torch.get_default_dtype() == torch.float32
            assert torch.get_float32_matmul_precision() == "highest"
            assert torch.are_deterministic_algorithms_enabled()
        assert (torch.get_num_threads(), torch.get_default_dtype()) == (4, torch.float64)
        assert torch.get_float32_matmul_precision() == "medium"
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(torch.float32)
        torch.set_float32_matmul_precision("highest")
    for folder, expected in (("three", 3), ("auto", 1)):
        store = EmbeddingStore(tmp_path / folder / "store")
        hardware = {store.read_shard(p).provenance["hardware"]
                    for p in store.shard_paths("toy", "toy-distance")}
        assert len(hardware) == 1 and hardware.pop().endswith(f"torch threads {expected}")
    with pytest.raises(ValueError, match="cpu_threads"):
        StudyConfig(**raw, cpu_threads=0)


def test_ray_run_is_bit_identical_to_local_and_resumable(tmp_path, ray_cluster):
    card, dataset = toy_card(), toy_dataset()
    local, distributed = EmbeddingStore(tmp_path / "local"), EmbeddingStore(tmp_path / "ray")
    with LocalExecutor(workers=1) as executor:
        _run(executor, local, card, dataset)
    executor = RayExecutor()
    (summary,), failures = _run(executor, distributed, card, dataset)
    assert failures == [] and (summary.computed, summary.n_embedded, summary.n_failed) == (3, 22, 1)
    _assert_same(local, distributed)
    assert dict(_stored(distributed)["last"].failures)["mol-005"] == "element Xe not covered"
    # a second Ray run finds every shard current; a truncated shard is the only one recomputed
    path = distributed.shard_path("toy", card.id, 1)
    path.write_bytes(path.read_bytes()[:-5])
    (rerun,), _ = _run(executor, distributed, card, dataset)
    assert (rerun.computed, rerun.skipped) == (1, 2)
    _assert_same(local, distributed)


def _patch_registry(monkeypatch, cards, datasets):
    monkeypatch.setattr(study_module, "get_card", lambda model_id: cards[model_id])
    monkeypatch.setattr(study_module, "get_dataset_spec", lambda name: datasets[name])
    monkeypatch.setattr(study_module, "load_dataset",
                        lambda name, n=None, seed=0, data_root=None: datasets[name])


def test_ray_study_equals_local_study(tmp_path, monkeypatch, ray_cluster):
    cards = {"toy-distance": toy_card(), "toy-seeded": toy_card("toy-seeded"),
             "toy-missing": toy_card("toy-missing", "MissingWeightsAdapter")}
    datasets = {"toy": toy_dataset(), "toy-small": toy_dataset(7, "toy-small")}
    _patch_registry(monkeypatch, cards, datasets)
    raw = {"name": "toy", "datasets": [{"name": "toy"}, {"name": "toy-small"}],
           "models": [{"id": "toy-distance"}, {"id": "toy-seeded", "options": {"seed": 3}},
                      {"id": "toy-missing"}],
           "shard_size": 10, "device": "cpu", "metrics": ["cknna-k2"]}
    local = study_module.embed_study(StudyConfig(**raw), tmp_path / "local")
    remote = study_module.embed_study(StudyConfig(**raw, executor="ray"), tmp_path / "ray")
    assert [vars(s) for s in local.embedded] == [vars(s) for s in remote.embedded]
    assert [(s.model, s.dataset) for s in remote.embedded] == [
        ("toy-distance", "toy"), ("toy-distance", "toy-small"),
        ("toy-seeded", "toy"), ("toy-seeded", "toy-small")]
    # the model without weights is reported once, as the serial runner did
    assert [what for what, _ in remote.skipped] == ["model toy-missing on toy"]
    assert "not found at /nowhere" in remote.skipped[0][1]
    a, b = EmbeddingStore(tmp_path / "local/store"), EmbeddingStore(tmp_path / "ray/store")
    for model in ("toy-distance", "toy-seeded"):
        _assert_same(a, b, model)
    seeded = b.load("toy", "toy-seeded", "last").values
    assert not np.array_equal(seeded, b.load("toy", "toy-distance", "last").values)
    import pandas as pd

    manifest = pd.read_parquet(tmp_path / "ray/store/manifest.parquet")
    assert len(manifest) == 2 * (3 + 1) and set(manifest.status) == {"ok"}


def test_runtime_env_from_card_environment_is_passed_to_ray_tasks(ray_cluster):
    assert runtime_env_for(toy_card()) is None
    pip_card = toy_card(environment=Environment(requirements=["torch==2.2.0"], no_deps=["x==1"]))
    env = runtime_env_for(pip_card)
    assert env["pip"] == {"packages": ["torch==2.2.0"], "pip_check": False}
    assert env["env_vars"] == {"MATTERALIGN_NO_DEPS": '["x==1"]'}
    assert env["worker_process_setup_hook"] == "matteralign.run.executors.install_no_deps"
    conda = runtime_env_for(toy_card(environment=Environment(python="3.10", requirements=["a"])))
    assert conda["conda"]["dependencies"] == ["python=3.10", "pip", {"pip": ["a"]}]
    assert conda["py_modules"][0].endswith("matteralign")

    executor = RayExecutor(device="cuda")
    seen = {}

    class Remote:
        def options(self, **options):
            seen.update(options)
            return self

        def remote(self, job):
            seen["device"] = job.device
            return None

    executor._remote = Remote()
    job = EmbedJob(card=pip_card, options={}, dataset="toy", dataset_version="1",
                   dataset_fingerprint="f", shard=0, n_shards=1, samples=[], store_root="/tmp",
                   device="cuda:1")
    executor._submit(job)
    assert seen == {"num_cpus": 1.0, "num_gpus": 1.0, "runtime_env": env, "device": "cuda"}


def test_local_executor_pins_one_gpu_per_worker(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    executor = LocalExecutor(workers="auto", device="cuda")
    assert (executor.workers, executor.gpus) == (2, ["3", "5"])
    slots: queue.Queue = queue.Queue()
    slots.put("5")
    _pin_worker(slots)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    assert LocalExecutor(workers="auto", device="cpu").workers == (os.cpu_count() or 1)
    with pytest.raises(ConfigError, match="positive integer"):
        LocalExecutor(workers=0)
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        make_executor("dask")


def test_study_config_executor_settings():
    config = StudyConfig(name="x", datasets=[{"name": "d"}], models=[{"id": "m"}])
    assert (config.executor, config.workers, config.ray_address) == ("local", 1, None)
    config = StudyConfig(name="x", datasets=[{"name": "d"}], models=[{"id": "m"}],
                         executor="ray", workers="auto", ray_address="auto")
    assert (config.executor, config.workers, config.ray_address) == ("ray", "auto", "auto")
    assert (config.cpu_threads, config.prepare_workers) == ("auto", 0)
    with pytest.raises(ValueError, match="prepare_workers"):
        StudyConfig(name="x", datasets=[{"name": "d"}], models=[{"id": "m"}], prepare_workers=-1)
