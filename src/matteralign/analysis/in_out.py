"""In or out of distribution per (model, dataset), and the in-versus-out comparison on matched sets.

A dataset is not out of distribution for every model: a SMILES model reads the same SMILES for a
rattled molecule as for the relaxed one. The label therefore comes from the model (its training
domain, what it reads) and the dataset, and the comparison pairs an in-distribution and an
out-of-distribution dataset of one domain on the same models at the same N, baselines excluded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from matteralign.analysis.model_bootstrap import model_bootstrap_interval

__all__ = ["DUPLICATE_LIMIT", "distribution_label", "duplicate_fraction", "matched_in_out"]

#: Share of rows with an exact duplicate above which a model is taken not to see a dataset's
#: perturbation (its input is unchanged between the perturbed copies of one sample).
DUPLICATE_LIMIT = 0.9


def duplicate_fraction(x: np.ndarray) -> float:
    """Share of the rows of ``x`` (N, D) that equal another row exactly."""
    _, inverse, counts = np.unique(np.asarray(x), axis=0, return_inverse=True,
                                   return_counts=True)
    return float(np.mean(counts[inverse.ravel()] > 1))


def distribution_label(model: str, dataset: str, x: np.ndarray) -> tuple[str, str]:
    """Whether ``dataset`` is in or out of ``model``'s distribution, and why.

    Rules, in order:

    1. the card's family is ``baseline`` (descriptors, random): ``"baseline"``;
    2. the dataset's domain is not among the card's training domains: ``"out"``;
    3. the dataset is built to be out of distribution (``DatasetSpec.out_of_distribution``):
       ``"in"`` when at least :data:`DUPLICATE_LIMIT` of the model's embeddings have an exact
       duplicate (the model reads the same input for the perturbed copies, e.g. SMILES of rattled
       molecules), else ``"out"``;
    4. otherwise ``"in"``.

    A model without a card, or a dataset without a spec, is ``"unknown"``.

    Parameters
    ----------
    model, dataset : str
    x : (N, D) array
        The model's embeddings of the dataset.

    Returns
    -------
    label : {"in", "out", "baseline", "unknown"}
    reason : str
    """
    from matteralign.data.registry import get_dataset_spec
    from matteralign.errors import DatasetError, ModelNotFoundError
    from matteralign.models.registry import get_card

    try:
        card = get_card(model)
        spec = get_dataset_spec(dataset)
    except (ModelNotFoundError, DatasetError) as error:
        return "unknown", str(error)
    if card.family == "baseline":
        return "baseline", "a baseline has no training distribution"
    if spec.domain is not None and spec.domain not in card.domain:
        return "out", f"trained on {', '.join(card.domain)}, dataset of {spec.domain}"
    if spec.out_of_distribution:
        dup = duplicate_fraction(x)
        if dup >= DUPLICATE_LIMIT:
            return "in", (f"{dup:.0%} of its embeddings are duplicates: its {card.input} input "
                          "is the same for the perturbed copies")
        return "out", "dataset built outside the usual training data"
    return "in", f"trained on {', '.join(card.domain)}"


def subsample_models(x: Mapping[str, np.ndarray], n: int, seed: int) -> dict[str, np.ndarray]:
    """The same ``n`` seeded rows (sorted, without replacement) of every model's (N, D) array;
    all of them when ``n`` is N. The rows :func:`matched_in_out` scores on a subsampled set."""
    size = next(iter(x.values())).shape[0]
    if size == n:
        return dict(x)
    rows = np.sort(np.random.default_rng(seed).choice(size, n, replace=False))
    return {m: v[rows] for m, v in x.items()}


def matched_in_out(
    datasets: Mapping[str, Mapping[str, np.ndarray]],
    labels: pd.DataFrame,
    metric: str,
    n_permutations: int = 1000,
    n_bootstrap: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    preprocessing: Sequence[str] = (),
    min_models: int = 3,
) -> pd.DataFrame:
    """In- versus out-of-distribution alignment on matched sets.

    For every out-of-distribution dataset and every in-distribution dataset of the same domain:
    the models labelled ``"in"`` on the first and ``"out"`` on the second (baselines and unknowns
    excluded), both datasets subsampled without replacement to the smaller N, every pair scored
    and calibrated (:func:`~matteralign.metrics.calibration.calibrated_scores`) on each. The
    difference of calibrated scores d_ab = c_ab(out) - c_ab(in) is averaged over pairs; its
    interval resamples models (not pairs, which share models): each draw takes M models with
    replacement and weights pair (a, b) by the product of the two models' multiplicities
    (:func:`~matteralign.analysis.model_bootstrap.model_bootstrap_interval`).

    Parameters
    ----------
    datasets : mapping of dataset name to {model id: (N_d, D) array}
    labels : DataFrame
        dataset, model, label (:func:`distribution_label`); datasets count as out of distribution
        where any of their models is labelled ``"out"``.
    metric : str
        The study's id; one that leaves k unset gets k from the matched N
        (:func:`~matteralign.analysis.significance.scored_metric`).

    Returns
    -------
    DataFrame
        One row per (in dataset, out dataset): dataset_in, dataset_out, n (samples of each),
        n_models, n_pairs, metric, median_in, median_out (calibrated), mean_difference,
        ci_low, ci_high, raw_median_in, raw_median_out, k_over_n; or a reason where no matched
        comparison could be made.
    """
    from matteralign.analysis.significance import scored_metric
    from matteralign.data.registry import get_dataset_spec
    from matteralign.errors import DatasetError
    from matteralign.metrics.calibration import calibrated_scores

    by = {d: g.set_index("model").label for d, g in labels.groupby("dataset")}

    def domain(d: str) -> str | None:
        try:
            return get_dataset_spec(d).domain
        except DatasetError:
            return None

    outs = [d for d in datasets if d in by and (by[d] == "out").any()]
    ins = [d for d in datasets if d in by and not (by[d] == "out").any() and (by[d] == "in").any()]
    recs = []
    for d_out in outs:
        for d_in in ins:
            if domain(d_in) != domain(d_out):
                continue
            models = [m for m in datasets[d_out] if m in datasets[d_in]
                      and by[d_out].get(m) == "out" and by[d_in].get(m) == "in"]
            base = {"dataset_in": d_in, "dataset_out": d_out, "metric": metric,
                    "n_models": len(models)}
            if len(models) < min_models:
                recs.append({**base, "reason": f"{len(models)} model(s) in distribution on "
                                               f"{d_in} and out on {d_out}; need {min_models}"})
                continue
            n = min(next(iter(datasets[d_in].values())).shape[0],
                    next(iter(datasets[d_out].values())).shape[0])
            spec = scored_metric(metric, n)
            base["metric"] = spec.id
            if spec.k is not None and spec.k >= n:
                recs.append({**base, "n": n, "reason": f"k = {spec.k} >= N = {n}"})
                continue
            rows = {}
            for which, d in (("in", d_in), ("out", d_out)):
                sub = subsample_models({m: datasets[d][m] for m in models}, n, seed)
                res = calibrated_scores(sub, spec, n_permutations, seed,
                                        preprocessing=preprocessing, progress=False).rows
                rows[which] = res.set_index(["model_a", "model_b"])
            cal_in, cal_out = rows["in"].calibrated, rows["out"].calibrated.reindex(
                rows["in"].index)
            diff = (cal_out - cal_in).to_numpy()
            lo, hi = model_bootstrap_interval(
                rows["in"].index.get_level_values(0), rows["in"].index.get_level_values(1),
                lambda w, d=diff: w @ d / w.sum(), n_bootstrap, level, seed)
            recs.append({**base, "n": n, "n_pairs": len(diff),
                         "median_in": float(np.median(cal_in)),
                         "median_out": float(np.median(cal_out)),
                         "mean_difference": float(np.mean(diff)), "ci_low": lo, "ci_high": hi,
                         "raw_median_in": float(np.median(rows["in"].raw)),
                         "raw_median_out": float(np.median(rows["out"].raw)),
                         "k_over_n": float(spec.k) / n if spec.k is not None else float("nan"),
                         "reason": ""})
    return pd.DataFrame(recs)
