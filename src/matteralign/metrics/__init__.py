"""Alignment metrics between embeddings of the same samples, and an all-pairs engine.

Pure functions on (N, D) arrays; :func:`pairwise` scores M models reusing per-model work.
Measures are registered families (:func:`register_metric`); :func:`list_metrics` lists their ids.
"""

from __future__ import annotations

from . import (
    builtin_families,  # noqa: F401  (registers the built-in families)
    feature_space_families,  # noqa: F401  (registers GFRE, GFRD, LFRE, anchordist)
)
from ._checks import EmbeddingError
from .anchors import anchor_distortion, relative_representations
from .cka import cka
from .cknna import cknna
from .classical import linear_reconstruction, procrustes, rsa, svcca
from .dcor import distance_correlation
from .engine import AlignmentResult, PreparedModels, check_scorable, pairwise, prepare_models
from .idcor import IdCorResult, id_correlation
from .information_imbalance import information_imbalance
from .intrinsic_dimension import intrinsic_dimension
from .knn import mutual_knn
from .neighbours import NeighbourGraph, nearest_neighbours
from .preprocess import apply_preprocessing, clamp_outliers, l2_normalise, max_abs_normalise
from .reconstruction import gfrd, gfre, lfre
from .registry import (
    MetricFamily,
    MetricSpec,
    get_metric,
    list_families,
    list_metrics,
    register_metric,
)
from .statistics import bootstrap_ci, permutation_null

__all__ = [
    "AlignmentResult",
    "EmbeddingError",
    "IdCorResult",
    "MetricFamily",
    "MetricSpec",
    "NeighbourGraph",
    "PreparedModels",
    "anchor_distortion",
    "apply_preprocessing",
    "bootstrap_ci",
    "check_scorable",
    "cka",
    "clamp_outliers",
    "cknna",
    "distance_correlation",
    "get_metric",
    "gfrd",
    "gfre",
    "id_correlation",
    "information_imbalance",
    "intrinsic_dimension",
    "l2_normalise",
    "lfre",
    "linear_reconstruction",
    "list_families",
    "list_metrics",
    "max_abs_normalise",
    "mutual_knn",
    "nearest_neighbours",
    "pairwise",
    "permutation_null",
    "prepare_models",
    "procrustes",
    "register_metric",
    "relative_representations",
    "rsa",
    "svcca",
]
