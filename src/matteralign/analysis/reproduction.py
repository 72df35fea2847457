"""The paper's claims as numbers: a study's compact result tables, and each claim from them.

:func:`reproduction_tables` condenses a study's analyses (:func:`analyse_study`) into six small
tables; :func:`reproduction_claims` computes every number of ``docs/reproduction.md`` from those
tables alone, so the numbers can be recomputed without the store (``matteralign reproduce``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from matteralign.analysis.model_bootstrap import model_bootstrap_interval

__all__ = [
    "ReproductionClaims",
    "ReproductionTables",
    "claim_across_domains",
    "claim_cknna_dcor",
    "claim_convergence",
    "claim_dimensions",
    "claim_in_out",
    "claim_modalities",
    "claim_proteins",
    "pair_kind",
    "pair_matrix",
    "reproduction_claims",
    "reproduction_tables",
    "unordered_pairs",
]

#: Intrinsic dimension per dataset read off the paper's Fig. 1E (approximate).
PAPER_DIMENSIONS = {"QM9": 5.0, "sAlex": 8.0, "OMat24": 10.0, "OMol25": 10.0}


@dataclass
class ReproductionTables:
    """The compact results of a study that every claim is computed from.

    Attributes
    ----------
    models : DataFrame
        model, family (card), architecture_family, input (modality read), domain, predicts_energy.
    pairs : DataFrame
        dataset, metric, model_a, model_b, n, raw, calibrated, p_value, p_fdr: every scored pair
        (a symmetric measure's pair once, a directed one in both orders); calibrated, p and p_fdr
        are NaN where no permutation null was drawn.
    energy : DataFrame
        dataset, model, mae (eV), mae_ci_low, mae_ci_high, n: energy regression MAE after the
        per-model compositional fit (paper §4.7).
    composition : DataFrame
        dataset, model_a, model_b, metric, controlled, controlled_calibrated, controlled_p_fdr:
        the main metric with composition projected out of every embedding (Steier).
    in_out : DataFrame
        dataset_in, dataset_out, metric, n, n_models, n_pairs, median_in, median_out,
        mean_difference, ci_low, ci_high, reason: matched in- vs out-of-distribution comparisons
        (calibrated pair scores; for intrinsic dimension, per-model TwoNN estimates).
    dimensions : DataFrame
        dataset, model, method, value, n: intrinsic dimension of every model's embedding.
    """

    models: pd.DataFrame
    pairs: pd.DataFrame
    energy: pd.DataFrame
    composition: pd.DataFrame
    in_out: pd.DataFrame
    dimensions: pd.DataFrame

    def write(self, folder: Path) -> list[Path]:
        """Write each table as ``folder/<name>.parquet``; returns the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for f in fields(self):
            path = folder / f"{f.name}.parquet"
            getattr(self, f.name).reset_index(drop=True).to_parquet(path, index=False)
            paths.append(path)
        return paths

    @classmethod
    def read(cls, folder: Path) -> ReproductionTables:
        """Read the tables :meth:`write` wrote.

        Raises
        ------
        StoreError
            When a table is missing, naming it.
        """
        from matteralign.errors import StoreError

        tables = {}
        for f in fields(cls):
            path = Path(folder) / f"{f.name}.parquet"
            if not path.is_file():
                raise StoreError(f"reproduction table {path} is missing; write the tables with "
                                 "`matteralign reproduce CONFIG --out STUDY --tables DIR`")
            tables[f.name] = pd.read_parquet(path)
        return cls(**tables)


def _model_table(models: Sequence[str]) -> pd.DataFrame:
    from matteralign.models.registry import get_card

    recs = []
    for model in models:
        card = get_card(model)
        recs.append({"model": model, "family": card.family,
                     "architecture_family": card.architecture_family or card.family,
                     "input": card.input, "domain": ",".join(card.domain),
                     "predicts_energy": bool(card.predicts_energy)})
    return pd.DataFrame(recs)


def _pair_rows(analysis, full_calibration: pd.DataFrame) -> pd.DataFrame:
    """Every scored pair of every matrix, with its calibration where one was drawn."""
    from matteralign.metrics import get_metric

    cal = pd.concat([analysis.calibrated, full_calibration], ignore_index=True)
    cal_cols = ["dataset", "metric", "model_a", "model_b", "calibrated", "p_value", "p_fdr"]
    cal = cal[cal_cols] if not cal.empty else pd.DataFrame(columns=cal_cols)
    frames = []
    for dataset, mats in analysis.matrices.items():
        n = analysis.datasets[dataset].n_shared
        for metric, mat in mats.items():
            symmetric = get_metric(metric).symmetric
            models = list(mat.index)
            recs = [{"dataset": dataset, "metric": metric, "model_a": a, "model_b": b, "n": n,
                     "raw": float(mat.loc[a, b])}
                    for i, a in enumerate(models) for j, b in enumerate(models)
                    if (i < j if symmetric else i != j)]
            frames.append(pd.DataFrame(recs))
    pairs = pd.concat(frames, ignore_index=True)
    # a symmetric pair's calibration may be stored in either order
    swapped = cal.rename(columns={"model_a": "model_b", "model_b": "model_a"})
    keys = ["dataset", "metric", "model_a", "model_b"]
    merged = pairs.merge(cal, on=keys, how="left")
    again = pairs.merge(swapped, on=keys, how="left")
    for column in ("calibrated", "p_value", "p_fdr"):
        merged[column] = merged[column].fillna(again[column])
    return merged


def _full_calibration(analysis, config, out: Path) -> pd.DataFrame:
    """The main metric's calibration on datasets that ``max_samples`` subsampled.

    The study analysis calibrates only where it holds every shared sample; there the main
    metric (whose null relabels neighbour graphs, cheap at any N) is calibrated on all of them,
    with the rounds and seed of the other datasets.
    """
    from matteralign.analysis.significance import calibrate_matrices, rounds_for
    from matteralign.analysis.study import AnalysisOptions, StudyAnalysis, load_dataset_embeddings
    from matteralign.store import EmbeddingStore

    opts = analysis.options
    full = AnalysisOptions(seed=opts.seed)
    frames = []
    for name, data in analysis.datasets.items():
        mats = analysis.matrices.get(name, {})
        main = analysis.main_metric
        if len(data.ids) == data.n_shared or main not in mats:
            continue
        scratch = StudyAnalysis(analysis.study, full, main)
        whole = load_dataset_embeddings(EmbeddingStore(Path(out) / "store"), config, name, full,
                                        scratch, out)
        rounds = {main: rounds_for(main, opts.n_calibration, opts.n_calibration_rescored)}
        frames.append(calibrate_matrices(whole.values, {main: mats[main]}, name, rounds,
                                         opts.seed, opts.alpha, config.preprocess))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _matched_dimensions(datasets: Mapping[str, Mapping[str, np.ndarray]], matched: pd.DataFrame,
                        labels: pd.DataFrame, preprocessing: Sequence[str], n_bootstrap: int,
                        seed: int) -> pd.DataFrame:
    """TwoNN intrinsic dimension of the models of each matched comparison, at its matched N.

    mean_difference = mean over models of (I_d out - I_d in); interval from resampling models.
    """
    from matteralign.analysis.dimension import intrinsic_dimensions
    from matteralign.analysis.in_out import subsample_models

    by = {d: g.set_index("model").label for d, g in labels.groupby("dataset")}
    recs = []
    for row in matched[matched.reason == ""].itertuples():
        d_in, d_out = row.dataset_in, row.dataset_out
        # matched_in_out's model set: labelled in on d_in and out on d_out
        models = [m for m in datasets[d_out] if m in datasets[d_in]
                  and by[d_out].get(m) == "out" and by[d_in].get(m) == "in"]
        est = {}
        for which, d in (("in", d_in), ("out", d_out)):
            sub = subsample_models({m: datasets[d][m] for m in models}, int(row.n), seed)
            est[which] = intrinsic_dimensions(sub, ("id-twonn",), preprocessing).set_index(
                "model").value.reindex(models).to_numpy(float)
        diff = est["out"] - est["in"]
        ok = np.isfinite(diff)
        base = {"dataset_in": d_in, "dataset_out": d_out, "metric": "id-twonn",
                "n": int(row.n), "n_models": int(ok.sum()), "n_pairs": 0}
        if ok.sum() < 2:
            recs.append({**base, "reason": f"TwoNN has a finite estimate on both sets for "
                                           f"{int(ok.sum())} of the {len(models)} models (tied "
                                           "distances: duplicated structures)"})
            continue
        rng = np.random.default_rng(seed)
        draws = diff[ok][rng.integers(0, ok.sum(), (n_bootstrap, ok.sum()))].mean(1)
        lo, hi = np.quantile(draws, [0.025, 0.975])
        recs.append({**base, "median_in": float(np.median(est["in"][ok])),
                     "median_out": float(np.median(est["out"][ok])),
                     "mean_difference": float(diff[ok].mean()), "ci_low": float(lo),
                     "ci_high": float(hi), "reason": ""})
    return pd.DataFrame(recs)


def _in_out(analysis, config) -> pd.DataFrame:
    """Matched in- vs out-of-distribution comparisons: the study's main metric, information
    imbalance, and intrinsic dimension, on the same datasets, models and N."""
    from matteralign.analysis.in_out import matched_in_out
    from matteralign.analysis.significance import rounds_for

    opts = analysis.options
    data = {name: {m: d.values[m] for m in analysis.matrices[name].get(analysis.main_metric,
                                                                     pd.DataFrame()).index}
            for name, d in analysis.datasets.items() if name in analysis.matrices}
    data = {d: v for d, v in data.items() if len(v) >= 2}
    labels = analysis.distribution_labels
    frames = [analysis.in_out_matched]  # the main metric's, from the study analysis
    others = [m for m in config.metrics if m.startswith("ii") and m != analysis.main_metric]
    for metric in others:
        kwargs = {"n_permutations": rounds_for(metric, opts.n_calibration,
                                               opts.n_calibration_rescored),
                  "n_bootstrap": opts.n_bootstrap_correlation, "seed": opts.seed,
                  "preprocessing": config.preprocess}
        frames.append(matched_in_out(data, labels, metric, **kwargs))
    rows = pd.concat(frames, ignore_index=True)
    rows["reason"] = rows["reason"].fillna("")
    rows = rows.drop_duplicates(["dataset_in", "dataset_out", "metric"])
    dims = _matched_dimensions(data, rows[rows.metric == analysis.main_metric], labels,
                               config.preprocess, opts.n_bootstrap_correlation, opts.seed)
    keep = ["dataset_in", "dataset_out", "metric", "n", "n_models", "n_pairs", "median_in",
            "median_out", "mean_difference", "ci_low", "ci_high", "reason"]
    return pd.concat([rows, dims], ignore_index=True).reindex(columns=keep)


def reproduction_tables(config, out: Path, options=None) -> ReproductionTables:
    """Analyse a finished study and condense it into the tables the claims are computed from.

    Parameters
    ----------
    config : StudyConfig
    out : Path
        The study folder (``out/store``, ``out/alignment``).
    options : AnalysisOptions, optional
        Default: ``max_samples = 2000`` (the embedding-level analyses and the calibration of
        measures whose null recomputes every pair subsample larger datasets; the main metric is
        then calibrated on all samples by its cheap relabelling null).
    """
    from matteralign.analysis.study import AnalysisOptions, analyse_study

    options = options or AnalysisOptions(max_samples=2000)
    analysis = analyse_study(config, out, options)
    full = _full_calibration(analysis, config, out)
    pairs = _pair_rows(analysis, full)
    dims = analysis.dimensions
    dims = dims.assign(n=[len(analysis.datasets[d].ids) for d in dims.dataset])
    comp = analysis.composition_pairs
    comp_cols = ["dataset", "model_a", "model_b", "metric", "controlled",
                 "controlled_calibrated", "controlled_p_fdr"]
    return ReproductionTables(
        models=_model_table([m.id for m in config.models]),
        pairs=pairs,
        energy=analysis.energy.reindex(columns=["dataset", "model", "mae", "mae_ci_low",
                                                "mae_ci_high", "n"]),
        composition=comp.reindex(columns=comp_cols),
        in_out=_in_out(analysis, config),
        dimensions=dims.reindex(columns=["dataset", "model", "method", "value", "n"]),
    )


# --- the claims, from the tables alone ---------------------------------------------------------


def pair_kind(a: str, b: str, models: pd.DataFrame) -> str:
    """``"random"`` when either model is a random baseline, ``"baseline"`` for another baseline
    (a descriptor), else ``"within"`` (both read the same modality) or ``"cross"``."""
    from matteralign.analysis.families import is_random_baseline

    info = models.set_index("model")
    if any(is_random_baseline(m, info.family.get(m)) for m in (a, b)):
        return "random"
    if "baseline" in (info.family.get(a), info.family.get(b)):
        return "baseline"
    return "within" if info.input.get(a) == info.input.get(b) else "cross"


def pair_matrix(pairs: pd.DataFrame, column: str, symmetric: bool = True) -> pd.DataFrame:
    """(M, M) matrix of one dataset and metric from its pair rows (diagonal 1 for similarities
    is not needed by the claims and left NaN); a symmetric measure fills both orders."""
    models = sorted(set(pairs.model_a) | set(pairs.model_b))
    mat = pd.DataFrame(np.nan, index=models, columns=models)
    for r in pairs.itertuples():
        mat.loc[r.model_a, r.model_b] = getattr(r, column)
        if symmetric:
            mat.loc[r.model_b, r.model_a] = getattr(r, column)
    return mat


def unordered_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per unordered model pair: a directed measure's two orders (CKNNA's estimator and
    information imbalance differ slightly between them) averaged for raw and calibrated, the
    larger of their FDR-adjusted p-values kept (significant only if both orders are)."""
    if pairs.empty:
        return pairs
    first = np.where(pairs.model_a.to_numpy() <= pairs.model_b.to_numpy(), pairs.model_a,
                     pairs.model_b)
    second = np.where(pairs.model_a.to_numpy() <= pairs.model_b.to_numpy(), pairs.model_b,
                      pairs.model_a)
    keyed = pairs.assign(model_a=first, model_b=second)
    return keyed.groupby(["dataset", "metric", "model_a", "model_b"], as_index=False,
                         sort=False).agg(n=("n", "first"), raw=("raw", "mean"),
                                         calibrated=("calibrated", "mean"),
                                         p_fdr=("p_fdr", "max"))


def claim_modalities(tables: ReproductionTables, metric: str = "cknna-k25") -> pd.DataFrame:
    """Within-modality > cross-modality > random, per dataset.

    Returns
    -------
    DataFrame
        One row per dataset: n, n_models, and for each pair kind (within, cross, random) the
        number of pairs, the median calibrated and raw score; the share of all pairs significant
        at a 5 % false-discovery rate (BH per matrix); ``agrees`` = each present kind's median
        calibrated score exceeds the next one's (within > cross > random).
    """
    recs = []
    pairs = unordered_pairs(tables.pairs[tables.pairs.metric == metric])
    for dataset, grp in pairs.groupby("dataset", sort=False):
        kinds = [pair_kind(a, b, tables.models) for a, b in zip(grp.model_a, grp.model_b,
                                                                 strict=True)]
        grp = grp.assign(kind=kinds)
        rec = {"dataset": dataset, "n": int(grp.n.iloc[0]),
               "n_models": len(set(grp.model_a) | set(grp.model_b)),
               "share_fdr_05": float((grp.p_fdr < 0.05).mean())}
        order = []
        for kind in ("within", "cross", "random"):
            sel = grp[grp.kind == kind]
            rec[f"{kind}_pairs"] = len(sel)
            rec[f"{kind}_calibrated"] = float(sel.calibrated.median()) if len(sel) else np.nan
            rec[f"{kind}_raw"] = float(sel.raw.median()) if len(sel) else np.nan
            if len(sel):
                order.append(rec[f"{kind}_calibrated"])
        rec["agrees"] = bool(len(order) >= 2 and all(x > y for x, y in zip(order, order[1:],
                                                                           strict=False)))
        recs.append(rec)
    return pd.DataFrame(recs)


def claim_convergence(tables: ReproductionTables, n_bootstrap: int = 2000,
                      seed: int = 0) -> pd.DataFrame:
    """Alignment to the lowest-error potential against the energy error, per labelled dataset.

    For every dataset with energy errors and every similarity measure: the raw and calibrated
    scores, and for the main metric the scores with composition projected out (raw and
    calibrated). :func:`~matteralign.analysis.convergence.convergence` gives the reference
    (lowest MAE) and Spearman's rho over the other models with a percentile interval from
    resampling models (``n_bootstrap``); the paper's claim is rho < 0.
    """
    from matteralign.analysis.convergence import convergence
    from matteralign.metrics import get_metric

    recs = []
    for dataset, energy in tables.energy.groupby("dataset", sort=False):
        mae = energy.set_index("model").mae
        here = tables.pairs[tables.pairs.dataset == dataset]
        comp = tables.composition[tables.composition.dataset == dataset]
        variants = []
        for metric, grp in here.groupby("metric", sort=False):
            spec = get_metric(metric)
            if not spec.higher_is_more_similar:
                continue
            variants.append((metric, "raw", pair_matrix(grp, "raw", spec.symmetric)))
            if grp.calibrated.notna().any():
                variants.append((metric, "calibrated",
                                 pair_matrix(grp, "calibrated", spec.symmetric)))
            for column, label in (("controlled", "composition projected out, raw"),
                                  ("controlled_calibrated",
                                   "composition projected out, calibrated")):
                sub = comp[comp.metric == metric]
                if len(sub):
                    variants.append((metric, label, pair_matrix(sub, column, spec.symmetric)))
        for metric, scores, mat in variants:
            res = convergence(mae, mat, metric, n_bootstrap=n_bootstrap, seed=seed)
            rho = next((c for c in res.correlations if c.method == "spearman"), None)
            recs.append({"dataset": dataset, "metric": metric, "scores": scores,
                         "reference": res.reference, "n_models": len(res.table),
                         "mae_reference": float(mae[res.reference]),
                         "rho": rho.value if rho else np.nan,
                         "ci_low": rho.ci_low if rho else np.nan,
                         "ci_high": rho.ci_high if rho else np.nan,
                         "p_value": rho.p_value if rho else np.nan,
                         "agrees": bool(rho is not None and rho.ci_high < 0)})
    return pd.DataFrame(recs)


def claim_in_out(tables: ReproductionTables,
                 across: tuple[str, str] | None = None) -> pd.DataFrame:
    """The in- vs out-of-distribution comparisons, with the paper's expected direction.

    The paper (Fig. 2C): locally (CKNNA) alignment is higher in distribution; globally
    (information imbalance, calibrated so that higher = more shared information) it is higher
    out of distribution. It states no direction for intrinsic dimension. ``agrees`` when the
    model-resampled interval of the mean difference (out - in) excludes 0 on the expected side
    (None where no direction is stated). Rows: the matched comparisons of the tables, then, with
    ``across`` = (crystals, molecules), :func:`claim_across_domains`.
    """
    rows = tables.in_out[tables.in_out.reason == ""].copy()
    rows["n"] = rows["n"].astype(int).astype(str)
    if across is not None:
        rows = pd.concat([rows, claim_across_domains(tables, *across)], ignore_index=True)
    expected = {"cknna": -1, "ii": 1, "id": 0}
    sign = [expected[m.split("-")[0]] for m in rows.metric]
    rows["expected"] = ["out < in" if s < 0 else "out > in" if s > 0 else "not stated"
                        for s in sign]
    rows["agrees"] = [None if s == 0 else bool((s < 0 and hi < 0) or (s > 0 and lo > 0))
                      for s, lo, hi in zip(sign, rows.ci_low, rows.ci_high, strict=True)]
    return rows.reset_index(drop=True)


def claim_across_domains(tables: ReproductionTables, crystals: str, molecules: str,
                         metrics: Sequence[str] = ("cknna-k25", "ii-k1"), n_bootstrap: int = 1000,
                         seed: int = 0) -> pd.DataFrame:
    """Materials potentials on crystals (in distribution) and on molecules (out), the paper's
    OMat24-vs-OMol25 comparison: same models, calibrated scores, but each set at its own N.

    mean_difference = mean over the shared pairs of (calibrated out - calibrated in); interval
    from resampling models
    (:func:`~matteralign.analysis.model_bootstrap.model_bootstrap_interval`).
    """
    info = tables.models.set_index("model")
    recs = []
    for metric in metrics:
        sets = {}
        for d in (crystals, molecules):
            grp = unordered_pairs(tables.pairs[(tables.pairs.dataset == d)
                                               & (tables.pairs.metric == metric)])
            keep = [info.family.get(a) == "mlip" and info.family.get(b) == "mlip"
                    and "materials" in info.domain.get(a) and "materials" in info.domain.get(b)
                    for a, b in zip(grp.model_a, grp.model_b, strict=True)]
            sets[d] = grp[keep].set_index(["model_a", "model_b"])
        both = pd.concat([sets[crystals].calibrated, sets[molecules].calibrated], axis=1,
                         keys=["cal_in", "cal_out"], join="inner").dropna()
        if len(both) < 3:
            continue
        diff = (both.cal_out - both.cal_in).to_numpy()
        ma = both.index.get_level_values(0).to_numpy()
        mb = both.index.get_level_values(1).to_numpy()
        lo, hi = model_bootstrap_interval(ma, mb, lambda w, d=diff: w @ d / w.sum(),
                                          n_bootstrap, seed=seed)
        recs.append({"dataset_in": crystals, "dataset_out": molecules, "metric": metric,
                     "n": f"{int(sets[crystals].n.iloc[0])} / {int(sets[molecules].n.iloc[0])}",
                     "n_models": len(set(ma) | set(mb)), "n_pairs": len(both),
                     "median_in": float(both.cal_in.median()),
                     "median_out": float(both.cal_out.median()),
                     "mean_difference": float(diff.mean()), "ci_low": lo, "ci_high": hi,
                     "reason": ""})
    return pd.DataFrame(recs)


def claim_dimensions(tables: ReproductionTables,
                     analogues: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Intrinsic dimension per dataset: median and range over non-baseline models (TwoNN and
    MLE), the random baseline's, and the paper's value of the closest dataset.

    ``analogues`` maps a dataset to the paper's dataset it stands in for (QM9 is QM9; equilibrium
    crystals stand in for sAlex, non-equilibrium ones for OMat24).
    """
    from matteralign.analysis.families import is_random_baseline

    analogues = dict(analogues or {})
    info = tables.models.set_index("model")
    recs = []
    for (dataset, method), grp in tables.dimensions.groupby(["dataset", "method"], sort=False):
        family = info.family.reindex(grp.model)
        models = grp[(family != "baseline").to_numpy()]
        random = grp[[is_random_baseline(m, info.family.get(m)) for m in grp.model]]
        paper = analogues.get(dataset)
        recs.append({"dataset": dataset, "method": method, "n": int(grp.n.iloc[0]),
                     "n_models": int(models.value.notna().sum()),
                     "median": float(models.value.median()),
                     "low": float(models.value.min()), "high": float(models.value.max()),
                     "random": float(random.value.iloc[0]) if len(random) else np.nan,
                     "paper_dataset": paper or "",
                     "paper": PAPER_DIMENSIONS.get(paper, np.nan) if paper else np.nan})
    return pd.DataFrame(recs)


def claim_proteins(tables: ReproductionTables, protein: str = "pfam-domains",
                   molecules: str = "qm9", metric: str = "cknna-k25") -> pd.DataFrame:
    """Protein sequence-structure alignment against the best small-molecule cross-modality pair.

    The paper (Fig. C13): the protein case is about twice the best small-molecule one. For both
    datasets: the best and the median cross-modality pair (raw and calibrated), and the ratios
    protein / molecule of the best pairs.
    """
    recs = []
    for dataset in (protein, molecules):
        grp = unordered_pairs(tables.pairs[(tables.pairs.dataset == dataset)
                                           & (tables.pairs.metric == metric)])
        kinds = [pair_kind(a, b, tables.models) for a, b in zip(grp.model_a, grp.model_b,
                                                                 strict=True)]
        cross = grp[np.array(kinds) == "cross"]
        if cross.empty:
            continue
        best = cross.loc[cross.raw.idxmax()]
        recs.append({"dataset": dataset, "n": int(grp.n.iloc[0]), "pairs": len(cross),
                     "best_pair": f"{best.model_a} / {best.model_b}",
                     "best_raw": float(best.raw), "best_calibrated": float(cross.calibrated.max()),
                     "median_raw": float(cross.raw.median()),
                     "median_calibrated": float(cross.calibrated.median())})
    table = pd.DataFrame(recs)
    if len(table) == 2:
        p, m = table.iloc[0], table.iloc[1]
        table["ratio_best_raw"] = p.best_raw / m.best_raw
        table["ratio_best_calibrated"] = p.best_calibrated / m.best_calibrated
    return table


def claim_cknna_dcor(tables: ReproductionTables, local: str = "cknna-k25",
                     global_: str = "dcor-u", n_bootstrap: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """Spearman rho between CKNNA and dCor over the model pairs of each dataset.

    Pairs share models, so the interval resamples models
    (:func:`~matteralign.analysis.model_bootstrap.model_bootstrap_interval`; rho of each draw
    over the pairs repeated by their weights); the p-value is scipy's, which takes the pairs as
    independent and is therefore too small.
    """
    from scipy import stats

    recs = []
    for dataset, grp in unordered_pairs(tables.pairs).groupby("dataset", sort=False):
        a = grp[grp.metric == local].set_index(["model_a", "model_b"]).raw
        b = grp[grp.metric == global_].set_index(["model_a", "model_b"]).raw
        both = pd.concat([a, b], axis=1, keys=["x", "y"], join="inner").dropna()
        if len(both) < 3:
            continue
        ma = both.index.get_level_values(0).to_numpy()
        mb = both.index.get_level_values(1).to_numpy()
        models = set(ma) | set(mb)
        rho, p = stats.spearmanr(both.x, both.y)
        x, y = both.x.to_numpy(), both.y.to_numpy()
        lo, hi = model_bootstrap_interval(
            ma, mb, lambda w, x=x, y=y: stats.spearmanr(np.repeat(x, w), np.repeat(y, w))[0],
            n_bootstrap, seed=seed, min_pairs=3)
        recs.append({"dataset": dataset, "n_models": len(models), "pairs": len(both),
                     "rho": float(rho), "ci_low": float(lo), "ci_high": float(hi),
                     "p_value": float(p)})
    return pd.DataFrame(recs)


@dataclass
class ReproductionClaims:
    """One table per claim of the paper (``docs/reproduction.md``)."""

    modalities: pd.DataFrame
    convergence: pd.DataFrame
    in_out: pd.DataFrame
    dimensions: pd.DataFrame
    proteins: pd.DataFrame
    cknna_dcor: pd.DataFrame


def reproduction_claims(tables: ReproductionTables,
                        analogues: Mapping[str, str] | None = None,
                        across: tuple[str, str] | None = None) -> ReproductionClaims:
    """Every claim's numbers, computed from the tables alone (seeded, so repeatable).

    Parameters
    ----------
    analogues : mapping of dataset to the paper's dataset, optional
        For the intrinsic-dimension comparison (:func:`claim_dimensions`).
    across : (crystals dataset, molecules dataset), optional
        Materials potentials in and out of their domain (:func:`claim_across_domains`).
    """
    return ReproductionClaims(
        modalities=claim_modalities(tables),
        convergence=claim_convergence(tables),
        in_out=claim_in_out(tables, across),
        dimensions=claim_dimensions(tables, analogues),
        proteins=claim_proteins(tables),
        cknna_dcor=claim_cknna_dcor(tables),
    )
