"""Model environments: definitions, layered builds, and jobs run by a worker inside one.

The fast tests build a toy environment with no requirements of its own (a venv and a ``.pth``
file: under a second) and run the toy adapters in it. The slow test runs a whole study through
``matteralign run`` with SevenNet-0 (main environment) and a tiny MACE (``mace`` environment),
kills it mid-embedding, resumes it and reruns it.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import torch
import yaml

import matteralign
from matteralign.errors import ConfigError
from matteralign.run import worker as worker_module
from matteralign.run.environments import (
    BuiltEnvironment,
    EnvironmentSpec,
    build,
    environment_root,
    environment_specs,
    get_environment,
)
from matteralign.run.executors import LocalExecutor, collect_summaries, plan_embed_jobs
from matteralign.store.embedding_store import EmbeddingStore
from tests.reliability.store_snapshot import store_content

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
toy_models = importlib.import_module("toy_models")


@pytest.fixture(scope="module")
def toy_environment(tmp_path_factory) -> BuiltEnvironment:
    """An environment with no packages of its own but one variable, built in a temporary folder."""
    spec = EnvironmentSpec(name="toy", variables={"MATTERALIGN_TOY_VARIABLE": "set"})
    return build(BuiltEnvironment(spec, tmp_path_factory.mktemp("envs") / "toy-0"))


@pytest.fixture
def toy_path(monkeypatch):
    """Workers import ``toy_models`` (the cards' adapter module) through PYTHONPATH."""
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    monkeypatch.setenv("PYTHONPATH", path)


def test_definitions_name_their_folder_by_a_hash_of_the_definition(monkeypatch, tmp_path):
    monkeypatch.setenv("MATTERALIGN_ENV_DIR", str(tmp_path))
    assert environment_root() == tmp_path
    mace = environment_specs()["mace"]
    assert "e3nn==0.4.4" in mace.requirements
    environment = get_environment("mace")
    assert environment.path.parent == tmp_path and environment.path.name.startswith("mace-")
    assert not environment.built
    assert environment.create_command() == "matteralign env create mace"
    with pytest.raises(ConfigError, match="unknown model environment 'nope'; defined: .*mace"):
        get_environment("nope")


def test_layered_environment_reuses_the_main_packages_after_its_own(toy_environment):
    probe = ("import json, os, sys, sysconfig; from importlib.util import find_spec as f; "
             "print(json.dumps({'path': sys.path, 'own': sysconfig.get_paths()['purelib'], "
             "'torch': f('torch').origin, 'matteralign': f('matteralign').origin, "
             "'var': os.environ.get('MATTERALIGN_TOY_VARIABLE')}))")
    seen = json.loads(subprocess.run([str(toy_environment.python), "-c", probe], check=True,
                                     capture_output=True, text=True).stdout)
    main = sysconfig.get_paths()["purelib"]
    assert seen["path"].index(seen["own"]) < seen["path"].index(main)  # own packages win
    assert seen["torch"] == torch.__file__  # torch is the main environment's, not a copy
    assert seen["matteralign"] == matteralign.__file__
    assert seen["var"] == "set"
    record = toy_environment.record()
    assert record["name"] == "toy" and record["packages"] == {}
    assert build(toy_environment) == toy_environment  # built: a no-op


def _run_jobs(store: EmbeddingStore, run) -> list:  # noqa: ANN001
    card, dataset = toy_models.toy_card(), toy_models.toy_dataset()
    jobs = plan_embed_jobs(card, {}, dataset, store, shard_size=10, batch_budget=12,
                           cpu_threads=1)
    summaries, failures = collect_summaries(jobs, run(jobs), store)
    assert not failures, failures
    return summaries


def test_a_worker_in_an_environment_writes_the_shards_an_in_process_job_writes(
    tmp_path, toy_environment, toy_path
):
    reference = EmbeddingStore(tmp_path / "here")
    with LocalExecutor() as executor:
        _run_jobs(reference, executor.run)
    store = EmbeddingStore(tmp_path / "worker")
    results = []

    def in_environment(jobs):
        for result in worker_module.run_in_environment(toy_environment, jobs):
            results.append(result)
            yield result

    summaries = _run_jobs(store, in_environment)
    assert summaries[0].n_embedded == 22 and summaries[0].n_failed == 1  # Xe is refused
    assert len({result.worker for result in results}) == 1  # all shards in one worker
    assert {result.worker.split(":")[1] for result in results} != {str(os.getpid())}
    assert store_content(store.root) == store_content(reference.root)
    again = _run_jobs(store, lambda jobs: worker_module.run_in_environment(toy_environment, jobs))
    assert again[0].skipped == 3 and again[0].computed == 0  # resumed: every shard current


def test_the_local_executor_sends_jobs_of_a_named_environment_to_a_worker(
    tmp_path, toy_environment, toy_path, monkeypatch
):
    named = toy_models.toy_card(environment="toy")
    monkeypatch.setattr(worker_module, "card_environment",
                        lambda card: toy_environment if card.environment == "toy" else None)
    store = EmbeddingStore(tmp_path / "store")
    dataset = toy_models.toy_dataset()
    jobs = (plan_embed_jobs(named, {}, dataset, store, shard_size=10, cpu_threads=1)
            + plan_embed_jobs(toy_models.toy_card("toy-here"), {}, dataset, store,
                              shard_size=10, cpu_threads=1))
    with LocalExecutor() as executor:
        results = list(executor.run(jobs))
    workers = {result.model: {r.worker for r in results if r.model == result.model}
               for result in results}
    assert workers["toy-here"] == {f"{os.uname().nodename}:{os.getpid()}"}
    assert len(workers["toy-distance"]) == 1
    assert workers["toy-distance"] != workers["toy-here"]
    assert all(result.status == "computed" for result in results)


def test_ray_tasks_of_a_named_environment_run_its_python(monkeypatch, tmp_path,
                                                        toy_environment):
    from matteralign.run import environments
    from matteralign.run.environments import EnvironmentBuildError
    from matteralign.run.executors import runtime_env_for

    monkeypatch.setenv("MATTERALIGN_ENV_DIR", str(tmp_path))  # nothing built there
    with pytest.raises(EnvironmentBuildError, match="`matteralign env create mace`"):
        runtime_env_for(toy_models.toy_card(environment="mace"))
    monkeypatch.setattr(environments, "get_environment", lambda name: toy_environment)
    assert runtime_env_for(toy_models.toy_card(environment="toy")) == {
        "py_executable": str(toy_environment.python)}


def test_a_missing_environment_is_refused_with_the_command_that_builds_it(tmp_path):
    missing = BuiltEnvironment(EnvironmentSpec(name="mace"), tmp_path / "mace-0")
    store = EmbeddingStore(tmp_path / "store")
    jobs = plan_embed_jobs(toy_models.toy_card(), {}, toy_models.toy_dataset(), store,
                           shard_size=10)
    results = list(worker_module.run_in_environment(missing, jobs))
    assert [result.status for result in results] == ["failed"] * 3
    assert "environment 'mace', which is not built; build it with `matteralign env create mace`" \
        in results[0].error


def test_a_worker_that_dies_fails_its_unfinished_jobs_with_its_last_words(
    tmp_path, toy_environment
):
    store = EmbeddingStore(tmp_path / "store")  # no PYTHONPATH: the worker cannot import toys
    jobs = plan_embed_jobs(toy_models.toy_card(), {}, toy_models.toy_dataset(), store,
                           shard_size=10)
    results = list(worker_module.run_in_environment(toy_environment, jobs))
    assert [result.status for result in results] == ["failed"] * 3
    assert "toy_models" in results[0].error


# ---- a study with two environments, through the command line -----------------------------------


def _study(path: Path, checkpoint: Path) -> Path:
    config = {
        "name": "mixed", "datasets": [{"name": "elemental-crystals", "n": 60, "seed": 0}],
        "models": [{"id": "sevennet-0"},
                   {"id": "mace-mp-0-small", "options": {"checkpoint": str(checkpoint)}}],
        "layers": "last", "metrics": ["cknna-k10"], "shard_size": 1, "device": "cpu",
        "cpu_threads": 1,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _content(root: Path) -> dict:
    import pandas as pd

    content = store_content(root)
    manifest = pd.read_parquet(root / "manifest.parquet").drop(columns=["runtime_s", "checksum"])
    content["manifest.parquet"] = manifest.to_json()
    return content


def _matteralign(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "matteralign.cli.main", *args], cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sevennet_and_a_tiny_mace_in_its_environment_killed_resumed_and_rerun(
    tmp_path, request
):
    from matteralign.run.environments import build_environment
    from tests.models.environments import tiny_model

    checkpoint = tiny_model(request.config, build_environment("mace"), "mace", "tiny.model")
    config = _study(tmp_path / "study.yaml", checkpoint)
    out = tmp_path / "killed"
    process = _matteralign("run", str(config), "--out", str(out))
    mace_shards = out / "store" / "embeddings" / "elemental-crystals" / "mace-mp-0-small"
    deadline = time.monotonic() + 600
    while not list(mace_shards.glob("shard-*.safetensors")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # mid-embedding of the MACE worker
    process.communicate()
    written = len(list(mace_shards.glob("shard-*.safetensors")))
    assert 0 < written < 60

    resumed = _matteralign("run", str(config), "--out", str(out))
    output, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, output
    summary = json.loads((out / "summary.json").read_text())
    assert not summary.get("skipped"), summary
    scores = list(out.rglob("*cknna*"))
    assert scores, sorted(str(p.relative_to(out)) for p in out.rglob("*"))

    rerun = tmp_path / "rerun"
    again = _matteralign("run", str(config), "--out", str(rerun))
    output, _ = again.communicate(timeout=900)
    assert again.returncode == 0, output
    # every shard, completion record and manifest row is equal; the manifest's checksum column
    # is left out, as the checksum also covers each shard's runtime_s
    assert _content(rerun / "store") == _content(out / "store")
    header = EmbeddingStore(out / "store").read_header(mace_shards / "shard-00000.safetensors")
    provenance = json.loads(header["provenance"])
    assert provenance["checkpoint"] == str(checkpoint)
    import hashlib

    assert provenance["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
