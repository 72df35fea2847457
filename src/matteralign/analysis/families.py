"""Model families and condensed (block-averaged) alignment matrices, with a clustered order.

Families come from the model cards: ``architecture_family`` (MACE, CHGNet, ESM, ...) or, coarser,
``family`` (mlip, string, protein-sequence, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "architecture_family",
    "cluster_order",
    "condense_matrix",
    "is_random_baseline",
    "model_families",
]


def architecture_family(model_id: str) -> str:
    """The architecture family of a model: its card's ``architecture_family``.

    A model without a card, or whose card does not say, falls back to the first dash-separated
    token of its id (``"random-gaussian-64"`` is ``"random"``).

    Examples
    --------
    >>> architecture_family("mace-mp-0-small"), architecture_family("so3lr")
    ('mace', 'so3krates')
    >>> architecture_family("my-own-model")
    'my'
    """
    from matteralign.errors import ModelNotFoundError
    from matteralign.models.registry import get_card

    try:
        family = get_card(model_id).architecture_family
    except ModelNotFoundError:
        family = None
    return family or model_id.strip().lower().split("-")[0]


def is_random_baseline(model_id: str, card_family: str | None = None) -> bool:
    """True for a random baseline: an id ``random*`` whose card family (when known) is
    ``"baseline"``."""
    if card_family not in (None, "baseline", "unknown"):
        return False
    return model_id.lower().startswith("random")


def model_families(
    models: Sequence[str], level: str = "architecture", overrides: Mapping[str, str] | None = None
) -> pd.Series:
    """The family of each model, for condensing matrices and labelling heatmaps.

    Parameters
    ----------
    models : sequence of str
        Model ids.
    level : {"architecture", "card"}
        ``"architecture"``: :func:`architecture_family` (the card's ``architecture_family``);
        ``"card"``: the card's ``family`` (``mlip``, ``string``, ...), or ``"unknown"`` for ids
        without a card.
    overrides : mapping of str to str, optional
        Families that replace the derived ones for the models named.

    Returns
    -------
    Series
        Indexed by model id, in the order given.
    """
    if level not in ("architecture", "card"):
        raise ValueError(f"family level must be 'architecture' or 'card', not {level!r}")
    families = {}
    for model in models:
        if level == "architecture":
            families[model] = architecture_family(model)
        else:
            families[model] = _card_family(model)
    families.update(dict(overrides or {}))
    return pd.Series([families[m] for m in models], index=list(models), name="family")


def _card_family(model: str) -> str:
    from matteralign.errors import ModelNotFoundError
    from matteralign.models.registry import get_card

    try:
        return get_card(model).family
    except ModelNotFoundError:
        return "unknown"


def condense_matrix(
    matrix: pd.DataFrame, families: pd.Series | Mapping[str, str], include_self: bool = True
) -> pd.DataFrame:
    """Average an M x M score matrix over blocks of models of the same family (paper §4.2).

    Parameters
    ----------
    matrix : (M, M) DataFrame
        Scores labelled by model id on both axes.
    families : Series or mapping of model id to family
    include_self : bool
        Whether a diagonal block averages the models' self-scores too (the paper's choice, so a
        family of two models with cross score s gets (2 + 2 s) / 4). With False only the pairs of
        distinct models count; a one-model family then keeps its self-score.

    Returns
    -------
    (F, F) DataFrame
        Block means, families in order of first appearance; diagonal blocks are below 1 unless
        every member is identical.
    """
    families = pd.Series(dict(families)) if not isinstance(families, pd.Series) else families
    missing = [m for m in matrix.index if m not in families.index]
    if missing:
        raise KeyError(f"no family given for models {missing}")
    order = list(dict.fromkeys(families[m] for m in matrix.index))
    values = matrix.to_numpy(dtype=float)
    labels = np.array([families[m] for m in matrix.index])
    col_labels = np.array([families[m] for m in matrix.columns])
    out = np.full((len(order), len(order)), np.nan)
    for i, fa in enumerate(order):
        rows = np.flatnonzero(labels == fa)
        for j, fb in enumerate(order):
            cols = np.flatnonzero(col_labels == fb)
            block = values[np.ix_(rows, cols)]
            if fa == fb and not include_self and len(rows) > 1:
                same = matrix.index.to_numpy()[rows][:, None] == matrix.columns.to_numpy()[cols]
                block = block[~same]
            out[i, j] = np.nanmean(block) if np.isfinite(block).any() else np.nan
    return pd.DataFrame(out, index=order, columns=order)


def cluster_order(matrix: pd.DataFrame, higher_is_more_similar: bool = True) -> list[str]:
    """Order models by average-linkage clustering on 1 - score (dendrogram leaf order).

    Asymmetric matrices are symmetrised (mean of the two directions) first; for dissimilarities
    (``higher_is_more_similar=False``) the score itself is the distance.

    Returns
    -------
    list of str
        Model ids in dendrogram order.
    """
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    names = list(matrix.index)
    if len(names) < 3:
        return names
    s = matrix.loc[names, names].to_numpy(dtype=float)
    s = 0.5 * (s + s.T)
    d = (1.0 - s) if higher_is_more_similar else s.copy()
    d = np.nan_to_num(d, nan=float(np.nanmax(d)) if np.isfinite(d).any() else 1.0)
    d = np.clip(d, 0.0, None)
    np.fill_diagonal(d, 0.0)
    tree = linkage(squareform(d, checks=False), method="average")
    leaves = dendrogram(tree, no_plot=True)["leaves"]
    return [names[i] for i in leaves]
