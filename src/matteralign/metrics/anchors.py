"""Relative (anchor) representations (Moschella et al. 2023; Li & Walsh 2025) and their distortion.

Each model's samples become cosine similarities to the same K anchor samples in that model's own
space, so models of any widths share one (N, K) space; the per-sample distortion compares them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import EmbeddingError, as_embedding, check_same_samples

__all__ = [
    "anchor_distortion",
    "farthest_point_sampling",
    "joint_anchors",
    "pointwise_anchor_distortion",
    "relative_representation",
    "relative_representations",
]


def farthest_point_sampling(x: Any, k: int, start: int = 0) -> np.ndarray:
    """Greedy farthest-point sampling: k row indices, each the farthest from those chosen.

    a_1 = ``start``; a_{t+1} = argmax_i min_{s<=t} ‖x_i − x_{a_s}‖ (Euclidean; ties go to the
    lowest index). O(N k D).

    Parameters
    ----------
    x : (N, D) array
    k : int, 1 <= k <= N
    start : int
        First anchor.

    Returns
    -------
    (k,) int64 array of distinct row indices, in the order chosen.
    """
    arr = as_embedding(x, "x", min_samples=1, allow_constant=True)
    n = arr.shape[0]
    if not 1 <= k <= n:
        raise EmbeddingError(f"x: cannot choose {k} anchors among {n} samples; use 1 <= k <= {n}.")
    if not 0 <= start < n:
        raise EmbeddingError(f"x: start={start} is not a row index in [0, {n}).")
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = start
    nearest = np.einsum("ij,ij->i", arr - arr[start], arr - arr[start])
    for t in range(1, k):
        nxt = int(np.argmax(nearest))
        if nearest[nxt] == 0.0:
            raise EmbeddingError(
                f"x: only {t} distinct rows; cannot choose {k} distinct anchors.")
        chosen[t] = nxt
        diff = arr - arr[nxt]
        np.minimum(nearest, np.einsum("ij,ij->i", diff, diff), out=nearest)
    return chosen


def joint_anchors(embeddings: Mapping[str, Any], k: int, start: int = 0) -> np.ndarray:
    """Anchors chosen once for several models: FPS on their joint, equally weighted geometry.

    Each model's features are centred and scaled to unit Frobenius norm, X̃_m = X_mc / ‖X_mc‖_F,
    and FPS runs on the concatenation [X̃_1, ..., X̃_M], i.e. on
    d²(i, j) = Σ_m ‖x̃_m,i − x̃_m,j‖², so no model's width or scale dominates and the choice does
    not depend on the order of the models.

    Parameters
    ----------
    embeddings : mapping of model name -> (N, D_m) array
    k : int

    Returns
    -------
    (k,) int64 array of sample indices
    """
    if not isinstance(embeddings, Mapping) or not embeddings:
        raise EmbeddingError("embeddings must be a non-empty mapping {model name: (N, D) array}.")
    parts = []
    for name, x in embeddings.items():
        arr = as_embedding(x, str(name), min_samples=2)
        if parts and arr.shape[0] != parts[0].shape[0]:
            raise EmbeddingError(
                f"model {name!r} embeds {arr.shape[0]} samples, the first model "
                f"{parts[0].shape[0]}; every model must embed the same samples in the same order.")
        xc = arr - arr.mean(0)
        parts.append(xc / np.linalg.norm(xc))
    return farthest_point_sampling(np.hstack(parts), k, start)


def relative_representation(x: Any, anchors: Any, name: str = "x") -> np.ndarray:
    """Cosine similarity of every sample to each anchor sample, in one model's own space.

    z_i = [cos(x_i, x_{a_1}), ..., cos(x_i, x_{a_K})], cos(u, v) = u·v / (‖u‖ ‖v‖)
    (Moschella et al. 2023, as used by Li & Walsh on per-atom MLIP embeddings). Invariant to
    orthogonal transforms and isotropic scaling of x, so models of different widths map to the
    same (N, K) space when they share the anchor samples.

    Parameters
    ----------
    x : (N, D) array
    anchors : (K,) int array
        Sample (row) indices of the anchors.

    Returns
    -------
    (N, K) float64 array with entries in [-1, 1]
    """
    arr = as_embedding(x, name, min_samples=1)
    idx = np.asarray(anchors)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or (
            idx.min() < 0 or idx.max() >= arr.shape[0]):
        raise EmbeddingError(
            f"{name}: anchors must be a non-empty 1-D array of row indices in [0, {arr.shape[0]}).")
    norms = np.linalg.norm(arr, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise EmbeddingError(
            f"{name}: rows {zero[:5].tolist()} are zero vectors; their cosine similarity to the "
            "anchors is undefined. Drop them or embed them differently.")
    unit = arr / norms[:, None]
    return np.clip(unit @ unit[idx].T, -1.0, 1.0)


def relative_representations(
    embeddings: Mapping[str, Any], k: int, anchors: Any = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every model in one shared (N, K) space: cosine similarities to the same K anchor samples.

    Parameters
    ----------
    embeddings : mapping of model name -> (N, D_m) array
    k : int
        Number of anchors (ignored when ``anchors`` is given).
    anchors : (K,) int array, optional
        Default :func:`joint_anchors` (FPS on the models' joint geometry).

    Returns
    -------
    ({model name: (N, K) array}, anchors)
    """
    idx = joint_anchors(embeddings, k) if anchors is None else np.asarray(anchors)
    out = {str(name): relative_representation(x, idx, str(name)) for name, x in embeddings.items()}
    return out, idx


def pointwise_anchor_distortion(
    x: Any, y: Any, k: int = 64, anchors: Any = None, groups: Any = None
) -> np.ndarray:
    """Per-sample (or per-structure) distortion between two models in the shared anchor space.

    δ_i = ‖z^x_i − z^y_i‖ / √K with z the :func:`relative_representation` of each model to the
    same anchors (default :func:`joint_anchors` of x and y, FPS on their joint geometry): the
    RMS change of the K cosine similarities. 0 when y = c·x·Q (Q orthogonal, c > 0), whatever the
    widths; at most 2.

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    k : int
        Number of anchors, k <= N.
    anchors : (K,) int array, optional
    groups : (N,) array, optional
        Structure (or other group) label of each row, e.g. the sample id of each atom: then the
        mean δ over each group's rows is returned, groups in order of first appearance.

    Returns
    -------
    (N,) float64 array, or (n_groups,) with ``groups``
    """
    xa, ya = as_embedding(x, "x"), as_embedding(y, "y")
    check_same_samples(xa, ya)
    reps, idx = relative_representations({"x": xa, "y": ya}, k, anchors)
    delta = np.linalg.norm(reps["x"] - reps["y"], axis=1) / np.sqrt(len(idx))
    if groups is None:
        return delta
    labels = np.asarray(groups)
    if labels.shape != (xa.shape[0],):
        raise EmbeddingError(
            f"groups has shape {labels.shape}; expected one label per sample ({xa.shape[0]},).")
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=delta)
    means = sums / np.bincount(inverse)
    return means[np.argsort(first)]


def anchor_distortion(x: Any, y: Any, k: int = 64, anchors: Any = None) -> float:
    """Mean per-sample anchor distortion (1/N) Σ_i δ_i (see :func:`pointwise_anchor_distortion`).

    Symmetric (the default anchors come from x and y jointly); lower is more similar; 0 for
    models equal up to rotation and scale.
    """
    return float(np.mean(pointwise_anchor_distortion(x, y, k, anchors)))
