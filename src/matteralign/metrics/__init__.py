"""Alignment metrics between embeddings of the same samples, and an all-pairs engine.

Pure functions on (N, D) arrays; :func:`pairwise` scores M models reusing per-model work.
"""

from __future__ import annotations

from ._checks import EmbeddingError
from .cka import cka
from .cknna import cknna
from .classical import linear_reconstruction, procrustes, rsa, svcca
from .dcor import distance_correlation
from .engine import AlignmentResult, pairwise
from .idcor import IdCorResult, id_correlation
from .information_imbalance import information_imbalance
from .intrinsic_dimension import intrinsic_dimension
from .knn import mutual_knn
from .neighbours import NeighbourGraph, nearest_neighbours
from .preprocess import apply_preprocessing, clamp_outliers, l2_normalise, max_abs_normalise
from .registry import MetricSpec, get_metric, list_metrics
from .statistics import bootstrap_ci, permutation_null

__all__ = [
    "AlignmentResult",
    "EmbeddingError",
    "IdCorResult",
    "MetricSpec",
    "NeighbourGraph",
    "apply_preprocessing",
    "bootstrap_ci",
    "cka",
    "clamp_outliers",
    "cknna",
    "distance_correlation",
    "get_metric",
    "id_correlation",
    "information_imbalance",
    "intrinsic_dimension",
    "l2_normalise",
    "linear_reconstruction",
    "list_metrics",
    "max_abs_normalise",
    "mutual_knn",
    "nearest_neighbours",
    "pairwise",
    "permutation_null",
    "procrustes",
    "rsa",
    "svcca",
]
