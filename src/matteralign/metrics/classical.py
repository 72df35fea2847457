"""Classical representational-similarity measures: SVCCA, RSA, orthogonal Procrustes, ridge R^2.

Each splits into a per-model state (centred basis, ranks, SVD) and a cheap per-pair product.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.spatial.distance import pdist

from ._checks import EmbeddingError, as_embedding, check_same_samples

__all__ = ["linear_reconstruction", "procrustes", "rsa", "rsa_matrix", "rsa_scratch_bytes", "svcca"]


def _centred(x: np.ndarray, name: str) -> np.ndarray:
    xc = x - x.mean(0, keepdims=True)
    if not np.any(xc):
        raise EmbeddingError(
            f"{name}: all rows are identical (no variance); the measure is undefined.")
    return xc


# --- SVCCA -----------------------------------------------------------------------------------


def svcca_basis(x: np.ndarray, variance: float = 0.99, name: str = "x") -> np.ndarray:
    """Orthonormal (N, r) basis (C-contiguous copy) of the top singular directions of centred x
    keeping ``variance`` of the total."""
    u, s, _ = np.linalg.svd(_centred(x, name), full_matrices=False)
    frac = np.cumsum(s**2) / np.sum(s**2)
    r = int(np.searchsorted(frac, variance - 1e-12) + 1)
    return np.ascontiguousarray(u[:, :r])


def svcca_from_block(c: np.ndarray) -> float:
    """SVCCA from the (r_a, r_b) block Qa' Qb: mean of its min(r_a, r_b) singular values."""
    s = np.linalg.svd(c, compute_uv=False)
    return float(np.mean(np.clip(s, 0.0, 1.0)))


def svcca_from_bases(qa: np.ndarray, qb: np.ndarray) -> float:
    """Mean canonical correlation = mean singular value of Qa' Qb (min(r_a, r_b) values)."""
    return svcca_from_block(qa.T @ qb)


def svcca(x: np.ndarray, y: np.ndarray, variance: float = 0.99) -> float:
    """SVCCA (Raghu et al. 2017): CCA between the top singular subspaces.

    Centre columns; keep the top singular directions explaining ``variance`` of each space
    (ReSi's 99 % rule, not platonic-rep's fixed rank 10); the canonical correlations are the
    singular values rho_1..rho_r of Qx' Qy (Qx, Qy orthonormal bases of the reduced spaces);
    SVCCA = mean rho, r = min(r_x, r_y).

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
    """Centred, unit-norm average ranks of the N(N-1)/2 distances (i < j); (P,) float64."""
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


def condensed_distances(x: np.ndarray, block_rows: int = 1024) -> np.ndarray:
    """Euclidean distances d(i, j), i < j, in scipy's condensed order; (N(N-1)/2,) float64.

    d^2 = |x_i|^2 + |x_j|^2 - 2 x_i . x_j by row-block GEMMs (float64), clamped at 0; the pairs
    where this cancels badly, d^2 <= 2^-20 (|x_i|^2 + |x_j|^2), are re-measured as the sum of
    squared differences, so duplicate rows get exactly 0. Equal to ``pdist(x)`` to rounding, and
    exactly for integer-valued x (no centring, which would round integers).
    """
    n = x.shape[0]
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty(n * (n - 1) // 2)
    pos = 0
    for start in range(0, n - 1, block_rows):
        stop = min(n - 1, start + block_rows)
        g = x[start:stop] @ x[start:].T  # rows i, columns j >= start
        g *= -2.0
        scale = sq[start:stop, None] + sq[None, start:]
        g += scale
        np.maximum(g, 0.0, out=g)
        ri, cj = np.nonzero(g <= 2.0**-20 * scale)
        if ri.size:
            diff = x[start + ri] - x[start + cj]
            g[ri, cj] = np.einsum("ij,ij->i", diff, diff)
        np.sqrt(g, out=g)
        for r in range(stop - start):
            row = g[r, r + 1 :]
            out[pos : pos + row.size] = row
            pos += row.size
    return out


def doubled_ranks(d: np.ndarray) -> np.ndarray:
    """Twice the average ranks (1 = smallest) of ``d``: integers, so they are stored exactly.

    A tie group at sorted positions a..b (0-based) gets 2 * mean(a+1, ..., b+1) = a + b + 2.
    dtype uint32 while 2 * len(d) < 2^32 (N <= 65,535 samples for condensed distances), else int64.
    """
    p = d.size
    dtype = np.uint32 if 2 * p < 2**32 else np.int64
    order = np.argsort(d)
    s = d[order]
    new = np.empty(p, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    del s
    starts = np.flatnonzero(new)
    del new
    counts = np.diff(starts, append=p)
    out = np.empty(p, dtype=dtype)
    out[order] = np.repeat((2 * starts + counts + 1).astype(dtype), counts)
    return out


def rsa_scratch_bytes(m: int, n: int) -> int:
    """Scratch disk used by :func:`rsa_matrix` for M models of N samples, in bytes."""
    p = n * (n - 1) // 2
    return m * p * (4 if 2 * p < 2**32 else 8)


def rsa_matrix(
    xs: Sequence[np.ndarray],
    right: Sequence[np.ndarray] | None = None,
    names: Sequence[str] | None = None,
    scratch_dir: str | None = None,
    chunk: int = 2**20,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """RSA (Spearman of condensed distances) of every model against every model, memory-bounded.

    Each model's doubled average ranks (:func:`doubled_ranks`, 4 bytes per pair i < j) are written
    to one scratch file in a temporary directory (removed afterwards); the Gram matrix of the
    centred ranks, G = sum_p (r_a(p) - (P+1)) (r_b(p) - (P+1)) (P+1 is the mean doubled rank), is
    then accumulated over ``chunk`` pairs at a time in float64, and rho_ab = G_ab / sqrt(G_aa G_bb)
    (Pearson of ranks = Spearman; the factor 2 cancels).

    Memory: scratch disk M * N(N-1)/2 * 4 bytes (60 x 10,000: 12 GB); RAM about 17 N(N-1)/2 bytes
    while one model is ranked (0.85 GB at N = 10,000) plus M * chunk * 12 bytes per chunk.

    Parameters
    ----------
    xs : M_l arrays (N, D_m)
    right : M_r arrays (N, D_m), optional
        Score xs against these (rows of the result) instead of xs against xs.
    names : model names for error messages
    scratch_dir : str, optional
        Where the temporary directory goes (default: ``tempfile``'s, i.e. $TMPDIR or /tmp).
    chunk : int
        Pairs per Gram accumulation step.
    progress : callable(int models_done), optional

    Returns
    -------
    (M_l, M_r) float64 (M_r = M_l when ``right`` is None)
    """
    models = list(xs) + list(right or [])
    names = list(names or [f"model {i}" for i in range(len(xs))])
    names += [f"{nm} (right)" for nm in names[: len(right or [])]] if right else []
    n = models[0].shape[0]
    p = n * (n - 1) // 2
    m = len(models)
    gram = np.zeros((m, m))
    need = rsa_scratch_bytes(m, n)
    parent = scratch_dir or tempfile.gettempdir()
    free = shutil.disk_usage(parent).free
    if need > free:
        raise OSError(
            f"RSA of {m} models at N={n} needs {need / 1e9:.1f} GB of scratch disk for the "
            f"distance ranks, but {parent} has {free / 1e9:.1f} GB free; point TMPDIR (or "
            "scratch_dir) at a larger disk."
        )
    with tempfile.TemporaryDirectory(prefix="matteralign-rsa-", dir=scratch_dir) as tmp:
        path = Path(tmp) / "ranks.bin"
        dtype = None
        with open(path, "wb") as fh:
            for i, x in enumerate(models):
                r = doubled_ranks(condensed_distances(x))
                if r[0] == r.max() and r.min() == r[0]:
                    raise EmbeddingError(
                        f"{names[i]}: all pairwise distances are equal; RSA is undefined."
                    )
                dtype = r.dtype
                r.tofile(fh)
                del r
                if progress is not None:
                    progress(1)
        size = np.dtype(dtype).itemsize
        with open(path, "rb") as fh:
            for c0 in range(0, p, chunk):
                c = min(chunk, p - c0)
                block = np.empty((m, c))
                for i in range(m):
                    fh.seek((i * p + c0) * size)
                    block[i] = np.fromfile(fh, dtype=dtype, count=c)
                block -= p + 1
                gram += block @ block.T
    d = np.sqrt(np.diag(gram))
    rho = gram / d[:, None] / d[None, :]
    if right is None:
        return rho
    return rho[: len(xs), len(xs) :]


# --- Procrustes ------------------------------------------------------------------------------


def procrustes_state(x: np.ndarray, name: str = "x") -> np.ndarray:
    """(N, r) factor F with F F' = A A', A = centred x scaled to unit Frobenius norm.

    F = A (r = D) when D <= N; when D > N, F = U S from the thin SVD A = U S V' (r = N), which
    gives A'B and F_a'F_b the same singular values (V has orthonormal columns) with a smaller block.
    """
    xc = _centred(x, name)
    a = xc / np.linalg.norm(xc)
    if a.shape[1] <= a.shape[0]:
        return a
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    return u * s


def procrustes_from_block(c: np.ndarray) -> float:
    """sqrt(max(0, 2 - 2 ||C||_*)) for the block C = F_a' F_b of two Procrustes factors."""
    nuc = float(np.sum(np.linalg.svd(c, compute_uv=False)))
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * nuc)))


def procrustes_from_states(a: np.ndarray, b: np.ndarray) -> float:
    """sqrt(max(0, 2 - 2 ||a' b||_*)), ||.||_* the nuclear norm."""
    return procrustes_from_block(a.T @ b)


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
    """Per-model ridge terms from the thin SVD Xc = U S V'.

    Attributes
    ----------
    u : (N, r) array, r = min(N, D)
        Left singular vectors.
    f : (r,) array
        Shrinkage factors f_i = s_i^2 / (s_i^2 + lambda) (as predictor).
    s2 : (r,) array
        Squared singular values s_i^2 (as target).
    sq : float
        ||Xc||_F^2.
    """

    u: np.ndarray
    f: np.ndarray
    s2: np.ndarray
    sq: float


def ridge_state(x: np.ndarray, alpha: float = 1e-3, name: str = "x") -> RidgeState:
    """Per-model ridge terms: lambda = alpha ||Xc||_F^2 / D, f = s^2 / (s^2 + lambda)."""
    xc = _centred(x, name)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    sq = float(np.sum(xc * xc))
    lam = alpha * sq / x.shape[1]
    return RidgeState(u, s**2 / (s**2 + lam), s**2, sq)


def ridge_r2_from_block(a: RidgeState, b: RidgeState, c: np.ndarray) -> tuple[float, float]:
    """R^2(a -> b) and R^2(b -> a) from the one (r_a, r_b) block C = U_a' U_b.

    With Yc = U_b S_b V_b', ||U_a,i' Yc||^2 = sum_j C_ij^2 s_b,j^2 (V_b' has orthonormal rows), so

        R^2(a -> b) = sum_ij w_a,i C_ij^2 s_b,j^2 / ||Yc||^2,   w = 2 f - f^2,

    and R^2(b -> a) is the same with C' and the roles swapped.
    """
    cc = c * c
    wa, wb = 2 * a.f - a.f**2, 2 * b.f - b.f**2
    return float(wa @ cc @ b.s2) / b.sq, float(a.s2 @ cc @ wb) / a.sq


def ridge_r2(a: RidgeState, b: RidgeState) -> float:
    """R^2 of predicting b's centred features from a's (one GEMM U_a' U_b, then
    :func:`ridge_r2_from_block`)."""
    return ridge_r2_from_block(a, b, a.u.T @ b.u)[0]


def linear_reconstruction(x: np.ndarray, y: np.ndarray, alpha: float = 1e-3) -> float:
    """In-sample ridge R^2 of reconstructing y from x (asymmetric; swap arguments for y -> x).

    Yhat = Xc W, W = argmin ||Yc - Xc W||_F^2 + lambda ||W||_F^2, lambda = alpha ||Xc||_F^2 / D_x
    (a scale-free penalty: alpha times the mean eigenvalue of Xc'Xc). Columns are centred
    (intercept).

        R^2 = 1 - ||Yc - Yhat||_F^2 / ||Yc||_F^2

    Computed from the thin SVD Xc = U S V': ||Yc - Yhat||^2 = ||Yc||^2 - sum_i (2 f_i - f_i^2)
    ||U_i'Yc||^2, f_i = s_i^2 / (s_i^2 + lambda), and ||U_i'Yc||^2 = sum_j (U_x' U_y)_ij^2 s_y,j^2
    from the thin SVD of Yc (:func:`ridge_r2_from_block`): both directions share one block U_x'U_y.

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


