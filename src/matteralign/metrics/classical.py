"""Classical representational-similarity measures: SVCCA, RSA, orthogonal Procrustes, ridge R^2.

Each splits into a per-model state (centred basis, ranks, SVD) and a cheap per-pair product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import pdist

from ._checks import EmbeddingError, as_embedding, check_same_samples

__all__ = ["linear_reconstruction", "procrustes", "rsa", "svcca"]


def _centred(x: np.ndarray, name: str) -> np.ndarray:
    xc = x - x.mean(0, keepdims=True)
    if not np.any(xc):
        raise EmbeddingError(f"{name}: all rows are identical (no variance); the measure is undefined.")
    return xc


# --- SVCCA -----------------------------------------------------------------------------------


def svcca_basis(x: np.ndarray, variance: float = 0.99, name: str = "x") -> np.ndarray:
    """Orthonormal (N, r) basis of the top singular directions of centred x keeping ``variance``."""
    u, s, _ = np.linalg.svd(_centred(x, name), full_matrices=False)
    frac = np.cumsum(s**2) / np.sum(s**2)
    r = int(np.searchsorted(frac, variance - 1e-12) + 1)
    return u[:, :r]


def svcca_from_bases(qa: np.ndarray, qb: np.ndarray) -> float:
    """Mean canonical correlation = mean singular value of Qa' Qb (min(r_a, r_b) values)."""
    s = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return float(np.mean(np.clip(s, 0.0, 1.0)))


def svcca(x: np.ndarray, y: np.ndarray, variance: float = 0.99) -> float:
    """SVCCA (Raghu et al. 2017): CCA between the top singular subspaces.

    Centre columns; keep the top singular directions explaining ``variance`` of each space
    (ReSi's 99 % rule, not platonic-rep's fixed rank 10); the canonical correlations are the singular
    values rho_1..rho_r of Qx' Qy (Qx, Qy orthonormal bases of the reduced spaces); SVCCA = mean rho,
    r = min(r_x, r_y).

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    variance : float in (0, 1]

    Returns
    -------
    float in [0, 1]
    """
    x, y = as_embedding(x, "x"), as_embedding(y, "y")
    check_same_samples(x, y)
    return svcca_from_bases(svcca_basis(x, variance, "x"), svcca_basis(y, variance, "y"))


# --- RSA -------------------------------------------------------------------------------------


def rsa_ranks(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Centred, unit-norm average ranks of the N(N-1)/2 Euclidean distances (i < j); (P,) float64."""
    r = stats.rankdata(pdist(x))
    r -= r.mean()
    nrm = np.linalg.norm(r)
    if nrm == 0:
        raise EmbeddingError(f"{name}: all pairwise distances are equal; RSA is undefined.")
    return r / nrm


def rsa(x: np.ndarray, y: np.ndarray) -> float:
    """Representational similarity analysis: Spearman correlation of the two distance matrices.

    rho = Pearson(rank(d_x), rank(d_y)) over the N(N-1)/2 pairs i < j, d = Euclidean distance,
    average ranks for ties. Needs O(N^2) memory (one condensed rank vector per model).

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array

    Returns
    -------
    float in [-1, 1]
    """
    x, y = as_embedding(x, "x", 3), as_embedding(y, "y", 3)
    check_same_samples(x, y)
    return float(np.dot(rsa_ranks(x, "x"), rsa_ranks(y, "y")))


# --- Procrustes ------------------------------------------------------------------------------


def procrustes_state(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Centred features scaled to unit Frobenius norm."""
    xc = _centred(x, name)
    return xc / np.linalg.norm(xc)


def procrustes_from_states(a: np.ndarray, b: np.ndarray) -> float:
    """sqrt(max(0, 2 - 2 ||a' b||_*)), ||.||_* the nuclear norm."""
    nuc = float(np.sum(np.linalg.svd(a.T @ b, compute_uv=False)))
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * nuc)))


def procrustes(x: np.ndarray, y: np.ndarray) -> float:
    """Orthogonal Procrustes distance (Ding et al. 2021; netrep alpha = 1, Euclidean form).

    With X, Y centred and scaled to ||X||_F = ||Y||_F = 1 (the narrower one implicitly zero-padded):

        d(X, Y) = min_{Q orthogonal} ||X - Y Q||_F = sqrt(2 - 2 ||X' Y||_*)

    0 for identical shapes up to rotation, translation and isotropic scaling; at most 2.

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array

    Returns
    -------
    float in [0, 2]
    """
    x, y = as_embedding(x, "x"), as_embedding(y, "y")
    check_same_samples(x, y)
    return procrustes_from_states(procrustes_state(x, "x"), procrustes_state(y, "y"))


# --- ridge reconstruction --------------------------------------------------------------------


@dataclass
class RidgeState:
    """Thin SVD of centred x (U, s), ridge shrinkage factors f and ||xc||_F^2."""

    u: np.ndarray
    f: np.ndarray
    xc: np.ndarray
    sq: float


def ridge_state(x: np.ndarray, alpha: float = 1e-3, name: str = "x") -> RidgeState:
    """Per-model ridge terms: lambda = alpha ||Xc||_F^2 / D, f = s^2 / (s^2 + lambda)."""
    xc = _centred(x, name)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    sq = float(np.sum(xc * xc))
    lam = alpha * sq / x.shape[1]
    return RidgeState(u, s**2 / (s**2 + lam), xc, sq)


def ridge_r2(a: RidgeState, b: RidgeState) -> float:
    """R^2 of predicting b's centred features from a's: 1 - sum_i (2 f_i - f_i^2) ||U_i' Yc||^2 ..."""
    p = a.u.T @ b.xc
    explained = float(np.sum((2 * a.f - a.f**2) * np.sum(p * p, axis=1)))
    return explained / b.sq


def linear_reconstruction(x: np.ndarray, y: np.ndarray, alpha: float = 1e-3) -> float:
    """In-sample ridge R^2 of reconstructing y from x (asymmetric; swap arguments for y -> x).

    Yhat = Xc W, W = argmin ||Yc - Xc W||_F^2 + lambda ||W||_F^2, lambda = alpha ||Xc||_F^2 / D_x
    (a scale-free penalty: alpha times the mean eigenvalue of Xc'Xc). Columns are centred (intercept).

        R^2 = 1 - ||Yc - Yhat||_F^2 / ||Yc||_F^2

    Computed from the thin SVD Xc = U S V': ||Yc - Yhat||^2 = ||Yc||^2 - sum_i (2 f_i - f_i^2) ||U_i'Yc||^2,
    f_i = s_i^2 / (s_i^2 + lambda).

    Parameters
    ----------
    x : (N, D_x) array
        Predictor.
    y : (N, D_y) array
        Target.
    alpha : float
        Relative ridge penalty (> 0).

    Returns
    -------
    float in [0, 1]
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}.")
    x, y = as_embedding(x, "x"), as_embedding(y, "y")
    check_same_samples(x, y)
    return ridge_r2(ridge_state(x, alpha, "x"), ridge_state(y, alpha, "y"))


