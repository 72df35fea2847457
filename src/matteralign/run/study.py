"""A whole study: embed every model on every dataset it can read, then score all model pairs.

The Python API behind ``matteralign run``, ``embed`` and ``align``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from matteralign.config import StudyConfig
from matteralign.data.registry import get_dataset_spec, load_dataset
from matteralign.data.sample import Dataset
from matteralign.errors import ConfigError, MatterAlignError, StoreError
from matteralign.models.registry import get_card
from matteralign.run.embed import EmbedSummary
from matteralign.store.embedding_store import EmbeddingStore, atomic_write_bytes

if TYPE_CHECKING:
    from matteralign.run.executors import EmbedJob

console = Console(stderr=True)


@dataclass
class StudyOutcome:
    """What a study run produced and what it had to skip."""

    out: Path
    embedded: list[EmbedSummary] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    matrices: dict[tuple[str, str], Path] = field(default_factory=dict)


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as progress:
        yield progress


def _data_root(config: StudyConfig) -> Path | None:
    import os

    if config.data_root is not None:
        return config.data_root
    env = os.environ.get("MATTERALIGN_DATA_ROOT")
    return Path(env) if env else None


def load_study_datasets(config: StudyConfig, outcome: StudyOutcome) -> list[Dataset]:
    """Build each dataset of the study; a set that cannot be built is skipped and reported."""
    datasets = []
    for selection in config.datasets:
        try:
            datasets.append(load_dataset(selection.name, n=selection.n, seed=selection.seed,
                                         data_root=_data_root(config)))
        except MatterAlignError as error:
            outcome.skipped.append((f"dataset {selection.name}", str(error)))
            console.print(f"[yellow]skipping dataset {selection.name}: {error}")
    return datasets


def validate_study(config: StudyConfig) -> None:
    """Check that every dataset, model and metric of ``config`` exists, before any work starts."""
    for selection in config.datasets:
        get_dataset_spec(selection.name)
    for model in config.models:
        get_card(model.id)
    _validate_metrics(config)


def embed_study(
    config: StudyConfig, out: Path, outcome: StudyOutcome | None = None
) -> StudyOutcome:
    """Embed every (dataset, model) pair whose modalities match into ``out/store``.

    Work is cut into one job per (model x dataset shard) and run by the executor that
    ``config.executor`` names (in process by default, a process pool, or Ray). This process is
    the coordinator: it holds the store lock throughout, and alone removes stale shards and
    writes the manifest. Finished shards are skipped, so rerunning after a kill resumes where
    it stopped.
    """
    from matteralign.run.executors import collect_summaries, make_executor

    outcome = outcome or StudyOutcome(out)
    validate_study(config)
    store = EmbeddingStore(out / "store")
    device = config.resolved_device()
    datasets = load_study_datasets(config, outcome)
    with make_executor(config.executor, config.workers, device, config.ray_address) as executor:
        cpu_threads = (executor.default_cpu_threads() if config.cpu_threads == "auto"
                       else config.cpu_threads)
        jobs = _plan_jobs(config, datasets, store, device, cpu_threads)
        with store.lock(), _progress() as progress:
            for dataset in datasets:  # the reference labels the analyses read
                store.write_samples(dataset.name, dataset.samples)
            tasks = {}
            for job in jobs:
                key = (job.dataset, job.model)
                if key not in tasks:
                    total = sum(len(j.samples) for j in jobs if (j.dataset, j.model) == key)
                    tasks[key] = progress.add_task(f"{job.model} · {job.dataset}", total=total)

            def advance(result) -> None:
                progress.advance(tasks[(result.dataset, result.model)], result.n_samples)

            summaries, failures = collect_summaries(jobs, executor.run(jobs), store, advance)
            outcome.embedded.extend(summaries)
            for summary in summaries:  # align reads only embeddings that finished
                store.mark_complete(summary.dataset, summary.model, summary.n_shards)
            reported = set()
            for model, dataset, error in failures:
                if model in reported:
                    continue  # the model cannot load: one report, not one per dataset
                reported.add(model)
                outcome.skipped.append((f"model {model} on {dataset}", error))
                progress.console.print(f"[yellow]skipping {model} on {dataset}: {error}")
            store.write_manifest()
    return outcome


def _plan_jobs(
    config: StudyConfig, datasets: list[Dataset], store: EmbeddingStore, device: str,
    cpu_threads: int,
) -> list[EmbedJob]:
    """One job per (model, dataset shard), for every model on every dataset it can read."""
    from matteralign.run.executors import plan_embed_jobs

    data_root = _data_root(config)
    jobs = []
    for selection in config.models:
        card = get_card(selection.id)
        options = dict(selection.options)
        if data_root is not None:
            options.setdefault("data_root", str(data_root))
        for dataset in datasets:
            wanted = selection.datasets is None or dataset.name in selection.datasets
            if wanted and card.input in dataset.modalities:
                jobs += plan_embed_jobs(
                    card, options, dataset, store, layers=config.layers,
                    pooling=selection.pooling, shard_size=config.shard_size,
                    batch_budget=config.batch_budget, device=device, dtype=config.dtype,
                    cpu_threads=cpu_threads, prepare_workers=config.prepare_workers,
                )
    return jobs


def align_study(
    config: StudyConfig, out: Path, outcome: StudyOutcome | None = None
) -> StudyOutcome:
    """Score all pairs of models on each dataset with each metric; write Parquet tables.

    Writes ``out/alignment/<dataset>/<metric>.parquet`` (the M×M matrix) and
    ``out/scores.parquet`` (every score in long form). Holds the store lock, so it never reads
    a store that an embedding run is writing.

    A model whose embedding did not finish (killed, or some shard failed) or cannot be scored
    (NaN/inf or a constant embedding), and a metric that cannot score a dataset (N <= k), are
    left out and recorded in ``outcome.skipped`` with the reason; the rest is scored. Samples
    that some model lacks are left out of every score of that dataset, and recorded too.
    """
    from matteralign.analysis.matrices import score_dataset, write_dataset_scores

    outcome = outcome or StudyOutcome(out)
    validate_study(config)
    store = EmbeddingStore(out / "store")
    all_rows = []
    with store.lock():
        for selection in config.datasets:
            dataset = selection.name
            stored, not_finished = [], []
            for model in config.models:
                if not store.shard_paths(dataset, model.id):
                    continue
                try:
                    stored.append(store.load_finished(dataset, model.id,
                                                      get_card(model.id).last_layer))
                except StoreError as error:
                    not_finished.append((f"model {model.id} on {dataset}", str(error)))
            scores = score_dataset(stored, dataset, config.metrics, config.preprocess,
                                   config.resolved_device(), skipped=not_finished)
            for what, why in scores.skipped:
                _skip(outcome, what, why)
            if not stored:
                continue
            for metric, path in write_dataset_scores(out, scores).items():
                outcome.matrices[(dataset, metric)] = out / path
                _print_matrix(dataset, metric, scores.matrices[metric], scores.n)
            if not scores.rows.empty:
                all_rows.append(scores.rows)
        if all_rows:
            atomic_write_bytes(out / "scores.parquet",
                               pd.concat(all_rows, ignore_index=True).to_parquet(index=False))
    return outcome


def _skip(outcome: StudyOutcome, what: str, why: str) -> None:
    outcome.skipped.append((what, why))
    console.print(f"[yellow]skipping {what}: {why}")


def _validate_metrics(config: StudyConfig) -> None:
    from matteralign import metrics

    for metric in config.metrics:
        try:
            metrics.get_metric(metric)
        except KeyError as error:
            raise ConfigError(f"configuration {config.name!r}, metrics: {error.args[0]}") from None


def _print_matrix(dataset: str, metric: str, matrix: pd.DataFrame, n: int) -> None:
    from rich.table import Table

    table = Table(title=f"{metric} on {dataset} (N = {n})")
    table.add_column("")
    for column in matrix.columns:
        table.add_column(str(column), justify="right")
    for name, row in matrix.iterrows():
        table.add_row(str(name), *(f"{value:.3f}" for value in row))
    Console().print(table)


def write_resolved_config(config: StudyConfig, out: Path) -> Path:
    """Write the resolved configuration as ``out/config.yaml`` (atomically).

    Raises
    ------
    StoreError
        If another run holds the store lock of ``out``: its results keep their configuration.
    """
    path = out / "config.yaml"
    with EmbeddingStore(out / "store").lock():
        atomic_write_bytes(path, config.to_yaml().encode())
    return path


def run_study(config: StudyConfig, out: Path) -> StudyOutcome:
    """Embed, align and summarise a whole study into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_resolved_config(config, out)
    outcome = embed_study(config, out)
    align_study(config, out, outcome)
    summary = {
        "embedded": [vars(s) for s in outcome.embedded],
        "skipped": [{"what": what, "why": why} for what, why in outcome.skipped],
        "matrices": {f"{d}/{m}": str(p.relative_to(out)) for (d, m), p in outcome.matrices.items()},
    }
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    from matteralign.report import report_study

    console.print(f"report: {report_study(config, out)}")
    return outcome
