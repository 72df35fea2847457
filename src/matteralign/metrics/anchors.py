"""Relative (anchor) representations (Moschella et al. 2023; Li & Walsh 2025) and their distortion.

Each model's samples become cosine similarities to the same K anchor samples in that model's own
space, so models of any widths share one (N, K) space; the per-sample distortion compares them.
Anchors come from farthest-point sampling or from DIRECT sampling (Qi et al. 2024), as Li & Walsh.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from ._checks import EmbeddingError, as_embedding, check_same_samples

__all__ = [
    "ANCHOR_METHODS",
    "anchor_distortion",
    "direct_sampling",
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


AnchorMethod = Literal["fps", "direct"]
ANCHOR_METHODS: tuple[str, ...] = ("fps", "direct")


def direct_sampling(x: Any, k: int, threshold: float = 0.5, weight_pcs: bool = True
                    ) -> np.ndarray:
    """DIRECT sampling (DImensionality REduction, Clustering, sTratified; Qi et al. 2024): k rows
    that cover the feature space, one per cluster, the steps of maml's ``DIRECTSampler``.

    1. Standardise each column: x̂_ij = (x_ij − μ_j) / σ_j (population σ; constant columns stay 0).
    2. PCA of x̂; keep the m components whose variance exceeds 1 (Kaiser's rule; at least one),
       scores t_i (m columns), each multiplied by its explained-variance ratio when
       ``weight_pcs``.
    3. BIRCH (scikit-learn ``Birch(n_clusters=k, threshold=threshold)``) on t; while it finds
       fewer than k subclusters, threshold ← threshold · s / k (s the subclusters found) and refit.
       Each row's cluster is that of its nearest subcluster.
    4. In each cluster c (in increasing label order) the row nearest to the cluster's centre,
       argmin_{i ∈ c} ‖t_i − μ_c‖; as in maml, μ_c is the centre of the last BIRCH subcluster
       that the global clustering put in c (the cluster centroid when c holds one subcluster).

    Parameters
    ----------
    x : (N, D) array
    k : int, 1 <= k <= number of distinct rows
        Number of clusters, hence of rows chosen.
    threshold : float
        BIRCH's initial subcluster radius, in units of the weighted PC scores (maml's
        ``threshold_init``).
    weight_pcs : bool
        Weight the PC scores by their explained-variance ratios (maml's default).

    Returns
    -------
    (k,) int64 array of distinct row indices, one per cluster, in cluster-label order.
    Deterministic: no step draws random numbers.
    """
    from sklearn.cluster import Birch
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning

    arr = as_embedding(x, "x", min_samples=2, allow_constant=True)
    distinct = len(np.unique(arr, axis=0))
    if not 1 <= k <= distinct:
        raise EmbeddingError(f"x: cannot choose {k} DIRECT anchors among {distinct} distinct "
                             f"rows; use 1 <= k <= {distinct}.")
    sd = arr.std(axis=0)
    scaled = (arr - arr.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    pca = PCA().fit(scaled)
    m = max(int(np.sum(pca.explained_variance_ > 1)), 1)
    scores = pca.transform(scaled)[:, :m]
    if weight_pcs:
        scores = scores * pca.explained_variance_ratio_[:m]
    with warnings.catch_warnings():  # fewer subclusters than k: handled by the loop below
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Birch(n_clusters=k, threshold=threshold).fit(scores)
        while (found := len(set(model.subcluster_labels_))) < k:
            threshold = threshold / k * found
            model = Birch(n_clusters=k, threshold=threshold).fit(scores)
    labels = model.predict(scores)
    centres = dict(zip(model.subcluster_labels_, model.subcluster_centers_, strict=True))
    chosen = []
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        distance = np.linalg.norm(scores[members] - centres[label], axis=1)
        chosen.append(members[np.argmin(distance)])
    return np.asarray(chosen, dtype=np.int64)


def joint_anchors(embeddings: Mapping[str, Any], k: int, start: int = 0,
                  method: AnchorMethod = "fps") -> np.ndarray:
    """Anchors chosen once for several models, on their joint, equally weighted geometry.

    Each model's features are centred and scaled to unit Frobenius norm, X̃_m = X_mc / ‖X_mc‖_F,
    and the anchors are chosen on the concatenation [X̃_1, ..., X̃_M]: by FPS on
    d²(i, j) = Σ_m ‖x̃_m,i − x̃_m,j‖², so no model's width or scale dominates and the choice does
    not depend on the order of the models; or by :func:`direct_sampling` of the concatenation
    (which standardises every column anyway), its parts in an order fixed by their content so
    that the anchors do not depend on the order of the models either.

    Parameters
    ----------
    embeddings : mapping of model name -> (N, D_m) array
    k : int
    start : int
        First FPS anchor (FPS only).
    method : {"fps", "direct"}

    Returns
    -------
    (k,) int64 array of sample indices
    """
    if method not in ANCHOR_METHODS:
        raise EmbeddingError(f"anchor method {method!r} is unknown; choose one of "
                             f"{ANCHOR_METHODS}.")
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
    if method == "direct":
        # PCA and BIRCH give the same anchors for any column order only up to rounding, which
        # can change a cluster: the parts go in an order fixed by their content, not the mapping's
        parts.sort(key=lambda part: hashlib.sha256(part.tobytes()).hexdigest())
        return direct_sampling(np.hstack(parts), k)
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
    embeddings: Mapping[str, Any], k: int, anchors: Any = None, method: AnchorMethod = "fps"
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every model in one shared (N, K) space: cosine similarities to the same K anchor samples.

    Parameters
    ----------
    embeddings : mapping of model name -> (N, D_m) array
    k : int
        Number of anchors (ignored when ``anchors`` is given).
    anchors : (K,) int array, optional
        Default :func:`joint_anchors` (on the models' joint geometry, by ``method``).
    method : {"fps", "direct"}
        How the default anchors are chosen.

    Returns
    -------
    ({model name: (N, K) array}, anchors)
    """
    idx = (joint_anchors(embeddings, k, method=method) if anchors is None
           else np.asarray(anchors))
    out = {str(name): relative_representation(x, idx, str(name)) for name, x in embeddings.items()}
    return out, idx


def pointwise_anchor_distortion(
    x: Any, y: Any, k: int = 64, anchors: Any = None, groups: Any = None,
    method: AnchorMethod = "fps",
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
    method : {"fps", "direct"}
        How the default anchors are chosen (:func:`joint_anchors`).

    Returns
    -------
    (N,) float64 array, or (n_groups,) with ``groups``
    """
    xa, ya = as_embedding(x, "x"), as_embedding(y, "y")
    check_same_samples(xa, ya)
    reps, idx = relative_representations({"x": xa, "y": ya}, k, anchors, method)
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


def anchor_distortion(x: Any, y: Any, k: int = 64, anchors: Any = None,
                      method: AnchorMethod = "fps") -> float:
    """Mean per-sample anchor distortion (1/N) Σ_i δ_i (see :func:`pointwise_anchor_distortion`).

    Symmetric (the default anchors come from x and y jointly, by FPS or DIRECT); lower is more
    similar; 0 for models equal up to rotation and scale.
    """
    return float(np.mean(pointwise_anchor_distortion(x, y, k, anchors, method=method)))
