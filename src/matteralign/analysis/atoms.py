"""Atom-level alignment: all atoms and per-element views, scored by the one scoring function.

Rows of an atom-level embedding are keyed ``"<sample id>#<atom index>:<element>"``
(:mod:`matteralign.data.atom_sample`); the views below select rows by those keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from matteralign.analysis.matrices import DatasetScores, join_on_ids, score_dataset
from matteralign.data.atom_sample import parse_atom_row_id
from matteralign.errors import StoreError
from matteralign.store.embedding_store import StoredEmbeddings

__all__ = ["atom_keys", "element_view", "per_structure_distortion", "score_atoms"]


def atom_keys(ids: Sequence[str]) -> pd.DataFrame:
    """(sample_id, atom_index, element) of each atom row id, one row per id, in order."""
    return pd.DataFrame([parse_atom_row_id(i) for i in ids],
                        columns=["sample_id", "atom_index", "element"])


def element_view(stored: StoredEmbeddings, element: str) -> StoredEmbeddings:
    """The rows of one element's atoms (the alignment of, say, the carbon environments only)."""
    keep = np.flatnonzero(atom_keys(stored.ids)["element"].to_numpy() == element)
    return replace(stored, ids=[stored.ids[i] for i in keep], values=stored.values[keep],
                   energy=None)


def score_atoms(
    stored: Sequence[StoredEmbeddings],
    dataset: str,
    metrics: Sequence[str],
    preprocess: Sequence[str] = ("l2",),
    device: Any = "cpu",
    elements: Sequence[str] | None = None,
    skipped: Sequence[tuple[str, str]] = (),
) -> dict[str, DatasetScores]:
    """Scores of all atoms and of each element's atoms, each by
    :func:`~matteralign.analysis.matrices.score_dataset` (same joining, dropping and skipping
    rules as structures).

    Parameters
    ----------
    stored : sequence of StoredEmbeddings
        Atom-level embeddings of one layer per model (dataset ``"<name>@atoms"``).
    dataset : str
        Label of the scores; an element view is labelled ``"<dataset>[<element>]"``.
    metrics, preprocess, device
        As for :func:`~matteralign.analysis.matrices.score_dataset`.
    elements : sequence of str, optional
        Elements to view; default every element among the atoms all models embedded. An element
        with too few atoms for a metric has that metric listed in its ``skipped``.
    skipped : sequence of (str, str)
        Reasons found while loading, carried into the ``"all"`` scores.

    Returns
    -------
    dict
        ``"all"`` and each element symbol -> :class:`DatasetScores`.
    """
    out = {"all": score_dataset(stored, dataset, metrics, preprocess, device, skipped=skipped)}
    present = [s for s in stored if len(s.ids)]
    if elements is None:
        try:
            shared = join_on_ids(present).ids if len(present) > 1 else []
        except StoreError:  # no shared atoms: "all" records why
            shared = []
        elements = sorted(set(atom_keys(shared)["element"])) if shared else []
    for element in elements:
        views = [element_view(s, element) for s in stored]
        out[element] = score_dataset(views, f"{dataset}[{element}]", metrics, preprocess, device)
    return out


def per_structure_distortion(
    x: StoredEmbeddings, y: StoredEmbeddings, k: int = 64
) -> pd.Series:
    """Anchor distortion of each structure between two models: mean δ over its atoms.

    Joins the two models on their shared atoms, chooses k joint FPS anchors among them and
    returns :func:`~matteralign.metrics.anchors.pointwise_anchor_distortion` grouped by sample
    id (label-free flags of structures one model sees differently, after Li & Walsh).

    Returns
    -------
    Series indexed by sample id, in order of first appearance.
    """
    from matteralign.metrics.anchors import pointwise_anchor_distortion

    aligned = join_on_ids([x, y])
    groups = atom_keys(aligned.ids)["sample_id"].to_numpy()
    values = pointwise_anchor_distortion(aligned.values[x.model], aligned.values[y.model], k,
                                         groups=groups)
    order = pd.unique(groups)
    return pd.Series(values, index=pd.Index(order, name="sample_id"),
                     name=f"anchordist-k{k}:{x.model}|{y.model}")
