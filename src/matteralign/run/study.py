"""A whole study: embed every model on every dataset it can read, then score all model pairs.

The Python API behind ``matteralign run``, ``embed`` and ``align``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console

from matteralign.config import StudyConfig
from matteralign.data.registry import changed_file, get_dataset_spec, load_dataset
from matteralign.data.sample import Dataset
from matteralign.errors import ConfigError, MatterAlignError, NothingScoredError, StoreError
from matteralign.models.registry import get_card
from matteralign.run.embed import EmbedSummary
from matteralign.run.progress import PhaseProgress, phase
from matteralign.store.embedding_store import EmbeddingStore, atomic_write_bytes
from matteralign.store.output_set import OutputSet, read_record, remove_output_set

if TYPE_CHECKING:
    from matteralign.analysis.study import AnalysisOptions
    from matteralign.run.executors import EmbedJob

console = Console(stderr=True)


@dataclass
class StudyOutcome:
    """What a study run produced and what it had to skip."""

    out: Path
    embedded: list[EmbedSummary] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    matrices: dict[tuple[str, str], Path] = field(default_factory=dict)


def _data_root(config: StudyConfig) -> Path | None:
    import os

    if config.data_root is not None:
        return config.data_root
    env = os.environ.get("MATTERALIGN_DATA_ROOT")
    return Path(env) if env else None


def load_study_datasets(config: StudyConfig, outcome: StudyOutcome) -> list[Dataset]:
    """Build each dataset of the study; a set that cannot be built is skipped and reported.

    Raises
    ------
    ConfigError
        If a selection asks for more samples (``n``) than its dataset holds.
    """
    datasets = []
    for selection in config.datasets:
        try:
            dataset = load_dataset(selection.name, n=selection.n, seed=selection.seed,
                                   data_root=_data_root(config))
        except MatterAlignError as error:
            outcome.skipped.append((f"dataset {selection.name}", str(error)))
            console.print(f"[yellow]skipping dataset {selection.name}: {error}", soft_wrap=True)
            continue
        if selection.n is not None and selection.n > len(dataset):
            raise ConfigError(
                f"configuration {config.name!r}, datasets: {selection.name} has "
                f"{len(dataset)} samples, fewer than n: {selection.n}; lower n or leave it out "
                "to use every sample"
            )
        if dataset.skipped:  # bad records of a file: never left out silently
            first = "; ".join(dataset.skipped[:3])
            outcome.skipped.append((f"{len(dataset.skipped)} records of dataset {dataset.name}",
                                    f"{first}{' ...' if len(dataset.skipped) > 3 else ''}"))
            console.print(f"[yellow]dataset {dataset.name}: {len(dataset.skipped)} records "
                          f"skipped, first: {dataset.skipped[0]}", soft_wrap=True)
        _check_structures(dataset)
        datasets.append(dataset)
    return datasets


def _check_structures(dataset: Dataset) -> None:
    """Check every structure once, before any model loads (:meth:`Sample.structure_problem`
    remembers the answer for every model's ``prepare``), and say which fail the checks with
    their default limits; each model records them as failed samples (unless its
    ``min_distance`` / ``max_cell_length`` options let them through)."""
    bad = [(sample.id, problem) for sample in dataset.samples if sample.atoms is not None
           and (problem := sample.structure_problem()) is not None]
    if bad:
        console.print(f"[yellow]dataset {dataset.name}: {len(bad)} structure(s) the models will "
                      f"refuse, first: {bad[0][0]} {bad[0][1]}", soft_wrap=True)


def validate_study(config: StudyConfig) -> None:
    """Check the study before any work starts: every dataset, model and metric exists, every
    adapter option is one the adapter reads, and a CUDA device is there if one is asked for.

    Raises
    ------
    ConfigError, ModelNotFoundError, DatasetError
        Naming the key, model, option or dataset at fault.
    """
    from matteralign.models.registry import check_options

    for selection in config.datasets:
        get_dataset_spec(selection.name)
    for model in config.models:
        check_options(get_card(model.id), model.options)
    _validate_metrics(config)
    _validate_device(config)


def _validate_device(config: StudyConfig) -> None:
    if not config.device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"configuration {config.name!r}, device: {config.device!r} but torch sees no CUDA "
            "GPU here; use device: auto (GPU when there is one) or cpu"
        )


def embed_study(
    config: StudyConfig, out: Path, outcome: StudyOutcome | None = None,
    datasets: list[Dataset] | None = None, *, validated: bool = False,
) -> StudyOutcome:
    """Embed every (dataset, model) pair whose modalities match into ``out/store``.

    Work is cut into one job per (model x dataset shard) and run by the executor that
    ``config.executor`` names (in process by default, a process pool, or Ray). This process is
    the coordinator: it holds the store lock throughout, and alone removes stale shards and
    writes the manifest. Finished shards are skipped, so rerunning after a kill resumes where
    it stopped. Each finished (dataset, model) gets a completion record with the fingerprint
    of what it embedded (see :func:`matteralign.run.embed.embedding_fingerprint`).

    Parameters
    ----------
    datasets : list of Dataset, optional
        The study's datasets, already built by :func:`load_study_datasets`; default: build them.
    validated : bool
        The caller has run :func:`validate_study` on ``config`` already (once per command).
    """
    outcome = outcome or StudyOutcome(out)
    store = EmbeddingStore(out / "store")
    with store.lock():
        if not validated:
            validate_study(config)
        device = config.resolved_device()
        if datasets is None:
            datasets = load_study_datasets(config, outcome)
        for dataset in datasets:  # the reference labels the analyses read, beside the embeddings
            store.write_samples(dataset.name, dataset.samples)
        _embed_locked(config, store, device, datasets, outcome)
    return outcome


def _embed_locked(
    config: StudyConfig, store: EmbeddingStore, device: str, datasets: list[Dataset],
    outcome: StudyOutcome,
) -> None:
    from matteralign.run.executors import collect_summaries, make_executor

    cpu_threads = job_cpu_threads(config)
    with make_executor(config.executor, config.workers, device, config.ray_address,
                       cpu_threads) as executor:
        jobs = _plan_jobs(config, datasets, store, device, cpu_threads, outcome)
        with PhaseProgress(console) as progress:
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
                store.mark_complete(summary.dataset, summary.model, summary.n_shards,
                                    _fingerprint(config, datasets, summary.dataset,
                                                 summary.model))
            reported = set()
            for model, dataset, error in failures:
                if model in reported:
                    continue  # the model cannot load: one report, not one per dataset
                reported.add(model)
                outcome.skipped.append((f"model {model} on {dataset}", error))
                progress.console.print(f"[yellow]skipping {model} on {dataset}: {error}")
            store.write_manifest()


def job_cpu_threads(config: StudyConfig) -> int:
    """Torch threads of each CPU embedding job: ``cpu_threads``, or 1 for ``"auto"``.

    The same count under every executor and worker count, so that a study's embeddings do not
    depend on where its jobs ran (float reductions may depend on the thread count). Parallelism
    on CPU comes from ``workers`` (one job per core), not from threads.
    """
    return 1 if config.cpu_threads == "auto" else int(config.cpu_threads)


def _fingerprint(
    config: StudyConfig, datasets: list[Dataset], dataset: str, model: str
) -> dict[str, object]:
    """The completion-record fingerprint of (dataset, model) as this study embeds it."""
    from matteralign.run.embed import embedding_fingerprint

    chosen = next(s for s in config.datasets if config.stored_dataset(s.name) == dataset)
    data = next(d for d in datasets if d.name == chosen.name)
    selection = next(m for m in config.models if m.id == model)
    record = embedding_fingerprint(
        chosen.name, data.card.version, data.fingerprint(), {"n": chosen.n, "seed": chosen.seed},
        model, selection.options, selection.pooling, config.layers, config.dtype)
    sampling = config.atom_sampling()
    if sampling is not None:
        record["atoms"] = sampling.record()
    return record


def check_stored_selection(config: StudyConfig, store: EmbeddingStore) -> None:
    """Refuse to score embeddings of another dataset selection or model setting than ``config``.

    Compares every finished (dataset, model) of the study with the fingerprint its completion
    record holds: the dataset's ``n`` and ``seed``, the model's options, pooling and dtype, and
    that every model of a dataset embedded the same samples (one dataset fingerprint).

    Raises
    ------
    StoreError
        Naming the dataset (and model) and both settings, and saying what to run.
    """
    for chosen in config.datasets:
        fingerprints: dict[str, str] = {}
        for model in config.models:
            record = store.completion(config.stored_dataset(chosen.name), model.id)
            stored = (record or {}).get("fingerprint") or {}
            data, embedded = stored.get("dataset") or {}, stored.get("model") or {}
            selection = data.get("selection")
            if selection is None:  # unfinished (align skips it), or embedded outside a study
                continue
            changed = changed_file(chosen.name, str(data.get("version", "")))
            if changed is not None:
                raise StoreError(
                    f"file {changed} of dataset {chosen.name!r} changed since model {model.id} "
                    f"embedded it (version {data.get('version')!r}); run `matteralign embed` "
                    "to re-embed the new file"
                )
            asked = {"n": chosen.n, "seed": chosen.seed}
            if selection != asked:
                raise StoreError(
                    f"the store {store.root} holds dataset {chosen.name!r} embedded with "
                    f"{_settings(selection)} (model {model.id}), but configuration "
                    f"{config.name!r} asks for {_settings(asked)}; run `matteralign embed` with "
                    "this configuration first, or score the folder it was embedded into"
                )
            options = {k: v for k, v in model.options.items() if k != "data_root"}
            asked_model = {"options": json.loads(json.dumps(options, sort_keys=True,
                                                            default=str)),
                           "pooling": model.pooling, "dtype": config.dtype}
            held = {key: embedded.get(key) for key in asked_model}
            if held != asked_model:
                raise StoreError(
                    f"model {model.id} on dataset {chosen.name!r} was embedded with "
                    f"{_settings(held)}, but configuration {config.name!r} asks for "
                    f"{_settings(asked_model)}; run `matteralign embed` with this configuration "
                    "first"
                )
            fingerprints[model.id] = data.get("fingerprint")
        if len(set(fingerprints.values())) > 1:
            raise StoreError(
                f"the models of dataset {chosen.name!r} in {store.root} embedded different "
                f"samples ({', '.join(sorted(fingerprints))}); run `matteralign embed` to "
                "re-embed them from one selection"
            )


def _settings(values: dict[str, object]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in values.items())


def _plan_jobs(
    config: StudyConfig, datasets: list[Dataset], store: EmbeddingStore, device: str,
    cpu_threads: int, outcome: StudyOutcome | None = None,
) -> list[EmbedJob]:
    """One job per (model, dataset shard), for every model on every dataset it can read.

    A model runs on a dataset whose samples carry its input and whose domain its card lists
    (an atoms model of molecules is not run on crystals); a model that names the dataset in
    its ``datasets:`` runs there whatever its domain. A model left out for its domain is
    recorded in ``outcome.skipped`` with the reason.
    """
    from matteralign.run.executors import plan_embed_jobs

    data_root = _data_root(config)
    jobs = []
    for selection in config.models:
        card = get_card(selection.id)
        options = dict(selection.options)
        if data_root is not None:
            options.setdefault("data_root", str(data_root))
        for dataset in datasets:
            named = selection.datasets is not None and dataset.name in selection.datasets
            if not (named or selection.datasets is None) or card.input not in dataset.modalities:
                continue
            if not named and dataset.card.domain not in card.domain:
                if outcome is not None:
                    _skip(outcome, f"model {card.id} on {dataset.name}",
                          f"its card's domain ({', '.join(card.domain)}) excludes the dataset's "
                          f"({dataset.card.domain}); name the dataset in the model's datasets: "
                          "to run it anyway")
                continue
            jobs += plan_embed_jobs(
                card, options, dataset, store, layers=config.layers,
                pooling=selection.pooling, shard_size=config.shard_size,
                batch_budget=config.batch_budget, device=device, dtype=config.dtype,
                cpu_threads=cpu_threads, prepare_workers=config.prepare_workers,
                atoms=config.atom_sampling(),
            )
    return jobs


def align_study(
    config: StudyConfig, out: Path, outcome: StudyOutcome | None = None, *,
    validated: bool = False,
) -> StudyOutcome:
    """Score all pairs of models on each dataset with each metric; write Parquet tables.

    Writes ``out/alignment/<dataset>/<metric>.parquet`` (the M×M matrix) and
    ``out/scores.parquet`` (every score in long form). Holds the store lock, so it never reads
    a store that an embedding run is writing.

    A model whose embedding did not finish (killed, or some shard failed) or cannot be scored
    (NaN/inf or a constant embedding), and a metric that cannot score a dataset (N <= k), are
    left out and recorded in ``outcome.skipped`` with the reason; the rest is scored. Samples
    that some model lacks are left out of every score of that dataset, and recorded too.

    ``validated``: the caller has run :func:`validate_study` on ``config`` already (``run``
    validates once, before embedding).
    """
    from matteralign.analysis.atoms import score_atoms
    from matteralign.analysis.matrices import score_dataset, write_dataset_scores

    outcome = outcome or StudyOutcome(out)
    if not validated:
        validate_study(config)
    store = existing_store(out)
    all_rows = []
    with store.lock(), OutputSet(out, "alignment") as staged:
        check_stored_selection(config, store)
        for selection in config.datasets:
            dataset = config.stored_dataset(selection.name)
            stored, not_finished = [], []
            for model in config.models:
                if not store.shard_paths(dataset, model.id):
                    continue
                try:
                    stored.append(store.load_finished(dataset, model.id,
                                                      get_card(model.id).last_layer))
                except StoreError as error:
                    not_finished.append((f"model {model.id} on {dataset}", str(error)))
            if config.level == "atoms":  # all atoms, then each element's atoms
                views = list(score_atoms(stored, dataset, config.metrics, config.preprocess,
                                         config.resolved_device(), skipped=not_finished).values())
            else:
                views = [score_dataset(stored, dataset, config.metrics, config.preprocess,
                                       config.resolved_device(), skipped=not_finished)]
            for scores in views:
                for what, why in scores.skipped:
                    _skip(outcome, what, why)
                for what, why in scores.flags:
                    console.print(f"[yellow]flag: {what}: {why}")
                if not stored:
                    continue
                for metric, path in write_dataset_scores(staged.root, scores).items():
                    outcome.matrices[(scores.dataset, metric)] = out / path
                    _print_matrix(scores.dataset, metric, scores.matrices[metric], scores.n,
                                  out / path)
                if not scores.rows.empty:
                    all_rows.append(scores.rows)
        if all_rows:
            atomic_write_bytes(staged.root / "scores.parquet",
                               pd.concat(all_rows, ignore_index=True).to_parquet(index=False))
        _publish_alignment(config, store, out, staged, bool(all_rows))
    return outcome


def _publish_alignment(
    config: StudyConfig, store: EmbeddingStore, out: Path, staged: OutputSet, scored: bool
) -> None:
    """Move ``scores.parquet`` and ``alignment/`` into place as one set, with the fingerprint
    of what they were computed from; with no score, remove the previous set and raise.

    Raises
    ------
    NothingScoredError
        If no metric scored any pair of models: nothing is left claiming to be current.
    """
    if not scored:
        remove_output_set(out, "alignment", also=("scores.parquet",))
        raise NothingScoredError(
            f"nothing was scored in {out}: no dataset has two models with finished, scorable "
            "embeddings and a metric that can score them (the reasons are listed above); no "
            "scores.parquet is left there"
        )
    stored = {chosen.name: config.stored_dataset(chosen.name) for chosen in config.datasets}
    embedded = {
        name: {model.id: (store.completion(stored[name], model.id) or {}).get("fingerprint")
               for model in config.models if store.completion(stored[name], model.id)}
        for name in stored
    }
    datasets = [d.model_dump(mode="json", exclude_none=True) for d in config.datasets]
    staged.commit({"config": config.name, "datasets": datasets,
                   "metrics": list(config.metrics), "preprocess": list(config.preprocess),
                   "embeddings": embedded})


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


#: Largest number of models whose whole matrix ``align`` prints; above it, a summary.
PRINT_FULL_MATRIX = 12
#: Pairs listed at each end of the summary of a larger matrix.
PRINT_PAIRS = 5


def _print_matrix(dataset: str, metric: str, matrix: pd.DataFrame, n: int, path: Path) -> None:
    """Print one scored matrix: the whole table for at most :data:`PRINT_FULL_MATRIX` models
    (a per-model measure: its column); for more, the :data:`PRINT_PAIRS` most and least similar
    pairs by the metric's direction, and the file the whole matrix was written to."""
    from rich.table import Table

    from matteralign import metrics

    shell = Console()
    m = len(matrix)
    title = f"{metric} on {dataset} (N = {n}, {m} models)"
    if m <= PRINT_FULL_MATRIX or matrix.shape[1] == 1:
        table = Table(title=title)
        table.add_column("")
        for column in matrix.columns:
            table.add_column(str(column), justify="right")
        shown = matrix if m <= PRINT_FULL_MATRIX else matrix.sort_values(matrix.columns[0])
        if m > PRINT_FULL_MATRIX:  # per-model values: both ends of the sorted column
            shown = pd.concat([shown.head(PRINT_PAIRS), shown.tail(PRINT_PAIRS)])
        for name, row in shown.iterrows():
            table.add_row(str(name), *(f"{value:.3f}" for value in row))
        shell.print(table)
        if m > PRINT_FULL_MATRIX:
            shell.print(f"  the lowest and highest {PRINT_PAIRS} of {m} models", soft_wrap=True)
        shell.print(f"  written to {path}", soft_wrap=True)
        return
    spec = metrics.get_metric(metric)
    values = matrix.to_numpy(dtype=float)
    a, b = np.nonzero(~np.eye(m, dtype=bool) & np.isfinite(values))
    if spec.symmetric:
        a, b = a[a < b], b[a < b]
    order = np.argsort(values[a, b], kind="stable")
    if spec.higher_is_more_similar:
        order = order[::-1]
    arrow = "-" if spec.symmetric else "->"
    table = Table(title=title)
    table.add_column("most similar")
    table.add_column("", justify="right")
    table.add_column("least similar")
    table.add_column("", justify="right")
    top, bottom = order[:PRINT_PAIRS], order[::-1][:PRINT_PAIRS]
    for i in range(min(PRINT_PAIRS, len(order))):
        hi, lo = top[i], bottom[i]
        table.add_row(f"{matrix.index[a[hi]]} {arrow} {matrix.columns[b[hi]]}",
                      f"{values[a[hi], b[hi]]:.3f}",
                      f"{matrix.index[a[lo]]} {arrow} {matrix.columns[b[lo]]}",
                      f"{values[a[lo], b[lo]]:.3f}")
    shell.print(table)
    shell.print(f"  {len(order)} scored pairs, median {np.median(values[a, b]):.3f}"
                  if len(order) else "  no pair has a finite score", soft_wrap=True)
    shell.print(f"  the whole {m} x {m} matrix is in {path}", soft_wrap=True)


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
    """Embed, align and summarise a whole study into ``out``.

    One store lock is held from the first write (``config.yaml``) to the last (the report), so
    a second run into ``out`` is refused before it writes anything. The study is checked and
    its datasets built before ``config.yaml`` is written.

    Raises
    ------
    NothingScoredError
        If no pair of models was scored; ``summary.json`` still lists what was skipped and why.
    """
    check_output_folder(out)
    with EmbeddingStore(out / "store").lock():
        outcome = embed_into(config, out)
        try:
            align_study(config, out, outcome, validated=True)
        finally:
            _write_summary(out, outcome)
        console.print(f"report: {write_report(config, out)}")
    return outcome


def write_report(
    config: StudyConfig, out: Path, report_dir: Path | None = None,
    options: AnalysisOptions | None = None,
) -> Path:
    """:func:`matteralign.report.report_study` under the store lock, its outputs written as one
    set (see :class:`~matteralign.store.output_set.OutputSet`): ``report.html``, ``figures/``
    and ``tables/`` appear together with ``report.manifest.json``, or the previous report stays.

    Returns
    -------
    Path
        The report.html written.
    """
    from matteralign.report import report_study

    folder = Path(report_dir or out)
    with existing_store(out).lock():
        check_output_folder(folder)
        with OutputSet(folder, "report") as staged, phase(console, "report"):
            report_study(config, out, staged.root, options)
            staged.commit({"config": config.name,
                           "alignment": read_record(out, "alignment") is not None})
    return folder / "report.html"


def embed_into(config: StudyConfig, out: Path) -> StudyOutcome:
    """``matteralign embed``: check the study, then write ``out/config.yaml`` and embed, all
    under one store lock (a second run into ``out`` is refused before it writes anything)."""
    check_output_folder(out)
    outcome = StudyOutcome(out)
    with EmbeddingStore(out / "store").lock():
        validate_study(config)
        datasets = load_study_datasets(config, outcome)
        write_resolved_config(config, out)
        embed_study(config, out, outcome, datasets, validated=True)
    return outcome


def _write_summary(out: Path, outcome: StudyOutcome) -> None:
    summary = {
        "embedded": [vars(s) for s in outcome.embedded],
        "skipped": [{"what": what, "why": why} for what, why in outcome.skipped],
        "matrices": {f"{d}/{m}": str(p.relative_to(out)) for (d, m), p in outcome.matrices.items()},
    }
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())


def check_output_folder(out: Path) -> None:
    """Create ``out`` if needed and check that results can be written there.

    Raises
    ------
    StoreError
        If ``out`` names a file, or is a folder this user cannot write to.
    """
    import os

    if out.exists() and not out.is_dir():
        raise StoreError(f"--out {out} is a file, not a folder; name a folder for the results")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create the results folder {out} ({error.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise StoreError(f"the results folder {out} is not writable; use another --out folder")


def existing_store(out: Path) -> EmbeddingStore:
    """The store under ``out`` for commands that read one (``align``, ``report``, ``status``).

    Raises
    ------
    StoreError
        If ``out`` is a file, or holds no store.
    """
    if out.exists() and not out.is_dir():
        raise StoreError(f"--out {out} is a file, not a folder; name the study's results folder")
    if not (out / "store").is_dir():
        raise StoreError(f"no store under {out}; run `matteralign embed` (or `run`) with --out "
                         f"{out} first")
    return EmbeddingStore(out / "store", create=False)
