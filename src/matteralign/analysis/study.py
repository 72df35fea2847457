"""All analyses of a finished study, from its store: matrices, convergence, in/out of distribution,
intrinsic dimension, k sweep, tree, embedding map, layer-wise alignment and leaderboard.

The alignment matrices are the ones ``matteralign align`` wrote under ``alignment/`` (read, never
recomputed); where align has not run, the same function scores them in memory
(:func:`~matteralign.analysis.matrices.score_dataset`), by the same rules. Reference labels
(energies, atomic numbers) come from the store's sample table, written at embed time; no analysis
rebuilds a dataset. An analysis that lacks input (one model, no energies) records a note instead
of failing.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matteralign.analysis.composition import (
    composition_controlled_alignment,
    composition_fractions,
    composition_groups,
)
from matteralign.analysis.convergence import ConvergenceResult, alignment_intervals, convergence
from matteralign.analysis.dimension import intrinsic_dimensions
from matteralign.analysis.distribution import compare_in_out, pair_scores
from matteralign.analysis.embedding_map import EmbeddingMap, embedding_map
from matteralign.analysis.energy import (
    EnergyFitError,
    composition_matrix,
    energy_regression_error,
    mae_interval,
)
from matteralign.analysis.families import (
    condense_matrix,
    is_random_baseline,
    model_families,
)
from matteralign.analysis.in_out import distribution_label, matched_in_out
from matteralign.analysis.k_sweep import DEFAULT_KS, cknna_k_sweep, rank_stability
from matteralign.analysis.layers import (
    ShardCache,
    calibrate_best_layers,
    layerwise_alignment,
    load_layers,
    summarise_layers,
)
from matteralign.analysis.leaderboard import leaderboard, strongest_models
from matteralign.analysis.matrices import (
    DatasetScores,
    join_on_ids,
    read_dataset_scores,
    score_dataset,
)
from matteralign.analysis.significance import calibrate_matrices, rounds_for, study_metric_id
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
        Seeded subsample of each dataset's shared ids for the analyses that compute from the
        embeddings themselves (intrinsic dimension, layer-wise alignment, leaderboard nulls);
        None: all. The alignment matrices, and every analysis built on them (tree,
        distributions, convergence), always use align's scores on all shared samples.
    k_sweep_max_samples : int
        Smaller subsample for the k sweep, whose largest k costs O(N^2) per model.
    ks : tuple of int
        CKNNA k values of the sweep (capped at N - 1).
    main_metric : str, optional
        The metric of the condensed matrices, tree, layers and leaderboard; default the study's
        first pairwise metric. An id that leaves k unset ("cknna") is scored with k from each
        dataset's N (:meth:`StudyAnalysis.metric_on`).
    id_methods : tuple of str
    family_level : {"architecture", "card"}
    projection : {"pca", "umap"}
        UMAP compiles numba code for about a minute on two cores, so PCA is the default.
    n_permutations, n_bootstrap : int
        Rounds of the leaderboard's own permutation null (drawn only where the matrices have no
        calibration, e.g. with ``max_samples``; otherwise it reuses the matrices') and of its
        sample resampling.
    n_calibration : int
        Permutation rounds of the calibrated matrices, and of the layer-aware null of each model
        pair's best layer pair, for measures whose null round relabels per-model data (CKNNA,
        mutual kNN, II).
    n_calibration_rescored : int
        Rounds for the measures that recompute every pair per round (dCor, CKA, ...).
    alpha : float
        Level of the calibration threshold tau (the (1 - alpha) null quantile).
    n_bootstrap_correlation : int
        Resamples of models for the convergence correlations' intervals.
    n_references : int
        Strongest models the leaderboard scores against.
    energy_label : str
        Sample label holding the reference total energy in eV.
    seed : int
    """

    max_samples: int | None = None
    k_sweep_max_samples: int = 500
    ks: tuple[int, ...] = DEFAULT_KS
    main_metric: str | None = None
    id_methods: tuple[str, ...] = ("id-twonn", "id-mle-k50")
    family_level: str = "architecture"
    projection: str = "pca"
    map_max_per_dataset: int = 2000
    n_permutations: int = 1000
    n_bootstrap: int = 20
    n_calibration: int = 1000
    n_calibration_rescored: int = 100
    alpha: float = 0.05
    n_bootstrap_correlation: int = 2000
    n_references: int = 3
    energy_label: str = "energy"
    seed: int = 0


@dataclass
class DatasetEmbeddings:
    """One dataset of a study: its alignment scores and the embeddings they were computed from.

    Attributes
    ----------
    name : str
    ood : bool
    layers : dict of str to str
        The scored layer of each model.
    ids : list of str
        Sample ids the embedding-level analyses use: the shared ids, or a seeded subsample of
        them (``AnalysisOptions.max_samples``).
    values : dict of str to (len(ids), D) array
        Raw embeddings of the models align scored (degenerate models left out), rows = ``ids``.
    energy : dict of str to Series
        Predicted energies per model, indexed by sample id.
    n_shared : int
        Samples every model embedded (= the N of the alignment matrices).
    stored : dict of str to StoredEmbeddings
    scores : DatasetScores
        The matrices ``align`` wrote (or :func:`score_dataset` computed in memory).
    """

    name: str
    ood: bool
    layers: dict[str, str]
    ids: list[str]
    values: dict[str, np.ndarray]
    energy: dict[str, pd.Series]
    n_shared: int
    stored: dict[str, StoredEmbeddings]
    scores: DatasetScores


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
    calibrated: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibrated_matrices: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    composition_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    composition_models: pd.DataFrame = field(default_factory=pd.DataFrame)
    condensed: dict[str, pd.DataFrame] = field(default_factory=dict)
    energy: pd.DataFrame = field(default_factory=pd.DataFrame)
    energy_errors: dict[tuple[str, str], pd.Series] = field(default_factory=dict)
    convergence: dict[tuple[str, str], ConvergenceResult] = field(default_factory=dict)
    convergence_calibrated: dict[tuple[str, str], ConvergenceResult] = field(default_factory=dict)
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    in_out: pd.DataFrame = field(default_factory=pd.DataFrame)
    distribution_labels: pd.DataFrame = field(default_factory=pd.DataFrame)
    in_out_matched: pd.DataFrame = field(default_factory=pd.DataFrame)
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

    def metric_on(self, dataset: str, metric: str | None = None) -> str:
        """The id a study metric (default the main one) was scored with on ``dataset``: the same,
        or with k chosen from that dataset's N where the study's id leaves k unset
        (``DatasetScores.metric_ids``; e.g. "cknna" -> "cknna-k6" at N = 60)."""
        from matteralign.metrics import get_metric

        metric = metric or self.main_metric
        data = self.datasets.get(dataset)
        chosen = data.scores.metric_ids.get(metric) if data is not None else None
        return chosen or get_metric(metric).id


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
    from matteralign import metrics

    if options.main_metric:
        return study_metric_id(options.main_metric)
    pairwise = [m for m in config.metrics if not metrics.get_metric(m).per_model]
    return study_metric_id((pairwise or config.metrics)[0])


def _higher_is_more_similar(metric: str) -> bool:
    from matteralign import metrics

    return metrics.get_metric(metric).higher_is_more_similar


def _is_ood(dataset: str) -> bool:
    from matteralign.data.registry import get_dataset_spec
    from matteralign.errors import DatasetError

    try:
        return bool(get_dataset_spec(dataset).out_of_distribution)
    except DatasetError:
        return False


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
    result: StudyAnalysis, out: Path | None = None,
) -> DatasetEmbeddings | None:
    """The scores of ``dataset`` and the stored last layers they were computed from.

    The scores are those ``align`` wrote under ``out/alignment/<dataset>/``; where there are none
    (align has not run, or ``out`` is None), :func:`score_dataset` computes them in memory with
    align's rules and the analysis says so. Models align left out (unfinished, degenerate) are
    left out here too, each with align's reason as a note. None when no model is stored.
    """
    stored: dict[str, StoredEmbeddings] = {}
    not_finished = []
    for selection in config.models:
        if not store.shard_paths(dataset, selection.id):
            continue
        try:
            stored[selection.id] = store.load_finished(dataset, selection.id,
                                                       _layer_of(store, dataset, selection.id))
        except MatterAlignError as error:
            not_finished.append((f"model {selection.id} on {dataset}", str(error)))
    stored = {m: s for m, s in stored.items() if len(s.ids)}
    scores = read_dataset_scores(out, dataset) if out is not None else None
    if scores is None:
        scores = score_dataset(list(stored.values()), dataset, config.metrics, config.preprocess,
                               config.resolved_device(), progress=False, skipped=not_finished)
        if len(stored) >= 2:
            result.note("matrices", f"{dataset}: `matteralign align` has written no scores; "
                                    "scored now by its rules (run align to store them)")
    else:
        known = {what for what, _ in scores.skipped}
        scores.skipped += [(what, why) for what, why in not_finished if what not in known]
    for what, why in scores.skipped:
        result.note("matrices", f"{what} left out: {why}")
    for what, why in scores.flags:
        result.note("matrices", f"{what}: {why}")
    for asked, scored in scores.metric_ids.items():
        if asked != scored:
            result.note("matrices", f"{dataset}: {asked} scored as {scored} (k chosen from "
                                    f"N = {scores.n}: min(default, max(2, floor(0.1 N))))")
    if not stored:
        return None
    models = [m for m in scores.models if m in stored] or list(stored)
    aligned = join_on_ids([stored[m] for m in models])
    ids = aligned.ids
    if scores.n and scores.n != len(ids):
        result.note("matrices", f"{dataset}: the alignment scores are of N = {scores.n} samples "
                                f"but the store now shares {len(ids)}; rerun `matteralign align`")
    rows = np.arange(len(ids))
    if options.max_samples is not None and len(ids) > options.max_samples:
        rows = np.sort(np.random.default_rng(options.seed).choice(len(ids), options.max_samples,
                                                                  replace=False))
        result.note("matrices", f"{dataset}: intrinsic dimension, layers and leaderboard use a "
                                f"seeded subsample of {len(rows)} of the {len(ids)} shared "
                                "samples (max_samples); the matrices use all of them")
    energy = {m: pd.Series(s.energy, index=s.ids, name=m) for m, s in stored.items()
              if s.energy is not None and m in aligned.values}
    return DatasetEmbeddings(
        name=dataset, ood=_is_ood(dataset),
        layers={m: s.layer for m, s in stored.items() if m in aligned.values},
        ids=[ids[i] for i in rows], values={m: v[rows] for m, v in aligned.values.items()},
        energy=energy, n_shared=len(ids),
        stored={m: s for m, s in stored.items() if m in aligned.values}, scores=scores,
    )


# --- the analyses ------------------------------------------------------------------------------


def _matrices(result: StudyAnalysis, data: DatasetEmbeddings) -> None:
    """The pairwise matrices align wrote (per-model measures are not matrices)."""
    from matteralign import metrics

    if len(data.scores.models) < 2:
        result.note("matrices", f"{data.name}: only {list(data.values)} embedded; alignment needs "
                                "two models")
        return
    keep = [m for m in data.scores.models if m in data.values]  # e.g. a candidate left out
    if len(keep) < 2:
        result.note("matrices", f"{data.name}: fewer than two of the study's models are scored")
        return
    mats = {metric: mat.loc[keep, keep] for metric, mat in data.scores.matrices.items()
            if not metrics.get_metric(metric).per_model}
    result.matrices[data.name] = mats
    for metric, mat in mats.items():
        values = mat.to_numpy(dtype=float).copy()
        np.fill_diagonal(values, np.nan)
        unscored = [m for m, row, col in zip(keep, values, values.T, strict=True)
                    if not np.isfinite(row).any() and not np.isfinite(col).any()]
        if unscored:
            result.note("matrices", f"{data.name}, {metric}: {', '.join(unscored)} scored NaN "
                                    "against every other model (a constant or degenerate "
                                    "embedding here)")
    main = result.metric_on(data.name)
    if main in mats:
        result.condensed[data.name] = condense_matrix(
            mats[main], result.families.reindex(mats[main].index))


def _matrices_step(result: StudyAnalysis, data: DatasetEmbeddings, store: EmbeddingStore,
                   config: StudyConfig) -> None:
    """The matrices align wrote, their calibration and their composition-controlled version."""
    _matrices(result, data)
    _attempt(result, "matrices", f"calibration on {data.name}",
             lambda: _calibration(result, data, store, config))
    _attempt(result, "matrices", f"composition control on {data.name}",
             lambda: _composition(result, data, store, config))


def _composition(result: StudyAnalysis, data: DatasetEmbeddings, store: EmbeddingStore,
                 config: StudyConfig) -> None:
    """The main metric with each embedding's composition signal projected out (structures only)."""
    main = result.metric_on(data.name)
    mat = result.matrices.get(data.name, {}).get(main)
    table = store.read_samples(data.name)
    if mat is None or table is None or "atomic_numbers" not in table:
        return
    numbers = table.atomic_numbers.reindex(data.ids)
    if numbers.isna().any() or not (numbers.map(len) > 0).all():
        return
    if len(data.ids) != data.n_shared:
        result.note("matrices", f"{data.name}: no composition control (max_samples subsampled "
                                "the embeddings)")
        return
    fractions = composition_fractions(list(numbers))
    values = {m: data.values[m] for m in mat.index
              if not is_random_baseline(m, result.card_families.get(m))}
    pairs, models = composition_controlled_alignment(
        values, fractions, main, mat, config.preprocess,
        rounds_for(main, result.options.n_calibration, result.options.n_calibration_rescored),
        result.options.seed)
    _collect(result, "composition_models", models.assign(dataset=data.name))
    _collect(result, "composition_pairs", pairs.assign(dataset=data.name))
    for row in models[models.left_out].itertuples():
        result.note("matrices", f"{data.name}: composition explains all of {row.model}; it is "
                                "left out of the composition-controlled scores")


def _calibration(result: StudyAnalysis, data: DatasetEmbeddings, store: EmbeddingStore,
                 config: StudyConfig) -> None:
    """Permutation null, p, BH-adjusted p and calibrated score of every cell of every matrix;
    for structures, also the null restricted to structures of one composition."""
    mats = result.matrices.get(data.name)
    if not mats:
        return
    groups = None
    samples = store.read_samples(data.name)
    if samples is not None and "atomic_numbers" in samples:
        numbers = samples.atomic_numbers.reindex(data.ids)
        if numbers.notna().all() and (numbers.map(len) > 0).all():
            groups = composition_groups(list(numbers))
            if len(set(groups)) == len(groups):
                groups = None  # every composition occurs once: nothing to permute within
    opts = result.options
    if len(data.ids) != data.n_shared:
        result.note("matrices", f"{data.name}: calibration needs the embeddings the matrices were "
                                "scored from; max_samples subsampled them, so none is computed")
        return
    rounds = {m: rounds_for(m, opts.n_calibration, opts.n_calibration_rescored) for m in mats}
    table = calibrate_matrices(data.values, mats, data.name, rounds, opts.seed, opts.alpha,
                               config.preprocess, groups)
    if table.empty:
        return
    _collect(result, "calibrated", table)
    result.calibrated_matrices[data.name] = {}
    for metric, grp in table.groupby("metric", sort=False):
        mat = mats[metric]
        cal = pd.DataFrame(np.nan, index=mat.index, columns=mat.columns)
        for r in grp.itertuples():
            cal.loc[r.model_a, r.model_b] = r.calibrated
            if r.model_b in cal.index and not np.isfinite(cal.loc[r.model_b, r.model_a]):
                cal.loc[r.model_b, r.model_a] = r.calibrated
        result.calibrated_matrices[data.name][metric] = cal
        if grp.null_fills_range.any():
            result.note("matrices", f"{data.name}, {metric}: the permutation null reaches within "
                                    f"0.1 of the best score for {int(grp.null_fills_range.sum())} "
                                    f"of {len(grp)} pairs at N = {data.n_shared}; the raw scores "
                                    "cannot separate these pairs from chance")


def _energy(result: StudyAnalysis, data: DatasetEmbeddings, store: EmbeddingStore
            ) -> pd.DataFrame:
    """Energy regression MAE per model, against the reference labels stored at embed time."""
    if not data.energy:
        return pd.DataFrame()
    table = store.read_samples(data.name)
    if table is None:
        result.note("convergence", f"{data.name}: the store has no sample table (embedded by an "
                                   "older matteralign); rerun `matteralign embed` to store the "
                                   "reference energies")
        return pd.DataFrame()
    label = result.options.energy_label
    column = f"label:{label}"
    if column not in table:
        result.note("convergence", f"{data.name}: no sample has an {label!r} label; the energy "
                                   "error needs reference energies")
        return pd.DataFrame()
    labelled = table[np.isfinite(table[column].to_numpy(float))
                     & (table.atomic_numbers.map(len) > 0).to_numpy()]
    common = set(labelled.index)
    for series in data.energy.values():
        common &= set(series.index[np.isfinite(series.to_numpy(dtype=float))])
    ids = [i for i in labelled.index if i in common]
    if len(ids) < 3:
        result.note("convergence", f"{data.name}: only {len(ids)} labelled samples have energies "
                                   "from every model")
        return pd.DataFrame()
    counts, _ = composition_matrix(list(labelled.atomic_numbers.loc[ids]))
    reference = labelled[column].loc[ids].to_numpy(float)
    recs = []
    for model, series in data.energy.items():
        try:
            err = energy_regression_error(reference, series.reindex(ids).to_numpy(float), counts,
                                          name=f"{data.name}, {model}")
        except EnergyFitError as error:
            result.note("convergence", f"energy MAE refused: {error}")
            return pd.DataFrame()
        result.energy_errors[(data.name, model)] = pd.Series(np.abs(err.errors), index=ids)
        low, high = mae_interval(err.errors, result.options.n_bootstrap_correlation,
                                 seed=result.options.seed)
        recs.append({"dataset": data.name, "model": model, "mae": err.mae, "mae_ci_low": low,
                     "mae_ci_high": high, "n": len(ids), "dof": err.dof})
    return pd.DataFrame(recs)


def _convergence(result: StudyAnalysis, data: DatasetEmbeddings, config: StudyConfig) -> None:
    if result.energy.empty or data.name not in set(result.energy.dataset):
        return
    mae = result.energy[result.energy.dataset == data.name].set_index("model").mae
    opts = result.options
    calibrated = result.calibrated_matrices.get(data.name, {})
    for metric, mat in result.matrices.get(data.name, {}).items():
        if not _higher_is_more_similar(metric):
            continue
        res = convergence(mae, mat, metric, n_bootstrap=opts.n_bootstrap_correlation,
                          seed=opts.seed)
        if len(data.ids) == data.n_shared:
            res = alignment_intervals(res, data.values, opts.n_bootstrap, seed=opts.seed,
                                      preprocessing=config.preprocess)
        result.convergence[(data.name, metric)] = res
        if res.note:
            result.note("convergence", f"{data.name}, {metric}: {res.note}")
        if metric in calibrated:
            cal = convergence(mae, calibrated[metric], metric,
                              n_bootstrap=opts.n_bootstrap_correlation, seed=opts.seed)
            result.convergence_calibrated[(data.name, metric)] = cal


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
    main = result.metric_on(data.name)
    rows = layerwise_alignment(per_model, main, config.preprocess).assign(dataset=data.name)
    summary = summarise_layers(rows, _higher_is_more_similar(main))
    opts = result.options
    calibrated = result.calibrated
    if not calibrated.empty:  # the matrix's cells, for pairs of single-layer models
        calibrated = calibrated[(calibrated.dataset == data.name) & (calibrated.metric == main)]
    best = calibrate_best_layers(
        per_model, rows, main, rounds_for(main, opts.n_calibration, opts.n_calibration_rescored),
        opts.seed, opts.alpha, config.preprocess,
        calibrated if len(data.ids) == data.n_shared and not calibrated.empty else None)
    summary = summary.merge(best, on=["model_a", "model_b"], how="left")
    return rows, summary.assign(dataset=data.name)


def _leaderboard(result: StudyAnalysis, data: DatasetEmbeddings, config: StudyConfig) -> None:
    main = result.metric_on(data.name)
    mat = result.matrices.get(data.name, {}).get(main)
    if mat is None:
        return
    mae = None
    if not result.energy.empty and data.name in set(result.energy.dataset):
        mae = result.energy[result.energy.dataset == data.name].set_index("model").mae
    refs, basis = strongest_models(mat, mae, result.options.n_references)
    calibrated = result.calibrated
    if not calibrated.empty:
        calibrated = calibrated[(calibrated.dataset == data.name) & (calibrated.metric == main)]
    if calibrated.empty:
        calibrated = None  # the matrices have no calibration (max_samples): the leaderboard's own
        result.note("leaderboard", f"{data.name}: the matrix has no calibration; the leaderboard "
                                   f"draws its own null ({result.options.n_permutations} rounds)")
    table = leaderboard({m: data.values[m] for m in mat.index}, refs, main,
                        result.options.n_permutations, result.options.n_bootstrap,
                        seed=result.options.seed, preprocessing=config.preprocess,
                        calibration=calibrated)
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
    store = ShardCache(store_dir)
    models = [m.id for m in config.models]
    result.families = model_families(models, options.family_level)
    result.card_families = model_families(models, "card")
    result.failures = pd.DataFrame(store.failures(),
                                   columns=["dataset", "model", "sample_id", "reason"])

    steps: list[tuple[str, Callable[[DatasetEmbeddings], Any]]] = [
        ("matrices", lambda d: _matrices_step(result, d, store, config)),
        ("convergence", lambda d: _energy_then_convergence(result, d, store, config)),
        ("dimension", lambda d: _dimension(result, d, config)),
        ("k_sweep", lambda d: _collect(result, "k_sweep", _k_sweep(result, d, config))
         if len(d.values) >= 2 else result.note("k_sweep", f"{d.name}: fewer than two models")),
        ("tree", lambda d: _tree(result, d)),
        ("layers", lambda d: _collect_layers(result, _layers(result, d, store, config))
         if len(d.values) >= 2 else result.note("layers", f"{d.name}: fewer than two models")),
        ("leaderboard", lambda d: _leaderboard(result, d, config)
         if len(d.values) >= 2 else result.note("leaderboard", f"{d.name}: fewer than two models")),
    ]
    for selection in config.datasets:  # one dataset at a time: its shards are read once
        clock = time.perf_counter()
        name = config.stored_dataset(selection.name)  # "<name>@atoms" at level: atoms
        data = _attempt(result, "matrices", f"loading {name}", lambda name=name:
                        load_dataset_embeddings(store, config, name, options, result, out))
        result.timings["load"] = result.timings.get("load", 0.0) + time.perf_counter() - clock
        if data is None:
            result.note("matrices", f"{name}: no model has embeddings")
            continue
        result.datasets[name] = data
        for key, step in steps:
            clock = time.perf_counter()
            _attempt(result, key, f"{ANALYSES[key]} on {data.name}", lambda step=step, d=data:
                     step(d))
            result.timings[key] = result.timings.get(key, 0.0) + time.perf_counter() - clock
        store.forget()
    clock = time.perf_counter()
    _attempt(result, "distribution", "pair distributions", lambda: _distribution(result))
    _attempt(result, "distribution", "matched in vs out", lambda: _matched_in_out(result, config))
    result.timings["distribution"] = time.perf_counter() - clock
    clock = time.perf_counter()
    _attempt(result, "map", "embedding map", lambda: _map(result, config))
    result.timings["map"] = time.perf_counter() - clock
    if not result.k_sweep.empty:
        result.k_stability = rank_stability(result.k_sweep)
    _empty_notes(result)
    return result


def _energy_then_convergence(result: StudyAnalysis, data: DatasetEmbeddings,
                             store: EmbeddingStore, config: StudyConfig) -> None:
    if not data.energy:
        result.note("convergence", f"{data.name}: no model stored predicted energies")
        return
    table = _energy(result, data, store)
    if not table.empty:
        result.energy = pd.concat([result.energy, table], ignore_index=True)
    _convergence(result, data, config)


def _dimension(result: StudyAnalysis, data: DatasetEmbeddings, config: StudyConfig) -> None:
    table = intrinsic_dimensions(data.values, result.options.id_methods, config.preprocess)
    for row in table[table.error != ""].itertuples():
        result.note("dimension", f"{data.name}, {row.model}, {row.method}: {row.error}")
    _collect(result, "dimensions", table.assign(dataset=data.name))


def _tree(result: StudyAnalysis, data: DatasetEmbeddings) -> None:
    mat = result.matrices.get(data.name, {}).get(result.metric_on(data.name))
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


def _matched_in_out(result: StudyAnalysis, config: StudyConfig) -> None:
    """Per-(model, dataset) labels, and the in- vs out-of-distribution comparison of the main
    metric's calibrated scores on matched datasets (same models, same N, no baselines)."""
    recs = []
    for name, data in result.datasets.items():
        for model, x in data.values.items():
            label, reason = distribution_label(model, name, x)
            recs.append({"dataset": name, "model": model, "label": label, "reason": reason})
    result.distribution_labels = pd.DataFrame(recs)
    if result.distribution_labels.empty:
        return
    opts = result.options
    scored = {name: {m: data.values[m] for m in result.matrices[name].get(
                  result.metric_on(name), pd.DataFrame()).index}
              for name, data in result.datasets.items() if name in result.matrices}
    result.in_out_matched = matched_in_out(
        {d: v for d, v in scored.items() if len(v) >= 2}, result.distribution_labels,
        result.main_metric, rounds_for(result.main_metric, opts.n_calibration,
                                       opts.n_calibration_rescored),
        opts.n_bootstrap_correlation, seed=opts.seed, preprocessing=config.preprocess)


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
        The main metric's id as scored on ``dataset`` (k chosen from N where the study leaves
        it unset).

    Raises
    ------
    StoreError
        When no model of the study is stored on ``dataset``, or the main metric could not score
        it (the reason align recorded).
    """
    from matteralign.analysis.leaderboard import strongest_models
    from matteralign.errors import StoreError

    options = options or AnalysisOptions()
    kept = config.model_copy(update={"models": [m for m in config.models if m.id not in exclude]})
    result = StudyAnalysis(config.name, options, _main_metric(config, options))
    store = EmbeddingStore(Path(out) / "store")
    data = load_dataset_embeddings(store, kept, dataset, options, result, Path(out))
    if data is None:
        raise StoreError(f"no model of study {config.name!r} is stored on dataset {dataset!r} "
                         f"under {out}; run `matteralign embed` first")
    result.datasets[dataset] = data
    metric = result.metric_on(dataset)
    if len(data.values) == 1:
        return dict(data.layers), "only stored model", metric
    _matrices(result, data)
    if metric not in result.matrices.get(dataset, {}):
        why = "; ".join(result.notes["matrices"]) or "not scored"
        raise StoreError(f"{metric} has no matrix on dataset {dataset!r}: {why}")
    mae = None
    if data.energy:
        table = _attempt(result, "convergence", "energy", lambda: _energy(result, data, store))
        if table is not None and not table.empty:
            mae = table.set_index("model").mae
    refs, basis = strongest_models(result.matrices[dataset][metric], mae, options.n_references)
    return {r: data.layers[r] for r in refs}, basis, metric
