"""Executors: where (model x dataset-shard) embedding jobs run — in process, a process pool, or Ray.

One interface, :class:`Executor`, yields :class:`JobResult` as jobs finish; the coordinator (see
:func:`matteralign.run.study.embed_study`) holds the store lock and alone writes the manifest.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from matteralign.data.atom_sample import AtomSampling, sample_atoms
from matteralign.data.sample import Dataset, Sample
from matteralign.errors import ConfigError
from matteralign.models.adapter import ModelAdapter
from matteralign.models.card import ModelCard
from matteralign.run.embed import (
    EmbedSummary,
    atom_level_name,
    atom_shard_hash,
    compute_shard,
    default_batch_budget,
    quiet_load,
    remove_stale_shards,
    resolve_layers,
    shard_config_hash,
    shard_slices,
    stored_shard_counts,
)
from matteralign.store.embedding_store import EmbeddingStore

__all__ = [
    "EmbedJob",
    "Executor",
    "JobResult",
    "LocalExecutor",
    "RayExecutor",
    "collect_summaries",
    "make_executor",
    "plan_embed_jobs",
    "run_embed_job",
    "runtime_env_for",
    "visible_gpus",
]

Status = Literal["computed", "skipped", "failed"]


@dataclass
class EmbedJob:
    """One unit of scheduled work: one model over one shard of one dataset.

    The job carries the shard's samples and the dataset's identity (name, version, fingerprint),
    not the whole dataset, so that sending it to a worker costs one shard.

    Attributes
    ----------
    card : ModelCard
        The model's card (its ``adapter`` is imported in the worker).
    options : dict
        Adapter options, as the study gives them.
    samples : list of Sample
        The shard's samples, in dataset order.
    store_root : str
        Folder of the :class:`EmbeddingStore`; must be visible to every worker (shared disk).
    layers : "last", "all" or list of str
        Unresolved layer selection.
    cpu_threads : int
        Torch intra-op threads for CPU work, the same for every job of a run (the planner sets it,
        not the worker): float reductions may depend on the thread count.
    prepare_workers : int
        Forked processes that prepare samples while the model runs (see
        :func:`matteralign.run.embed.prepared_items`); 0 = in the job's process.
    atoms : dict of str to int array, optional
        Atom level: the atoms of each of ``samples`` to embed (``dataset`` is then the
        ``"<name>@atoms"`` store name); ``atom_sampling`` is the sampling that chose them.
    """

    card: ModelCard
    options: dict[str, Any]
    dataset: str
    dataset_version: str
    dataset_fingerprint: str
    shard: int
    n_shards: int
    samples: list[Sample]
    store_root: str
    layers: str | list[str] = "all"
    pooling: str | None = None
    shard_size: int = 256
    batch_budget: int = 32
    device: str = "cpu"
    dtype: str = "float32"
    cpu_threads: int = 1
    prepare_workers: int = 0
    atoms: dict[str, Any] | None = None
    atom_sampling: AtomSampling | None = None

    @property
    def model(self) -> str:
        return self.card.id


@dataclass
class JobResult:
    """What one job did: computed or skipped the shard, or failed to load the model."""

    dataset: str
    model: str
    shard: int
    status: Status
    n_samples: int
    n_embedded: int = 0
    n_failed: int = 0
    error: str = ""
    seconds: float = 0.0
    worker: str = ""


# ---- the worker side ---------------------------------------------------------------------------

_CACHE: dict[str, Any] = {"key": None, "adapter": None, "loaded": None}


def _adapter_for(card: ModelCard, options: dict[str, Any]) -> ModelAdapter:
    """This process's adapter for (card, options), created once and reused across shards.

    Only one model is kept: switching models unloads the previous one, so a GPU worker holds
    one set of weights at a time.
    """
    key = card.model_dump_json() + json.dumps(options, sort_keys=True, default=str)
    if _CACHE["key"] != key:
        if _CACHE["adapter"] is not None:
            _CACHE["adapter"].unload()
        module_name, class_name = card.adapter.split(":")
        adapter_class = getattr(importlib.import_module(module_name), class_name)
        _CACHE.update(key=key, adapter=adapter_class(card, **options), loaded=None)
    return _CACHE["adapter"]


def release_adapter() -> None:
    """Unload and forget this process's cached adapter."""
    if _CACHE["adapter"] is not None:
        _CACHE["adapter"].unload()
    _CACHE.update(key=None, adapter=None, loaded=None)


def run_embed_job(job: EmbedJob) -> JobResult:
    """Embed one shard (or find it current and skip it); the function every executor runs.

    A model that cannot be created or loaded (:class:`MatterAlignError`, ``ImportError``) gives a
    ``"failed"`` result naming the error; per-sample failures are recorded in the shard as usual.
    """
    started = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    common = dict(dataset=job.dataset, model=job.model, shard=job.shard,
                  n_samples=len(job.samples), worker=worker)
    store = EmbeddingStore(job.store_root)
    try:
        with job_numerics(job.cpu_threads if job.device == "cpu" else None):
            n_ok, n_bad, skipped = _embed_shard(job, store)
    except Exception as error:  # a model that cannot load or run is skipped, not the whole study
        _CACHE.update(key=None, adapter=None, loaded=None)
        return JobResult(status="failed", error=f"{type(error).__name__}: {error}",
                         seconds=time.perf_counter() - started, **common)
    return JobResult(status="skipped" if skipped else "computed", n_embedded=n_ok,
                     n_failed=n_bad, seconds=time.perf_counter() - started, **common)


@contextmanager
def job_numerics(threads: int | None) -> Iterator[None]:
    """Run one job in the same numeric state whatever ran before it in this process.

    A worker process may have run other models first (a Ray worker is reused across tasks, a
    serial run keeps one process for the whole study), and some packages change torch's global
    state. So each job starts from: ``threads`` intra-op threads (None: unchanged; the planner
    gives every job of a run the same count), float32 as the default dtype, ``"highest"``
    float32 matmul precision (no TF32 or bfloat16 shortcuts) and, for CPU jobs, torch's
    deterministic algorithms where it has them (``warn_only``), without their NaN fill of every
    new uninitialised tensor (it only exposes kernels that read memory they never wrote, and
    costs 4-5 % of CHGNet's and SevenNet's CPU time). The previous state is restored afterwards.
    """
    import torch
    import torch.utils.deterministic

    previous = (torch.get_num_threads(), torch.get_default_dtype(),
                torch.get_float32_matmul_precision(),
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.utils.deterministic.fill_uninitialized_memory)
    if threads is not None:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False
    torch.set_default_dtype(torch.float32)
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.set_default_dtype(previous[1])
        torch.set_float32_matmul_precision(previous[2])
        torch.use_deterministic_algorithms(previous[3], warn_only=previous[4])
        torch.utils.deterministic.fill_uninitialized_memory = previous[5]


def _embed_shard(job: EmbedJob, store: EmbeddingStore) -> tuple[int, int, bool]:
    """(embedded, failed, skipped) for the job's shard: computed, or found current."""
    adapter = _adapter_for(job.card, job.options)
    layers = resolve_layers(adapter, job.layers)
    pooling = job.pooling or adapter.card.default_pooling
    expected = shard_config_hash(adapter, layers, pooling, job.dtype, job.dataset_fingerprint,
                                 job.shard_size, job.batch_budget, job.shard)
    if job.atom_sampling is not None:
        expected = atom_shard_hash(expected, job.atom_sampling)
    if store.shard_is_current(job.dataset, job.model, job.shard, expected):
        return (*stored_shard_counts(store, job.dataset, job.model, job.shard), True)
    if _CACHE["loaded"] != (job.device, job.dtype):
        with quiet_load(job.model):
            adapter.load(job.device, job.dtype)
        _CACHE["loaded"] = (job.device, job.dtype)
    n_ok, n_bad = compute_shard(
        adapter, job.samples, store, dataset=job.dataset, dataset_version=job.dataset_version,
        dataset_fingerprint=job.dataset_fingerprint, shard=job.shard, layers=layers,
        pooling=pooling, batch_budget=job.batch_budget, expected_hash=expected,
        device=job.device, dtype=job.dtype, prepare_workers=job.prepare_workers, atoms=job.atoms,
    )
    return n_ok, n_bad, False


# ---- planning and collecting (the coordinator side) --------------------------------------------


def plan_embed_jobs(
    card: ModelCard,
    options: dict[str, Any],
    dataset: Dataset,
    store: EmbeddingStore,
    layers: str | Sequence[str] = "all",
    pooling: str | None = None,
    shard_size: int = 256,
    batch_budget: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    cpu_threads: int | None = None,
    prepare_workers: int = 0,
    atoms: AtomSampling | None = None,
) -> list[EmbedJob]:
    """One :class:`EmbedJob` per shard of ``dataset`` for the model of ``card``.

    With ``atoms``, each job embeds the atoms :func:`~matteralign.data.atom_sample.sample_atoms`
    chooses among its shard's structures, stored as ``"<name>@atoms"``.

    The shards and hashes are those of :func:`matteralign.run.embed.embed_dataset`, so a store
    filled by either is resumed by the other. ``cpu_threads`` (torch threads per CPU job)
    defaults to this process's count; a study passes its resolved ``cpu_threads`` (see
    :func:`matteralign.run.study.job_cpu_threads`), the same under every executor.
    """
    fingerprint = dataset.fingerprint()
    slices = shard_slices(len(dataset), shard_size)
    chosen = layers if isinstance(layers, str) else list(layers)
    plan = None if atoms is None else sample_atoms(dataset.samples, atoms)
    jobs = []
    for shard, piece in enumerate(slices):
        samples = list(dataset.samples[piece])
        if plan is not None:
            samples = [sample for sample in samples if sample.id in plan]
        jobs.append(EmbedJob(
            card=card, options=dict(options),
            dataset=dataset.name if plan is None else atom_level_name(dataset.name),
            dataset_version=dataset.card.version, dataset_fingerprint=fingerprint,
            shard=shard, n_shards=len(slices), samples=samples,
            store_root=str(store.root), layers=chosen, pooling=pooling,
            shard_size=shard_size,
            batch_budget=batch_budget or default_batch_budget(card), device=device,
            dtype=dtype, cpu_threads=cpu_threads or _coordinator_threads(),
            prepare_workers=prepare_workers,
            atoms=None if plan is None else {s.id: plan[s.id] for s in samples},
            atom_sampling=atoms))
    return jobs


def _coordinator_threads() -> int:
    import torch

    return torch.get_num_threads()


@dataclass
class _Tally:
    n_shards: int
    computed: int = 0
    skipped: int = 0
    embedded: int = 0
    failed: int = 0
    done: int = 0
    errors: list[str] = field(default_factory=list)


def collect_summaries(
    jobs: Sequence[EmbedJob],
    results: Iterator[JobResult],
    store: EmbeddingStore,
    on_result: Callable[[JobResult], None] | None = None,
) -> tuple[list[EmbedSummary], list[tuple[str, str, str]]]:
    """Fold job results into one :class:`EmbedSummary` per (dataset, model), in job order.

    Once every shard of a (dataset, model) succeeded, shards past the last one (left by a larger
    earlier dataset) are removed, as :func:`embed_dataset` does.

    Returns
    -------
    summaries : list of EmbedSummary
        For (dataset, model) pairs whose every shard succeeded.
    failures : list of (model, dataset, error)
        One per (dataset, model) whose model could not be created or loaded.
    """
    tallies: dict[tuple[str, str], _Tally] = {}
    for job in jobs:
        tallies.setdefault((job.dataset, job.model), _Tally(job.n_shards))
    for result in results:
        tally = tallies[(result.dataset, result.model)]
        tally.done += 1
        if result.status == "failed":
            tally.errors.append(result.error)
        else:
            setattr(tally, result.status, getattr(tally, result.status) + 1)
            tally.embedded += result.n_embedded
            tally.failed += result.n_failed
        if on_result is not None:
            on_result(result)
        if tally.done == tally.n_shards and not tally.errors:
            remove_stale_shards(store, result.dataset, result.model, tally.n_shards)
    summaries, failures = [], []
    for (dataset, model), tally in tallies.items():
        if tally.errors:
            failures.append((model, dataset, tally.errors[0]))
        elif tally.done == tally.n_shards:
            summaries.append(EmbedSummary(dataset, model, tally.n_shards, tally.computed,
                                          tally.skipped, tally.embedded, tally.failed))
    return summaries, failures


# ---- executors ---------------------------------------------------------------------------------


class Executor(ABC):
    """Runs embedding jobs and yields their results as they finish (in any order)."""

    @abstractmethod
    def run(self, jobs: Sequence[EmbedJob]) -> Iterator[JobResult]:
        """Run every job; yield one :class:`JobResult` per job."""

    def close(self) -> None:
        """Release workers (a no-op where there are none)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def visible_gpus() -> list[str]:
    """Ids of the GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else all."""
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [part.strip() for part in declared.split(",") if part.strip() not in ("", "-1")]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _pin_worker(slots: Any) -> None:
    """Process-pool initializer: take one GPU id and hide the others before CUDA starts."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


class LocalExecutor(Executor):
    """Jobs on this machine: in process when ``workers == 1``, else a spawn process pool.

    Parameters
    ----------
    workers : int or "auto"
        ``1``: serial, in this process (the default). ``"auto"``: one worker per visible GPU
        when ``device`` is CUDA, else one per CPU core.
    device : str
        With CUDA and several workers, worker w is pinned to GPU ``w mod n_gpus`` through
        ``CUDA_VISIBLE_DEVICES`` and sees it as ``cuda``.
    """

    def __init__(self, workers: int | Literal["auto"] = 1, device: str = "cpu") -> None:
        self.device = device
        self.gpus = visible_gpus() if device.startswith("cuda") else []
        if workers == "auto":
            workers = len(self.gpus) if self.gpus else (os.cpu_count() or 1)
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be a positive integer or 'auto', not {workers!r}")
        self.workers = workers
        self._pool: Any = None

    def _start(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # never fork a process that may hold CUDA
        slots = context.Queue()
        for w in range(self.workers):
            slots.put(self.gpus[w % len(self.gpus)] if self.gpus else None)
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                   initializer=_pin_worker, initargs=(slots,))

    def run(self, jobs: Sequence[EmbedJob]) -> Iterator[JobResult]:
        """Jobs of main-environment models here (or in the pool), then those of models with
        an environment of their own, one worker process per (environment, model)."""
        from matteralign.run.worker import environment_groups, run_in_environment

        here, elsewhere = environment_groups(jobs)
        yield from self._run_here(here)
        for environment, group in elsewhere:
            yield from run_in_environment(environment, group)

    def _run_here(self, jobs: Sequence[EmbedJob]) -> Iterator[JobResult]:
        if not jobs:
            return
        if self.workers == 1:
            for job in jobs:
                yield run_embed_job(job)
            return
        from concurrent.futures import as_completed

        if self._pool is None:
            self._pool = self._start()
        if self.gpus:  # each worker sees its one GPU as cuda:0
            jobs = [_with_device(job, "cuda") for job in jobs]
        futures = [self._pool.submit(run_embed_job, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()

    def close(self) -> None:
        if self.workers == 1:
            release_adapter()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _with_device(job: EmbedJob, device: str) -> EmbedJob:
    from dataclasses import replace

    return replace(job, device=device)


def install_no_deps() -> None:
    """Ray worker setup hook: ``pip install --no-deps`` the packages a card's environment lists.

    Reads the JSON list in ``MATTERALIGN_NO_DEPS``; runs once per environment (marker file).
    """
    import subprocess
    import sys

    packages = json.loads(os.environ.get("MATTERALIGN_NO_DEPS", "[]"))
    marker = Path(sys.prefix) / ".matteralign-no-deps"
    if not packages or (marker.exists() and json.loads(marker.read_text()) == packages):
        return
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", *packages], check=True)
    marker.write_text(json.dumps(packages))


def runtime_env_for(card: ModelCard) -> dict[str, Any] | None:
    """The Ray ``runtime_env`` in which a model whose card has an ``environment`` block runs.

    ``requirements`` become a pip environment (layered over the driver's packages, so
    matteralign stays importable); a ``python`` version makes it a conda environment with that
    Python, pip and the requirements, plus matteralign itself shipped as a ``py_module``;
    ``no_deps`` packages are installed with ``pip --no-deps`` by a worker setup hook.
    A named environment (a string) runs the task with that environment's Python
    (``py_executable``), built beforehand on every node by ``matteralign env create`` (the
    environment folder must be at the same path on every node, e.g. a shared home).
    None when the card needs no environment of its own.

    Raises
    ------
    EnvironmentBuildError
        If the card names an environment that is not built here; the message gives the command.
    """
    environment = card.environment
    if environment is None:
        return None
    if isinstance(environment, str):
        from matteralign.run.environments import get_environment, require_built

        built = get_environment(environment)
        require_built(built, card.id)
        return {"py_executable": str(built.python)}
    runtime_env: dict[str, Any] = {}
    if environment.python:
        import matteralign

        runtime_env["conda"] = {"dependencies": [
            f"python={environment.python}", "pip", {"pip": list(environment.requirements)}]}
        runtime_env["py_modules"] = [str(Path(matteralign.__file__).parent)]
    elif environment.requirements:
        runtime_env["pip"] = {"packages": list(environment.requirements), "pip_check": False}
    if environment.no_deps:
        runtime_env["env_vars"] = {"MATTERALIGN_NO_DEPS": json.dumps(list(environment.no_deps))}
        runtime_env["worker_process_setup_hook"] = "matteralign.run.executors.install_no_deps"
    return runtime_env or None


class RayExecutor(Executor):
    """One Ray task per (model x dataset shard), GPUs requested per task, same resumable store.

    Parameters
    ----------
    address : str, optional
        Ray cluster address (``"auto"``, ``"ray://host:10001"``); None starts a local instance
        unless one is already initialised in this process. Every node must see the store root.
    device : str
        ``cuda`` requests ``gpus_per_task`` GPUs per task (Ray sets ``CUDA_VISIBLE_DEVICES``).
    max_in_flight : int, optional
        Tasks submitted but unfinished at any time; default 4 x the cluster's CPUs (or GPUs).
    """

    def __init__(
        self,
        address: str | None = None,
        device: str = "cpu",
        cpus_per_task: float = 1.0,
        gpus_per_task: float = 1.0,
        max_in_flight: int | None = None,
    ) -> None:
        import ray

        self._started = False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
            self._started = True
        self.device = device
        self.cpus_per_task = cpus_per_task
        self.gpus_per_task = gpus_per_task if device.startswith("cuda") else 0.0
        resources = ray.cluster_resources()
        slots = resources.get("GPU", 0) if self.gpus_per_task else resources.get("CPU", 1)
        self.max_in_flight = max_in_flight or max(1, int(4 * max(slots, 1)))
        # max_calls=0: reuse workers (Ray's GPU default of 1 would reload the model per shard)
        self._remote = ray.remote(max_calls=0)(run_embed_job)

    def _submit(self, job: EmbedJob) -> Any:
        options: dict[str, Any] = {"num_cpus": self.cpus_per_task, "num_gpus": self.gpus_per_task}
        runtime_env = runtime_env_for(job.card)
        if runtime_env is not None:
            options["runtime_env"] = runtime_env
        if self.gpus_per_task:
            job = _with_device(job, "cuda")
        return self._remote.options(**options).remote(job)

    def run(self, jobs: Sequence[EmbedJob]) -> Iterator[JobResult]:
        import ray

        pending = list(jobs)[::-1]
        in_flight: list[Any] = []
        while pending or in_flight:
            while pending and len(in_flight) < self.max_in_flight:
                in_flight.append(self._submit(pending.pop()))
            done, in_flight = ray.wait(in_flight, num_returns=1)
            for ref in done:
                yield ray.get(ref)

    def close(self) -> None:
        import ray

        if self._started and ray.is_initialized():
            ray.shutdown()
            self._started = False


def make_executor(
    kind: str = "local",
    workers: int | Literal["auto"] = 1,
    device: str = "cpu",
    ray_address: str | None = None,
    cpu_threads: int = 1,
) -> Executor:
    """The executor a study's ``executor`` setting names: ``"local"`` or ``"ray"``.

    ``cpu_threads`` is the torch thread count of each CPU job; a Ray task reserves as many CPUs.
    """
    if kind == "local":
        return LocalExecutor(workers, device)
    if kind == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError(
                "executor 'ray' needs Ray: pip install 'matteralign[ray]'"
            ) from None
        return RayExecutor(ray_address, device, cpus_per_task=float(cpu_threads))
    raise ConfigError(f"unknown executor {kind!r}; use 'local' or 'ray'")
