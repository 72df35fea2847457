"""CKNNA: centred kernel alignment restricted to mutual k-nearest-neighbour pairs (Huh et al. 2024).

Computed in O(N k log) from the two neighbour lists; never forms an N x N matrix.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._checks import as_embedding, check_same_samples
from .neighbours import SortedGraph, intersect, nearest_neighbours, sorted_graph

__all__ = ["cknna"]


def hsic_unbiased_sparse(
    n: int,
    rows: np.ndarray,
    cols: np.ndarray,
    kv: np.ndarray,
    lv: np.ndarray,
    keys: np.ndarray,
) -> float:
    """Unbiased HSIC (Song et al. 2012) of two kernels supported on the same sparse set S.

    HSIC_1(K, L) = [tr(K L) + (1'K1)(1'L1) / ((N-1)(N-2)) - 2/(N-2) 1'K L 1] / (N (N-3))

    with K_ij = kv, L_ij = lv on S (diagonal zero). Both kernels are masked restrictions of
    symmetric kernels, so tr(K L) = sum over (i,j) in S with (j,i) in S of K_ij L_ij, and
    1'K L 1 = sum_j colsum(K)_j rowsum(L)_j.

    Parameters
    ----------
    n : int
        Number of samples N (>= 4).
    rows, cols, kv, lv, keys : (|S|,) arrays
        Edges of S (keys = rows * N + cols, ascending) and the two kernels' values on them.
    """
    tkeys = cols * n + rows
    pos = np.minimum(np.searchsorted(keys, tkeys), max(keys.size - 1, 0))
    both = keys[pos] == tkeys if keys.size else np.zeros(0, dtype=bool)
    tr = float(np.dot(kv[both], lv[both]))
    sk, sl = float(kv.sum()), float(lv.sum())
    colk = np.bincount(cols, weights=kv, minlength=n)
    rowl = np.bincount(rows, weights=lv, minlength=n)
    cross = float(np.dot(colk, rowl))
    return (tr + sk * sl / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)) / (n * (n - 3))


def self_hsic(g: SortedGraph) -> float:
    """HSIC_1(M_A o K, M_A o K): the per-model denominator term of CKNNA."""
    return hsic_unbiased_sparse(g.n, g.rows, g.cols, g.values, g.values, g.keys)


def cknna_from_graphs(
    a: SortedGraph, b: SortedGraph, hsic_aa: float, hsic_bb: float
) -> tuple[float, int]:
    """CKNNA from two cached inner-product graphs and their self terms.

    Returns
    -------
    value : float
        HSIC_1(M o K, M o L) / sqrt(hsic_aa * hsic_bb), NaN if the denominator is not positive.
    n_mutual : int
        Number of mutual-neighbour edges |S|.
    """
    mask, pos = intersect(a, b)
    hab = hsic_unbiased_sparse(
        a.n, a.rows[mask], a.cols[mask], a.values[mask], b.values[pos], a.keys[mask]
    )
    den = hsic_aa * hsic_bb
    if not den > 0:
        return float("nan"), int(mask.sum())
    return hab / float(np.sqrt(den)), int(mask.sum())


def cknna(
    x: np.ndarray,
    y: np.ndarray,
    k: int = 25,
    device: Any = "cpu",
    return_diagnostics: bool = False,
) -> float | tuple[float, dict[str, float]]:
    """Centred kernel nearest-neighbour alignment, as platonic-rep computes it (defects fixed).

    K = X X', L = Y Y' (linear kernels on the features as given; apply the ``"l2"`` preprocessing
    step for platonic-rep's cosine kernels). N_X(i) = the k rows j != i with the largest K_ij (self
    excluded by index, ties broken by the lowest index). M_ij = 1 iff j in N_X(i) and j in N_Y(i).

        CKNNA = HSIC_1(M o K, M o L) / sqrt(HSIC_1(M_X o K, M_X o K) * HSIC_1(M_Y o L, M_Y o L))

    with HSIC_1 the unbiased estimator of Song et al. (2012) on matrices with zeroed diagonals.
    Deviations from the reference, on purpose: no absolute 1e-6 added to the denominator (it biases
    results by ~0.7 % at N = 1e4), negative values are returned as they are (no flooring at 0), and
    ties are broken deterministically with the fraction of tied rows reported.

    Not exactly symmetric: M is not symmetric (j in both lists of i does not imply i in both lists
    of j), so the 1'(M o K)(M o L)1 term of HSIC_1 changes when x and y are swapped (typically by
    well under 1 %). The engine therefore reports matrix[a, b] = cknna(a, b) for both orders.

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    k : int
        Neighbours per sample, 1 <= k <= N - 1 (N >= 4).
    device : {"cpu", "cuda", "auto"}
    return_diagnostics : bool
        Also return ``{"tied_fraction_x", "tied_fraction_y", "n_mutual"}``.

    Returns
    -------
    float, or (float, dict)
        NaN (with a warning) when a self term is not positive, e.g. a constant embedding.
    """
    x = as_embedding(x, "x", min_samples=4)
    y = as_embedding(y, "y", min_samples=4)
    check_same_samples(x, y)
    gx = nearest_neighbours(x, k, "inner", device, name="x")
    gy = nearest_neighbours(y, k, "inner", device, name="y")
    sx, sy = sorted_graph(gx), sorted_graph(gy)
    value, n_mutual = cknna_from_graphs(sx, sy, self_hsic(sx), self_hsic(sy))
    if np.isnan(value):
        warnings.warn(
            "cknna: a self-alignment term is not positive (constant or degenerate embedding); "
            "returning NaN.",
            RuntimeWarning,
            stacklevel=2,
        )
    if return_diagnostics:
        return value, {
            "tied_fraction_x": gx.tied_fraction,
            "tied_fraction_y": gy.tied_fraction,
            "n_mutual": float(n_mutual),
        }
    return value


