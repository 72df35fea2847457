"""All analyses of a finished study, from its store: matrices, convergence, in/out of distribution,
intrinsic dimension, k sweep, tree, embedding map, layer-wise alignment and leaderboard.

An analysis that lacks input (one model, no energies) records a note instead of failing.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matteralign.analysis.convergence import ConvergenceResult, convergence
from matteralign.analysis.dimension import intrinsic_dimensions
from matteralign.analysis.distribution import compare_in_out, pair_scores
from matteralign.analysis.embedding_map import EmbeddingMap, embedding_map
from matteralign.analysis.energy import composition_matrix, energy_regression_error
from matteralign.analysis.families import (
    condense_matrix,
    is_random_baseline,
    model_families,
)
from matteralign.analysis.k_sweep import DEFAULT_KS, cknna_k_sweep, rank_stability
from matteralign.analysis.layers import layerwise_alignment, load_layers, summarise_layers
from matteralign.analysis.leaderboard import leaderboard, strongest_models
from matteralign.analysis.matrices import join_on_ids
from matteralign.analysis.tree import TreeResult, alignment_tree
from matteralign.config import StudyConfig
from matteralign.errors import MatterAlignError
from matteralign.store.embedding_store import EmbeddingStore, StoredEmbeddings

__all__ = [
    "ANALYSES",
    "AnalysisOptions",
    "DatasetEmbeddings",
    "StudyAnalysis",
    "analyse_study",
    "study_references",
]

ANALYSES = {
    "matrices": "Alignment matrices",
    "convergence": "Convergence with energy error",
    "distribution": "In vs out of distribution",
    "dimension": "Intrinsic dimension",
    "k_sweep": "CKNNA k sweep",
    "tree": "Neighbour-joining tree",
    "map": "Embedding map",
    "layers": "Layer-wise alignment",
    "leaderboard": "Leaderboard",
}


@dataclass
class AnalysisOptions:
    """Settings of the study analyses (the report records them).

    Attributes
    ----------
    max_samples : int, optional
        Seeded subsample of each dataset's shared ids used by every analysis (None: all).
    k_sweep_max_samples : int
        Smaller subsample for the k sweep, whose largest k costs O(N^2) per model.
    ks : tuple of int
        CKNNA k values of the sweep (capped at N - 1).
    cknna_metric : str, optional
        Main metric; default the study's first ``cknna-*`` metric, else ``cknna-k25``.
    dcor_metric, ii_metric : str
    id_methods : tuple of str
    family_level : {"architecture", "card"}
    projection : {"pca", "umap"}
        UMAP compiles numba code for about a minute on two cores, so PCA is the default.
    n_permutations, n_bootstrap : int
        Rounds of the leaderboard's permutation null and sample bootstrap.
    n_bootstrap_correlation : int
        Resamples of models for the convergence correlations' intervals.
    n_references : int
        Strongest models the leaderboard scores against.
    energy_label : str
        Sample label holding the reference total energy in eV.
    seed : int
    """

    max_samples: int | None = 2000
    k_sweep_max_samples: int = 500
    ks: tuple[int, ...] = DEFAULT_KS
    cknna_metric: str | None = None
    dcor_metric: str = "dcor"
    ii_metric: str = "ii-k1"
    id_methods: tuple[str, ...] = ("id-twonn", "id-mle-k50")
    family_level: str = "architecture"
    projection: str = "pca"
    map_max_per_dataset: int = 2000
    n_permutations: int = 20
    n_bootstrap: int = 20
    n_bootstrap_correlation: int = 2000
    n_references: int = 3
    energy_label: str = "energy"
    seed: int = 0


@dataclass
class DatasetEmbeddings:
    """The last-layer embeddings of every model on one dataset, joined on ids and subsampled."""

    name: str
    ood: bool
    layers: dict[str, str]
    ids: list[str]
    values: dict[str, np.ndarray]
    energy: dict[str, pd.Series]
    n_shared: int
    stored: dict[str, StoredEmbeddings]


@dataclass
class StudyAnalysis:
    """Every analysis result of a study, plus notes for the analyses that could not run."""

    study: str
    options: AnalysisOptions
    main_metric: str
    datasets: dict[str, DatasetEmbeddings] = field(default_factory=dict)
    families: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    card_families: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    matrices: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    condensed: dict[str, pd.DataFrame] = field(default_factory=dict)
    energy: pd.DataFrame = field(default_factory=pd.DataFrame)
    energy_errors: dict[tuple[str, str], pd.Series] = field(default_factory=dict)
    convergence: dict[tuple[str, str], ConvergenceResult] = field(default_factory=dict)
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    in_out: pd.DataFrame = field(default_factory=pd.DataFrame)
    dimensions: pd.DataFrame = field(default_factory=pd.DataFrame)
    k_sweep: pd.DataFrame = field(default_factory=pd.DataFrame)
    k_stability: pd.DataFrame = field(default_factory=pd.DataFrame)
    trees: dict[str, TreeResult] = field(default_factory=dict)
    maps: list[EmbeddingMap] = field(default_factory=list)
    layer_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    layer_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    leaderboards: dict[str, tuple[pd.DataFrame, list[str], str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in ANALYSES})
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: dict[str, float] = field(default_factory=dict)

    def note(self, analysis: str, text: str) -> None:
        self.notes.setdefault(analysis, []).append(text)


def _attempt(result: StudyAnalysis, analysis: str, what: str, action: Callable[[], Any]) -> Any:
    """Run one analysis step; an exception becomes a note naming the step, not a crash."""
    try:
        return action()
    except Exception as error:  # noqa: BLE001 - a report must survive any one failed analysis
        last = traceback.extract_tb(error.__traceback__)[-1]
        result.note(analysis, f"{what} failed: {type(error).__name__}: {error} "
                              f"({Path(last.filename).name}:{last.lineno})")
        return None


def _main_metric(config: StudyConfig, options: AnalysisOptions) -> str:
    if options.cknna_metric:
        return options.cknna_metric
    return next((m for m in config.metrics if m.startswith("cknna")), "cknna-k25")


def _capped(metric: str, n: int) -> str:
    """The metric id with its k lowered to N - 1 when N is small."""
    from matteralign import metrics

    spec = metrics.get_metric(metric)
    k = spec.params.get("k")
    if k is not None and k > n - 1 and spec.family in ("cknna", "mknn", "ii"):
        return metrics.get_metric(metric, k=max(n - 1, 1 if spec.family == "ii" else 2)).id
    return spec.id


def _is_ood(dataset: str) -> bool:
    from matteralign.data.registry import get_dataset_spec
    from matteralign.errors import DatasetError

    try:
        return bool(get_dataset_spec(dataset).out_of_distribution)
    except DatasetError:
        return False


def _data_root(config: StudyConfig) -> Path | None:
    if config.data_root is not None:
        return config.data_root
    env = os.environ.get("MATTERALIGN_DATA_ROOT")
    return Path(env) if env else None


def _card_layers(model: str) -> list[str] | None:
    from matteralign.errors import ModelNotFoundError
    from matteralign.models.registry import get_card

    try:
        return get_card(model).layer_names
    except ModelNotFoundError:
        return None


def _layer_of(store: EmbeddingStore, dataset: str, model: str) -> str:
    """The card's last layer; for a model without a card, the last layer its shards hold."""
    from matteralign.errors import ModelNotFoundError
    from matteralign.models.registry import get_card

    try:
        return get_card(model).last_layer
    except ModelNotFoundError:
        return list(store.read_shard(store.shard_paths(dataset, model)[0]).layers)[-1]


def load_dataset_embeddings(
    store: EmbeddingStore, config: StudyConfig, dataset: str, options: AnalysisOptions,
    result: StudyAnalysis,
) -> DatasetEmbeddings | None:
    """Join the stored last layers of the study's models on ``dataset``; None when none stored."""
    stored: dict[str, StoredEmbeddings] = {}
    for selection in config.models:
        if not store.shard_paths(dataset, selection.id):
            continue
        try:
            stored[selection.id] = store.load_finished(dataset, selection.id,
                                                       _layer_of(store, dataset, selection.id))
        except MatterAlignError as error:
            result.note("matrices", f"{selection.id} on {dataset} left out: {error}")
    stored = {m: s for m, s in stored.items() if len(s.ids)}
    if not stored:
        return None
    aligned = join_on_ids(list(stored.values()))
    ids = aligned.ids
    rng = np.random.default_rng(options.seed)
    rows = np.arange(len(ids))
    if options.max_samples is not None and len(ids) > options.max_samples:
        rows = np.sort(rng.choice(len(ids), options.max_samples, replace=False))
        result.note("matrices", f"{dataset}: a seeded subsample of {len(rows)} of the "
                                f"{len(ids)} shared samples is analysed (max_samples)")
    energy = {m: pd.Series(s.energy, index=s.ids, name=m) for m, s in stored.items()
              if s.energy is not None}
    return DatasetEmbeddings(
        name=dataset, ood=_is_ood(dataset), layers={m: s.layer for m, s in stored.items()},
        ids=[ids[i] for i in rows], values={m: v[rows] for m, v in aligned.values.items()},
        energy=energy, n_shared=len(ids), stored=stored,
    )


# --- the analyses ------------------------------------------------------------------------------


def _matrices(result: StudyAnalysis, data: DatasetEmbeddings, config: StudyConfig) -> None:
    from matteralign import metrics

    if len(data.values) < 2:
        result.note("matrices", f"{data.name}: only {list(data.values)} embedded; alignment needs "
                                "two models")
        return
    n = len(data.ids)
    mats: dict[str, pd.DataFrame] = {}
    main = _capped(result.main_metric, n)
    for metric in (main, result.options.dcor_metric, _capped(result.options.ii_metric, n)):
        mat = _attempt(result, "matrices", f"{metric} on {data.name}", lambda metric=metric:
                       metrics.pairwise(data.values, metric, preprocessing=config.preprocess,
                                        progress=False).matrix)
        if mat is not None:
            mats[metric if metric != main else result.main_metric] = mat
    if main != result.main_metric:
        result.note("matrices", f"{data.name}: {result.main_metric} needs more samples; scored "
                                f"as {main} (k = N - 1)")
    result.matrices[data.name] = mats
    if result.main_metric in mats:
        result.condensed[data.name] = condense_matrix(
            mats[result.main_metric], result.families.reindex(mats[result.main_metric].index))


def _energy(result: StudyAnalysis, data: DatasetEmbeddings, config: StudyConfig) -> pd.DataFrame:
    from matteralign.data.registry import load_dataset

    if not data.energy:
        return pd.DataFrame()
    selection = next(s for s in config.datasets if s.name == data.name)
    dataset = load_dataset(data.name, n=selection.n, seed=selection.seed,
                           data_root=_data_root(config))
    label = result.options.energy_label
    labelled = {s.id: (s.labels[label], s.atoms) for s in dataset.samples
                if label in s.labels and s.atoms is not None and np.isfinite(s.labels[label])}
    if not labelled:
        result.note("convergence", f"{data.name}: no sample has an {label!r} label; the energy "
                                   "error needs reference energies")
        return pd.DataFrame()
    common = set(labelled)
    for series in data.energy.values():
        common &= set(series.index[np.isfinite(series.to_numpy(dtype=float))])
    ids = [i for i in labelled if i in common]
    if len(ids) < 3:
        result.note("convergence", f"{data.name}: only {len(ids)} labelled samples have energies "
                                   "from every model")
        return pd.DataFrame()
    counts, _ = composition_matrix([labelled[i][1].numbers for i in ids])
    reference = np.array([labelled[i][0] for i in ids])
    recs = []
    for model, series in data.energy.items():
        err = energy_regression_error(reference, series.reindex(ids).to_numpy(float), counts)
        result.energy_errors[(data.name, model)] = pd.Series(np.abs(err.errors), index=ids)
        recs.append({"dataset": data.name, "model": model, "mae": err.mae, "n": len(ids)})
    return pd.DataFrame(recs)


def _convergence(result: StudyAnalysis, data: DatasetEmbeddings) -> None:
    if result.energy.empty or data.name not in set(result.energy.dataset):
        return
    mae = result.energy[result.energy.dataset == data.name].set_index("model").mae
    for metric, mat in result.matrices.get(data.name, {}).items():
        if metric.startswith("ii"):
            continue
        res = convergence(mae, mat, metric, n_bootstrap=result.options.n_bootstrap_correlation,
                          seed=result.options.seed)
        result.convergence[(data.name, metric)] = res
        if res.note:
            result.note("convergence", f"{data.name}, {metric}: {res.note}")


def _k_sweep(result: StudyAnalysis, data: DatasetEmbeddings, config: StudyConfig) -> pd.DataFrame:
    values = data.values
    n_max = result.options.k_sweep_max_samples
    if len(data.ids) > n_max:
        rows = np.sort(np.random.default_rng(result.options.seed).choice(len(data.ids), n_max,
                                                                          replace=False))
        values = {m: v[rows] for m, v in values.items()}
        result.note("k_sweep", f"{data.name}: swept on a seeded subsample of {n_max} samples")
    return cknna_k_sweep(values, result.options.ks, config.preprocess).assign(dataset=data.name)


def _layers(result: StudyAnalysis, data: DatasetEmbeddings, store: EmbeddingStore,
            config: StudyConfig) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    per_model = {}
    for model in data.values:
        ids, layers = load_layers(store, data.name, model, _card_layers(model))
        position = {i: r for r, i in enumerate(ids)}
        rows = np.array([position[i] for i in data.ids])
        per_model[model] = {name: v[rows] for name, v in layers.items()}
    if all(len(ls) == 1 for ls in per_model.values()):
        result.note("layers", f"{data.name}: every model has a single stored layer")
    metric = _capped(result.main_metric, len(data.ids))
    rows = layerwise_alignment(per_model, metric, config.preprocess).assign(dataset=data.name)
    return rows, summarise_layers(rows).assign(dataset=data.name)


def _leaderboard(result: StudyAnalysis, data: DatasetEmbeddings, config: StudyConfig) -> None:
    mat = result.matrices.get(data.name, {}).get(result.main_metric)
    if mat is None:
        return
    mae = None
    if not result.energy.empty and data.name in set(result.energy.dataset):
        mae = result.energy[result.energy.dataset == data.name].set_index("model").mae
    refs, basis = strongest_models(mat, mae, result.options.n_references)
    table = leaderboard(data.values, refs, _capped(result.main_metric, len(data.ids)),
                        result.options.n_permutations, result.options.n_bootstrap,
                        seed=result.options.seed, preprocessing=config.preprocess)
    result.leaderboards[data.name] = (table, refs, basis)


def _map(result: StudyAnalysis, config: StudyConfig) -> None:
    counts: dict[str, list[str]] = {}
    for name, data in result.datasets.items():
        for model in data.stored:
            counts.setdefault(model, []).append(name)
    if not counts:
        result.note("map", "no embeddings stored")
        return
    best_mae = (result.energy.groupby("model").mae.mean() if not result.energy.empty
                else pd.Series(dtype=float))
    model = max(counts, key=lambda m: (len(counts[m]), -best_mae.get(m, np.inf)))
    widths = {d: result.datasets[d].stored[model].values.shape[1] for d in counts[model]}
    datasets = [d for d in counts[model] if widths[d] == widths[counts[model][0]]]
    if len(datasets) < 2:
        result.note("map", f"{model} embeds only {datasets}; the map shows one dataset (the paper "
                           "overlays several datasets embedded by one model)")
    embeddings = {d: (result.datasets[d].stored[model].ids, result.datasets[d].stored[model].values)
                  for d in datasets}
    errors = {d: result.energy_errors[(d, model)] for d in datasets
              if (d, model) in result.energy_errors}
    if not errors:
        result.note("map", f"no energy errors of {model}: points are coloured by dataset only")
    method = result.options.projection
    if method == "umap":
        try:
            import umap  # noqa: F401
        except ImportError:
            method = "pca"
            result.note("map", "umap-learn is not installed (extra 'report'); PCA is shown")
    else:
        result.note("map", "PCA projection (UMAP takes about a minute of numba compilation on two "
                           "cores; ask for it with projection='umap' / --projection umap)")
    result.maps.append(embedding_map(model, embeddings, errors, method,
                                     result.options.map_max_per_dataset, config.preprocess,
                                     result.options.seed))


def analyse_study(
    config: StudyConfig, out: Path, options: AnalysisOptions | None = None
) -> StudyAnalysis:
    """Run every analysis of a study whose store lies under ``out/store``.

    Parameters
    ----------
    config : StudyConfig
    out : Path
        The study's output folder (``run_study``'s ``out``).
    options : AnalysisOptions, optional

    Returns
    -------
    StudyAnalysis
        Results of each analysis, and notes for those that had no input or failed.
    """
    options = options or AnalysisOptions()
    result = StudyAnalysis(config.name, options, _main_metric(config, options))
    store_dir = Path(out) / "store"
    if not store_dir.is_dir():
        for key in ANALYSES:
            result.note(key, f"no store under {out}; run `matteralign embed` first")
        return result
    store = EmbeddingStore(store_dir)
    models = [m.id for m in config.models]
    result.families = model_families(models, options.family_level)
    result.card_families = model_families(models, "card")
    result.failures = pd.DataFrame(store.failures(),
                                   columns=["dataset", "model", "sample_id", "reason"])
    clock = time.perf_counter()
    for selection in config.datasets:
        data = _attempt(result, "matrices", f"loading {selection.name}", lambda s=selection:
                        load_dataset_embeddings(store, config, s.name, options, result))
        if data is not None:
            result.datasets[selection.name] = data
        else:
            result.note("matrices", f"{selection.name}: no model has embeddings")
    result.timings["load"] = time.perf_counter() - clock

    steps: list[tuple[str, Callable[[DatasetEmbeddings], Any]]] = [
        ("matrices", lambda d: _matrices(result, d, config)),
        ("convergence", lambda d: _energy_then_convergence(result, d, config)),
        ("dimension", lambda d: _dimension(result, d, config)),
        ("k_sweep", lambda d: _collect(result, "k_sweep", _k_sweep(result, d, config))
         if len(d.values) >= 2 else result.note("k_sweep", f"{d.name}: fewer than two models")),
        ("tree", lambda d: _tree(result, d)),
        ("layers", lambda d: _collect_layers(result, _layers(result, d, store, config))
         if len(d.values) >= 2 else result.note("layers", f"{d.name}: fewer than two models")),
        ("leaderboard", lambda d: _leaderboard(result, d, config)
         if len(d.values) >= 2 else result.note("leaderboard", f"{d.name}: fewer than two models")),
    ]
    for key, step in steps:
        clock = time.perf_counter()
        for data in result.datasets.values():
            _attempt(result, key, f"{ANALYSES[key]} on {data.name}", lambda step=step, d=data:
                     step(d))
        result.timings[key] = time.perf_counter() - clock
    clock = time.perf_counter()
    _attempt(result, "distribution", "pair distributions", lambda: _distribution(result))
    result.timings["distribution"] = time.perf_counter() - clock
    clock = time.perf_counter()
    _attempt(result, "map", "embedding map", lambda: _map(result, config))
    result.timings["map"] = time.perf_counter() - clock
    if not result.k_sweep.empty:
        result.k_stability = rank_stability(result.k_sweep)
    _empty_notes(result)
    return result


def _energy_then_convergence(result: StudyAnalysis, data: DatasetEmbeddings,
                             config: StudyConfig) -> None:
    if not data.energy:
        result.note("convergence", f"{data.name}: no model stored predicted energies")
        return
    table = _energy(result, data, config)
    if not table.empty:
        result.energy = pd.concat([result.energy, table], ignore_index=True)
    _convergence(result, data)


def _dimension(result: StudyAnalysis, data: DatasetEmbeddings, config: StudyConfig) -> None:
    table = intrinsic_dimensions(data.values, result.options.id_methods, config.preprocess)
    for row in table[table.error != ""].itertuples():
        result.note("dimension", f"{data.name}, {row.model}, {row.method}: {row.error}")
    _collect(result, "dimensions", table.assign(dataset=data.name))


def _tree(result: StudyAnalysis, data: DatasetEmbeddings) -> None:
    mat = result.matrices.get(data.name, {}).get(result.main_metric)
    if mat is None:
        return
    random = [m for m in mat.index if is_random_baseline(m, result.card_families.get(m))]
    if len(mat) - len(random) < 3:
        result.note("tree", f"{data.name}: {len(mat) - len(random)} non-baseline models; a tree "
                            "needs at least 3")
        return
    result.trees[data.name] = alignment_tree(mat, left_out=random)


def _distribution(result: StudyAnalysis) -> None:
    frames = [pair_scores(mats, name, result.datasets[name].ood)
              for name, mats in result.matrices.items() if mats]
    if not frames:
        result.note("distribution", "no dataset has two or more models")
        return
    result.pairs = pd.concat(frames, ignore_index=True)
    metrics_here = [m for m in result.pairs.columns
                    if m not in ("dataset", "ood", "model_a", "model_b") and ":" not in m]
    result.in_out = compare_in_out(result.pairs, metrics_here)
    if not result.pairs.ood.any():
        result.note("distribution", "no out-of-distribution dataset in this study (a dataset "
                                    "spec's out_of_distribution flag): distributions are shown "
                                    "per dataset, without the ID-vs-OOD test")
    elif result.pairs.ood.all():
        result.note("distribution", "every dataset is out of distribution: no ID-vs-OOD test")


def _collect(result: StudyAnalysis, attr: str, table: pd.DataFrame | None) -> None:
    if table is None or table.empty:
        return
    current = getattr(result, attr)
    setattr(result, attr, table if current.empty else pd.concat([current, table],
                                                                 ignore_index=True))


def _collect_layers(result: StudyAnalysis, tables) -> None:
    if tables is None:
        return
    _collect(result, "layer_rows", tables[0])
    _collect(result, "layer_summary", tables[1])


def _empty_notes(result: StudyAnalysis) -> None:
    """A note for every analysis that produced nothing and said nothing."""
    produced = {
        "matrices": bool(result.matrices) and any(result.matrices.values()),
        "convergence": bool(result.convergence),
        "distribution": not result.pairs.empty,
        "dimension": not result.dimensions.empty,
        "k_sweep": not result.k_sweep.empty,
        "tree": bool(result.trees),
        "map": bool(result.maps),
        "layers": not result.layer_rows.empty,
        "leaderboard": bool(result.leaderboards),
    }
    for key, done in produced.items():
        if not done and not result.notes.get(key):
            result.note(key, "no input for this analysis in this study")


def study_references(
    config: StudyConfig, out: Path, dataset: str, options: AnalysisOptions | None = None,
    exclude: tuple[str, ...] = (),
) -> tuple[dict[str, str], str, str]:
    """The leaderboard's reference models of one dataset of a study, as the report picks them.

    The ``n_references`` lowest energy MAEs where energies exist, else the consensus of the main
    metric's matrix; models in ``exclude`` (e.g. the candidate being scored) are left out.

    Returns
    -------
    references : dict of model id to layer name
    basis : str
    metric : str
        The main metric id (k capped at N - 1).

    Raises
    ------
    StoreError
        When fewer than one model of the study is stored on ``dataset``.
    """
    from matteralign.analysis.leaderboard import strongest_models
    from matteralign.errors import StoreError

    options = options or AnalysisOptions()
    kept = config.model_copy(update={"models": [m for m in config.models if m.id not in exclude]})
    result = StudyAnalysis(config.name, options, _main_metric(config, options))
    data = load_dataset_embeddings(EmbeddingStore(Path(out) / "store"), kept, dataset, options,
                                   result)
    if data is None:
        raise StoreError(f"no model of study {config.name!r} is stored on dataset {dataset!r} "
                         f"under {out}; run `matteralign embed` first")
    metric = _capped(result.main_metric, len(data.ids))
    if len(data.values) == 1:
        return dict(data.layers), "only stored model", metric
    _matrices(result, data, kept)
    mae = None
    if data.energy:
        table = _attempt(result, "convergence", "energy", lambda: _energy(result, data, kept))
        if table is not None and not table.empty:
            mae = table.set_index("model").mae
    refs, basis = strongest_models(result.matrices[data.name][result.main_metric], mae,
                                   options.n_references)
    return {r: data.layers[r] for r in refs}, basis, metric
