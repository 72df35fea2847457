"""Intrinsic dimension of each model's embedding of a dataset (TwoNN and Levina–Bickel MLE).

A model whose rows cannot be estimated (duplicated rows, tied distances) gets NaN and the reason,
naming the model; no estimate is ever inf or NaN without one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["intrinsic_dimensions"]


def intrinsic_dimensions(
    embeddings: Mapping[str, np.ndarray],
    methods: Sequence[str] = ("id-twonn", "id-mle-k50"),
    preprocessing: Sequence[str] = (),
) -> pd.DataFrame:
    """Intrinsic dimension of every model with each estimator.

    Parameters
    ----------
    embeddings : mapping of model id to (N, D) array
    methods : sequence of str
        Registry ids of per-model metrics; an MLE k above N - 1 is lowered to N - 1.
    preprocessing : sequence of str

    Returns
    -------
    DataFrame
        model, method (the id actually used), value, error ("" when estimated, else the reason,
        naming the model).
    """
    from matteralign import metrics

    recs = []
    for model, x in embeddings.items():
        n = np.asarray(x).shape[0]
        for method in methods:
            spec = metrics.get_metric(method)
            if spec.params.get("method") == "mle" and spec.params["k"] > n - 1:
                spec = metrics.get_metric(method, k=max(n - 1, 2))
            try:
                prepared = metrics.apply_preprocessing(x, list(preprocessing))
                value, error = float(spec(prepared)), ""
            except (ValueError, ArithmeticError) as err:  # EmbeddingError is a ValueError
                value, error = float("nan"), f"model {model!r}: {err}"
            if not error and not np.isfinite(value):
                value, error = float("nan"), (f"model {model!r}: {spec.id} is {value} (tied or "
                                              "degenerate distances); not an intrinsic dimension")
            recs.append({"model": model, "method": spec.id, "value": value, "error": error})
    return pd.DataFrame(recs)
