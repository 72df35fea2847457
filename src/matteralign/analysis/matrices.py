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
            raise StoreError(f"model {stored.model!r} has duplicated sample ids in {stored.dataset!r}")
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

    aligned = join_on_ids([store.load(dataset, model, layer) for model, layer in layers.items()])
    prepared = {
        model: metrics.apply_preprocessing(values, steps=list(preprocess))
        for model, values in aligned.values.items()
    }
    result = metrics.pairwise(prepared, metric, progress=progress)
    rows = result.rows.copy()
    rows.insert(0, "dataset", dataset)
    rows["layer_a"] = rows["model_a"].map(layers)
    rows["layer_b"] = rows["model_b"].map(layers)
    rows["preprocess"] = ",".join(preprocess)
    rows["n"] = len(aligned.ids)
    return result.matrix, rows, aligned
