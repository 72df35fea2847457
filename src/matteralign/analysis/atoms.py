"""Atom-level alignment: all atoms and per-element views, scored by the one scoring function.

Rows of an atom-level embedding are keyed ``"<sample id>#<atom index>:<element>"``
(:mod:`matteralign.data.atom_sample`); the views below select rows by those keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matteralign.analysis.embedding_map import project_2d
from matteralign.analysis.matrices import (
    SCORES_INDEX,
    DatasetScores,
    join_on_ids,
    read_dataset_scores,
    score_dataset,
)
from matteralign.data.atom_sample import parse_atom_row_id
from matteralign.errors import StoreError
from matteralign.store.embedding_store import StoredEmbeddings

__all__ = [
    "AtomMap",
    "atom_keys",
    "atom_map",
    "element_scores",
    "element_view",
    "per_structure_distortion",
    "score_atoms",
]


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


def element_scores(out: Path, dataset: str) -> pd.DataFrame:
    """Every pairwise score ``align`` wrote for the atoms of ``dataset`` and each element's atoms.

    Reads ``alignment/<dataset>/`` and ``alignment/<dataset>[<element>]/`` (written by
    :func:`score_atoms` through ``align``); nothing is recomputed.

    Parameters
    ----------
    out : Path
        The study folder.
    dataset : str
        An atom-level dataset, ``"<name>@atoms"``.

    Returns
    -------
    DataFrame
        One row per view, metric and ordered pair a != b: ``element`` (``"all"`` for every atom),
        ``n`` (atoms scored), ``metric``, ``model_a``, ``model_b``, ``score`` (matrix cell
        (a, b): a -> b for a directed metric). Empty when align wrote no view.
    """
    root = Path(out) / "alignment"
    views = {"all": dataset}
    for index in sorted(root.glob(f"{_glob_escape(dataset)}[[]*]/{SCORES_INDEX}")):
        label = index.parent.name
        views[label[len(dataset) + 1: -1]] = label
    rows = []
    for element, label in views.items():
        scores = read_dataset_scores(out, label)
        if scores is None:
            continue
        for metric, matrix in scores.matrices.items():
            for a in matrix.index:
                for b in matrix.columns:
                    if a != b:
                        rows.append((element, scores.n, metric, a, b, float(matrix.loc[a, b])))
    return pd.DataFrame(rows, columns=["element", "n", "metric", "model_a", "model_b", "score"])


def element_grid(table: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.Series]:
    """``metric``'s per-element scores as a grid: model pairs (rows) by atom views (columns).

    A symmetric metric gives each unordered pair once ("a · b"), a directed one each ordered
    pair ("a → b"); columns are "all" and then every element of ``table`` (NaN where ``metric``
    has no score).

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`element_scores`.

    Returns
    -------
    grid : DataFrame
        (pairs, views) scores.
    counts : Series
        Atoms scored in each view (N), indexed like the grid's columns.
    """
    from matteralign.metrics import get_metric

    rows = table[table.metric == metric]
    if get_metric(metric).symmetric:
        rows = rows[rows.model_a.astype(str) < rows.model_b.astype(str)]
        arrow = " · "
    else:
        arrow = " → "
    rows = rows.assign(pair=rows.model_a.astype(str) + arrow + rows.model_b.astype(str))
    elements = ["all", *sorted(e for e in table.element.unique() if e != "all")]
    grid = rows.pivot(index="pair", columns="element", values="score").reindex(columns=elements)
    counts = rows.drop_duplicates("element").set_index("element").n.reindex(elements)
    return grid, counts


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "[]*?" else c for c in text)


@dataclass
class AtomMap:
    """Atoms of several models on one 2D map of their shared anchor space (after Li & Walsh).

    Attributes
    ----------
    points : DataFrame
        One row per model and atom: ``model``, ``sample_id``, ``atom_index``, ``element``,
        ``x``, ``y``.
    anchors : list of str
        Row ids of the K anchor atoms.
    explained : (2,) array
        Share of the variance of the stacked anchored rows along each map axis.
    """

    points: pd.DataFrame
    anchors: list[str]
    explained: np.ndarray


def atom_map(stored: Sequence[StoredEmbeddings], k: int = 64, max_atoms: int = 2000,
             seed: int = 0) -> AtomMap:
    """Each model's atoms as cosine similarities to K shared anchor atoms, on one PCA map.

    The models are joined on the atoms they all embedded (at most ``max_atoms``, a seeded
    subsample); K joint FPS anchors are chosen among them
    (:func:`~matteralign.metrics.anchors.joint_anchors`, K = min(k, distinct atoms)); every
    model's atoms become z_i = [cos(e_i, e_{a_1}), ..., cos(e_i, e_{a_K})] in its own space
    (:func:`~matteralign.metrics.anchors.relative_representations`), and one PCA of all models'
    z rows stacked ((M·N, K)) gives shared axes, so the same atom lies at the same place when two
    models agree up to rotation and scale.

    Parameters
    ----------
    stored : sequence of StoredEmbeddings
        Atom-level embeddings of one layer per model, at least two models.
    k : int
    max_atoms : int
    seed : int

    Returns
    -------
    AtomMap
    """
    from matteralign.metrics.anchors import relative_representations

    aligned = join_on_ids([s for s in stored if len(s.ids)])
    ids = aligned.ids
    keep = np.arange(len(ids))
    if len(ids) > max_atoms:
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), max_atoms, replace=False))
    values = {model: np.asarray(v, dtype=np.float64)[keep] for model, v in aligned.values.items()}
    distinct = len(np.unique(np.hstack(list(values.values())), axis=0))
    reps, anchors = relative_representations(values, min(k, distinct))
    stacked = np.vstack(list(reps.values()))
    coords, _ = project_2d(stacked, "pca")
    centred = stacked - stacked.mean(0)
    explained = coords.var(0) / centred.var(0).sum()
    keys = atom_keys([ids[i] for i in keep])
    points = pd.concat([keys.assign(model=model) for model in reps], ignore_index=True)
    points["x"], points["y"] = coords[:, 0], coords[:, 1]
    return AtomMap(points[["model", "sample_id", "atom_index", "element", "x", "y"]],
                   [ids[keep[i]] for i in anchors], explained)
