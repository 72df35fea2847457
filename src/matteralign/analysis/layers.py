"""Layer-wise alignment: every layer of one model against every layer of another.

Summarised per model pair as the best layer pair, the last layers, and layers at matched relative
depth (layer i of L sits at depth (i + 1) / L); the best layer pair is calibrated against the null
of the maximum over layer pairs (:func:`calibrate_best_layers`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from matteralign.errors import StoreError
from matteralign.store.embedding_store import EmbeddingStore, ShardRecord

__all__ = [
    "ShardCache",
    "calibrate_best_layers",
    "layerwise_alignment",
    "load_layers",
    "summarise_layers",
]

_SEP = "\x1f"


class ShardCache(EmbeddingStore):
    """An :class:`EmbeddingStore` that keeps every shard it has read until :meth:`forget`.

    The analyses of one dataset read each shard once: the scored layer (``load_finished``) and
    every layer (:func:`load_layers`) come from the same records. Forget them before the next
    dataset, so memory holds one dataset's shards at a time.
    """

    def __init__(self, root, create: bool = True) -> None:
        super().__init__(root, create=create)
        self._records: dict[tuple[Path, bool], ShardRecord] = {}

    def read_shard(self, path: Path, verify: bool = True) -> ShardRecord:
        key = (Path(path), verify)
        if key not in self._records:
            self._records[key] = super().read_shard(path, verify)
        return self._records[key]

    def forget(self) -> None:
        self._records.clear()


def load_layers(
    store: EmbeddingStore, dataset: str, model: str, layers: Sequence[str] | None = None
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every stored layer of one model on one dataset, reading each shard once.

    Parameters
    ----------
    layers : sequence of str, optional
        Layer names in forward order (the card's); stored layers not named are appended after,
        layers named but not stored are skipped.

    Returns
    -------
    ids : list of str
    values : dict of layer name to (N, D) array, in forward order

    Raises
    ------
    StoreError
        If nothing is stored, or the shards disagree on which layers they hold.
    """
    paths = store.shard_paths(dataset, model)
    if not paths:
        raise StoreError(f"no embeddings of model {model!r} on dataset {dataset!r} in {store.root}")
    ids: list[str] = []
    parts: dict[str, list[np.ndarray]] = {}
    for path in paths:
        record = store.read_shard(path)
        if not record.ids:
            continue
        if parts and set(record.layers) != set(parts):
            raise StoreError(f"shard {path} holds layers {sorted(record.layers)}, other shards of "
                             f"{model!r} on {dataset!r} hold {sorted(parts)}; re-embed the model")
        ids.extend(record.ids)
        for name, value in record.layers.items():
            parts.setdefault(name, []).append(value)
    named = list(layers or [])
    order = [n for n in named if n in parts] + [n for n in parts if n not in named]
    return ids, {name: np.concatenate(parts[name]) for name in order}


def layerwise_alignment(
    layers: Mapping[str, Mapping[str, np.ndarray]],
    metric: str = "cknna-k25",
    preprocessing: Sequence[str] = (),
    **params: object,
) -> pd.DataFrame:
    """Score every layer of every model against every layer of every other model.

    Parameters
    ----------
    layers : mapping of model id to (mapping of layer name to (N, D) array)
        Layers in forward order; all arrays hold the same N samples in the same order.
    metric : str
        A symmetric registry metric id.
    preprocessing : sequence of str

    Returns
    -------
    DataFrame
        model_a, model_b, layer_a, layer_b, depth_a, depth_b (relative depth in (0, 1]), value;
        one row per ordered layer pair of each unordered model pair (a before b in input order).
    """
    from matteralign import metrics

    flat = {f"{m}{_SEP}{name}": x for m, ls in layers.items() for name, x in ls.items()}
    matrix = metrics.pairwise(flat, metric, preprocessing=preprocessing, progress=False,
                              **params).matrix
    models = list(layers)
    recs = []
    for i, a in enumerate(models):
        la = list(layers[a])
        for b in models[i + 1:]:
            lb = list(layers[b])
            for ia, name_a in enumerate(la):
                for ib, name_b in enumerate(lb):
                    recs.append({
                        "model_a": a, "model_b": b, "layer_a": name_a, "layer_b": name_b,
                        "depth_a": (ia + 1) / len(la), "depth_b": (ib + 1) / len(lb),
                        "value": float(matrix.loc[f"{a}{_SEP}{name_a}", f"{b}{_SEP}{name_b}"]),
                    })
    return pd.DataFrame(recs)


def calibrate_best_layers(
    layers: Mapping[str, Mapping[str, np.ndarray]],
    rows: pd.DataFrame,
    metric: str,
    n_permutations: int,
    seed: int = 0,
    alpha: float = 0.05,
    preprocessing: Sequence[str] = (),
    calibrated: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Calibrated score and p of each model pair's best layer pair, against the null of the best.

    T_ab = max_{l, l'} s(A_l, B_l') (min for a dissimilarity) is compared with
    T_ab^(r) = max_{l, l'} s(A_l, B_l'[pi_r]), one pi_r for every layer in round r
    (:func:`~matteralign.metrics.calibration.calibrated_layer_scores`), so choosing the best of
    L_a L_b layer pairs is not significant by chance. The observed scores are ``rows`` (not
    recomputed); one null pass of R rounds covers every layer of every model, and none is drawn
    when every model has a single layer and ``calibrated`` holds the pairs.

    Parameters
    ----------
    layers : mapping of model id to (mapping of layer name to (N, D) array)
        The arrays ``rows`` was scored from, in the same order.
    rows : DataFrame
        :func:`layerwise_alignment` of ``layers`` with ``metric``.
    metric : str
    n_permutations : int
        Rounds R; the smallest p is 1 / (R + 1).
    calibrated : DataFrame, optional
        The matrix's calibrated pairs of this metric on the same samples (model_a, model_b,
        calibrated, p_value, tau, n_permutations; e.g. ``StudyAnalysis.calibrated`` of the
        dataset): a pair of two single-layer models has no layer choice, so its matrix cell is
        its result (one null per pair).

    Returns
    -------
    DataFrame
        model_a, model_b, best_calibrated, best_p (layer-aware), best_p_selected (the naive p of
        the chosen pair against its own null, for comparison), best_tau, n_permutations.
    """
    from matteralign.metrics import get_metric
    from matteralign.metrics.calibration import calibrated_layer_scores

    columns = ["model_a", "model_b", "best_calibrated", "best_p", "best_p_selected", "best_tau",
               "n_permutations"]
    pairs = list(rows.groupby(["model_a", "model_b"], sort=False).groups)
    cells = {}
    if calibrated is not None:
        symmetric = get_metric(metric).symmetric
        at = {(r.model_a, r.model_b): r for r in calibrated.itertuples()}
        for a, b in pairs:
            cell = at.get((a, b)) or (at.get((b, a)) if symmetric else None)
            if cell is not None and len(layers[a]) == len(layers[b]) == 1:
                cells[(a, b)] = {"model_a": a, "model_b": b, "best_calibrated": cell.calibrated,
                                 "best_p": cell.p_value, "best_p_selected": cell.p_value,
                                 "best_tau": cell.tau, "n_permutations": cell.n_permutations}
    if len(cells) < len(pairs):
        observed = {}
        for (a, b), grp in rows.groupby(["model_a", "model_b"], sort=False):
            observed[(a, b)] = grp.pivot(index="layer_a", columns="layer_b", values="value") \
                .loc[list(layers[a]), list(layers[b])].to_numpy(dtype=float)
        table = calibrated_layer_scores(layers, metric, "max", n_permutations, seed, alpha=alpha,
                                        observed=observed, preprocessing=preprocessing)
        table = table.rename(columns={"calibrated": "best_calibrated", "p_value": "best_p",
                                      "p_selected": "best_p_selected", "tau": "best_tau"})
        for rec in table[columns].to_dict("records"):
            cells.setdefault((rec["model_a"], rec["model_b"]), rec)
    return pd.DataFrame([cells[pr] for pr in pairs], columns=columns)


def summarise_layers(rows: pd.DataFrame, higher_is_more_similar: bool = True) -> pd.DataFrame:
    """Per model pair: best layer pair, last-layer score and the matched-relative-depth score.

    Matched depth: each layer of a is paired with the layer of b nearest in relative depth (and
    each layer of b with the nearest of a); the score is the mean over both directions' pairs.
    The best layer pair is the highest score (lowest for a dissimilarity).

    Returns
    -------
    DataFrame
        model_a, model_b, best_layer_a, best_layer_b, best, last, matched_depth, n_layers_a,
        n_layers_b.
    """
    recs = []
    for (a, b), grp in rows.groupby(["model_a", "model_b"], sort=False):
        best = grp.loc[grp.value.idxmax() if higher_is_more_similar else grp.value.idxmin()]
        last = grp[(grp.depth_a == 1.0) & (grp.depth_b == 1.0)].value
        matched = []
        for side, other in (("depth_a", "depth_b"), ("depth_b", "depth_a")):
            for _, sub in grp.groupby(side):
                gap = (sub[other] - sub[side]).abs()
                matched.append(float(sub.loc[gap.idxmin(), "value"]))
        recs.append({
            "model_a": a, "model_b": b, "best_layer_a": best.layer_a,
            "best_layer_b": best.layer_b, "best": float(best.value),
            "last": float(last.iloc[0]) if len(last) else float("nan"),
            "matched_depth": float(np.mean(matched)),
            "n_layers_a": grp.layer_a.nunique(), "n_layers_b": grp.layer_b.nunique(),
        })
    return pd.DataFrame(recs)
