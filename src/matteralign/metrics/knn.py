"""Mutual k-nearest-neighbour overlap between two embeddings of the same samples.

Neighbours come from inner products on the features as given (cosine after the ``"l2"`` step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import as_embedding, check_same_samples
from .neighbours import SortedGraph, intersect, nearest_neighbours, sorted_graph

__all__ = ["mutual_knn"]


def mutual_knn_from_graphs(a: SortedGraph, b: SortedGraph) -> float:
    """Mutual kNN from two cached graphs: (1/(N k)) sum_i |N_a(i) & N_b(i)|. O(N k log(N k))."""
    mask, _ = intersect(a, b)
    return float(mask.sum()) / (a.n * a.k)


def mutual_knn(x: np.ndarray, y: np.ndarray, k: int = 10, device: Any = "cpu") -> float:
    """Mean fraction of shared k nearest neighbours (platonic-rep's ``mutual_knn``).

    m(X, Y) = (1 / N) * sum_i |N_X(i) & N_Y(i)| / k

    N_X(i) is the set of the k rows j != i with the largest inner products x_i . x_j (self excluded
    by index; ties broken by the lowest index). Chance level is about k / (N - 1); range [0, 1].

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    k : int
        Neighbours per sample, 1 <= k <= N - 1.
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    float
    """
    x = as_embedding(x, "x")
    y = as_embedding(y, "y")
    check_same_samples(x, y)
    gx = sorted_graph(nearest_neighbours(x, k, "inner", device, name="x"))
    gy = sorted_graph(nearest_neighbours(y, k, "inner", device, name="y"))
    return mutual_knn_from_graphs(gx, gy)
