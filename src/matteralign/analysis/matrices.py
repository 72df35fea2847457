"""Alignment matrices of stored embeddings: join models on sample ids, then score all pairs.

Models embed different subsets when samples fail; scores use only the ids every model has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matteralign.errors import StoreError
from matteralign.store.embedding_store import EmbeddingStore, StoredEmbeddings


@dataclass
class AlignedEmbeddings:
    """Embeddings of several models restricted to the sample ids they all share.

    Attributes
    ----------
    ids : list of str
        Shared ids, in the first model's order (N of them).
    values : dict of str to (N, D_m) array
        Each model's rows for ``ids``.
    dropped : dict of str to int
        For each model, how many of its embedded samples were left out because another model
        lacks them.
    """

    ids: list[str]
    values: dict[str, np.ndarray]
    dropped: dict[str, int]


def join_on_ids(embeddings: Sequence[StoredEmbeddings]) -> AlignedEmbeddings:
    """Restrict every model's embeddings to the ids all of them have, in a common order.

    Raises
    ------
    StoreError
        If a model has duplicated ids, or the models share no ids at all.
    """
    if not embeddings:
        raise StoreError("no embeddings to join")
    for stored in embeddings:
        if len(set(stored.ids)) != len(stored.ids):
            raise StoreError(
                f"model {stored.model!r} has duplicated sample ids in {stored.dataset!r}")
    shared = set(embeddings[0].ids)
    for stored in embeddings[1:]:
        shared &= set(stored.ids)
    ids = [sample_id for sample_id in embeddings[0].ids if sample_id in shared]
    if not ids:
        raise StoreError(
            "the models share no embedded sample ids on dataset "
            f"{embeddings[0].dataset!r}; check their failures with `matteralign status`"
        )
    values = {}
    dropped = {}
    for stored in embeddings:
        position = {sample_id: row for row, sample_id in enumerate(stored.ids)}
        rows = np.fromiter((position[i] for i in ids), dtype=np.int64, count=len(ids))
        values[stored.model] = stored.values[rows]
        dropped[stored.model] = len(stored.ids) - len(ids)
    return AlignedEmbeddings(ids, values, dropped)


def degenerate_reason(values: np.ndarray) -> str | None:
    """Why an embedding cannot be scored at all, or None.

    Parameters
    ----------
    values : (N, D) array
        One model's embeddings (after preprocessing).

    Returns
    -------
    str or None
        Set when an entry is NaN or inf, or when all N rows are the same vector (a constant
        embedding: neighbours are then ties broken by position, and any score is noise).
    """
    values = np.asarray(values)
    if not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
        return f"{bad.size} of its {len(values)} rows hold NaN or inf"
    if len(values) > 1:
        spread = float(np.max(np.ptp(values, axis=0))) if values.shape[1] else 0.0
        scale = float(np.max(np.abs(values))) if values.size else 0.0
        if spread <= 1e-12 * max(scale, 1.0):
            return f"all {len(values)} rows are the same vector (a constant embedding)"
    return None


def prepare_for_scoring(
    aligned: AlignedEmbeddings, preprocess: Sequence[str] = ("l2",)
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Preprocess each model's aligned embeddings and set aside those that cannot be scored.

    Returns
    -------
    prepared : dict of str to (N, D_m) float64 array
    unusable : dict of str to str
        Model id → reason (preprocessing failed, NaN/inf, or a constant embedding).
    """
    from matteralign import metrics

    prepared: dict[str, np.ndarray] = {}
    unusable: dict[str, str] = {}
    for model, values in aligned.values.items():
        reason = degenerate_reason(values)
        if reason:
            unusable[model] = reason
            continue
        try:
            ready = metrics.apply_preprocessing(values, steps=list(preprocess))
        except metrics.EmbeddingError as error:
            unusable[model] = f"preprocessing {','.join(preprocess)} failed: {error}"
            continue
        reason = degenerate_reason(ready)
        if reason:
            unusable[model] = reason
        else:
            prepared[model] = ready
    return prepared, unusable


def score_prepared(
    prepared: Mapping[str, np.ndarray],
    dataset: str,
    layers: Mapping[str, str],
    metric: str,
    preprocess: Sequence[str] = ("l2",),
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every pair of already preprocessed embeddings of the same N samples.

    Returns the matrix and long-form rows of :func:`align_store`.

    Raises
    ------
    matteralign.metrics.EmbeddingError
        If the metric cannot score them (for example N <= k for a kNN metric).
    """
    from matteralign import metrics

    result = metrics.pairwise(dict(prepared), metric, progress=progress)
    rows = result.rows.copy()
    rows.insert(0, "dataset", dataset)
    rows["layer_a"] = rows["model_a"].map(layers)
    rows["layer_b"] = rows["model_b"].map(layers)
    rows["preprocess"] = ",".join(preprocess)
    rows["n"] = len(next(iter(prepared.values())))
    return result.matrix, rows


def align_store(
    store: EmbeddingStore,
    dataset: str,
    layers: Mapping[str, str],
    metric: str,
    preprocess: Sequence[str] = ("l2",),
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, AlignedEmbeddings]:
    """Score every pair of models on one dataset with one metric.

    Parameters
    ----------
    store : EmbeddingStore
    dataset : str
    layers : mapping of model id to layer name
        Which stored layer of each model to compare.
    metric : str
        A registered metric id, e.g. ``"cknna-k25"``.
    preprocess : sequence of str
        Preprocessing steps applied to each model's embeddings in order (see
        :func:`matteralign.metrics.apply_preprocessing`).

    Returns
    -------
    matrix : (M, M) DataFrame
        Scores labelled by model id; row a, column b holds score(a → b).
    rows : DataFrame
        Long form: dataset, model_a, model_b, layer_a, layer_b, metric, preprocess, n, value.
    aligned : AlignedEmbeddings
    """
    from matteralign import metrics

    aligned = join_on_ids([store.load_finished(dataset, model, layer)
                           for model, layer in layers.items()])
    prepared = {
        model: metrics.apply_preprocessing(values, steps=list(preprocess))
        for model, values in aligned.values.items()
    }
    matrix, rows = score_prepared(prepared, dataset, layers, metric, preprocess, progress)
    return matrix, rows, aligned
