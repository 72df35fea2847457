"""Feature reconstruction measures GFRE, GFRD and LFRE (Goscinski et al. 2021), scikit-matter's way.

Directed: ``gfre(x, y)`` says how well x's features reconstruct y's; the local fits of LFRE are
batched in torch (one batched decomposition per fold for all test points, on the GPU when asked).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matteralign.threads import one_torch_thread

from ._backend import Backend, resolve_backend
from ._checks import EmbeddingError, as_embedding, check_same_samples

__all__ = [
    "SKMATTER_ALPHAS",
    "SKMATTER_SEED",
    "ReconstructionState",
    "gfrd",
    "gfre",
    "lfre",
    "pointwise_gfrd",
    "pointwise_gfre",
    "pointwise_lfre",
    "reconstruction_split",
    "reconstruction_state",
]

SKMATTER_SEED = 0x5F3759DF
"""Seed of scikit-matter's default train/test split and of its ridge's two folds."""

SKMATTER_ALPHAS = np.geomspace(1e-9, 0.9, 20)
"""Relative singular-value cut-offs tried by scikit-matter's default ``Ridge2FoldCV``."""


def reconstruction_split(n: int, seed: int = SKMATTER_SEED) -> tuple[np.ndarray, np.ndarray]:
    """scikit-matter's default 50/50 split of ``range(n)``: (train, test) index arrays.

    Equal to ``sklearn.model_selection.train_test_split(np.arange(n), train_size=0.5,
    test_size=0.5, shuffle=True, random_state=seed)``: π = RandomState(seed).permutation(n),
    test = π[:ceil(n/2)], train = π[ceil(n/2):ceil(n/2) + floor(n/2)] (in that order, which the
    ridge's folds depend on).
    """
    perm = np.random.RandomState(seed).permutation(n)
    n_test = math.ceil(0.5 * n)
    return perm[n_test : n_test + n // 2], perm[:n_test]


def two_folds(m: int, seed: int = SKMATTER_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The two folds of ``Ridge2FoldCV`` on m rows, as sorted positions (fold 1, fold 2).

    sklearn ``KFold(2, shuffle=True, random_state=seed)``'s first split: the first ceil(m/2)
    entries of RandomState(seed).shuffle(arange(m)) are fold 2, the rest fold 1.
    """
    idx = np.arange(m)
    np.random.RandomState(seed).shuffle(idx)
    mask = np.zeros(m, dtype=bool)
    mask[idx[: math.ceil(m / 2)]] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _flexible_scale(x: np.ndarray, train: np.ndarray, name: str) -> np.ndarray:
    """``StandardFlexibleScaler`` fitted on the train rows, applied to all rows.

    x <- (x - μ) / sqrt(Σ_j var_j), μ and the column variances (ddof 0) over the train rows, so
    the train set has unit total variance and a reconstruction error of at most 1.
    """
    xt = x[train]
    mean = xt.mean(axis=0)
    var_sum = float(((xt - mean) ** 2).mean(axis=0).sum())
    if var_sum < 1e-12:
        raise EmbeddingError(
            f"{name}: the training half of the samples has (almost) no variance "
            f"(total {var_sum:.3g}); feature reconstruction is undefined for it.")
    return (x - mean) / math.sqrt(var_sum)


@dataclass
class ReconstructionState:
    """One model's features split and scaled as scikit-matter does, reusable across pairs.

    Attributes
    ----------
    train, test : (n_train, D), (n_test, D) float64 arrays
        Rows of the split, each scaled by the scaler fitted on the train rows.
    folds : (fold1, fold2)
        Ridge folds, positions within ``train``.
    name : str
    cache : dict
        Work reused across pairs: LFRE's neighbour lists of this model as a source, per k.
    """

    train: np.ndarray
    test: np.ndarray
    folds: tuple[np.ndarray, np.ndarray]
    name: str = "x"
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)


def reconstruction_state(
    x: Any,
    name: str = "x",
    train_idx: np.ndarray | None = None,
    test_idx: np.ndarray | None = None,
) -> ReconstructionState:
    """Validate, split (default :func:`reconstruction_split`) and scale one model's features.

    Parameters
    ----------
    x : (N, D) array
    train_idx, test_idx : int arrays, optional
        Either, both, or neither (then the default split); a missing one is the sorted
        complement of the other, as in scikit-matter.
    """
    arr = as_embedding(x, name, min_samples=4)
    n = arr.shape[0]
    train, test = _split(n, train_idx, test_idx, name)
    scaled = _flexible_scale(arr, train, name)
    return ReconstructionState(scaled[train], scaled[test], two_folds(len(train)), name)


def _split(n: int, train_idx: Any, test_idx: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if train_idx is None and test_idx is None:
        return reconstruction_split(n)
    if train_idx is None:
        test = _indices(test_idx, n, name, "test_idx")
        return np.setdiff1d(np.arange(n), test), test
    train = _indices(train_idx, n, name, "train_idx")
    test = (np.setdiff1d(np.arange(n), train) if test_idx is None
            else _indices(test_idx, n, name, "test_idx"))
    if len(train) < 4 or len(test) < 1:
        raise EmbeddingError(
            f"{name}: {len(train)} training and {len(test)} test samples; feature reconstruction "
            "needs at least 4 training samples and 1 test sample.")
    return train, test


def _indices(idx: Any, n: int, name: str, what: str) -> np.ndarray:
    arr = np.asarray(idx)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer) or (
            arr.size and (arr.min() < -n or arr.max() >= n)):
        raise EmbeddingError(f"{name}: {what} must be a 1-D array of row indices in [0, {n}).")
    return arr % n


def _states(x: Any, y: Any, train_idx: Any, test_idx: Any
            ) -> tuple[ReconstructionState, ReconstructionState]:
    xa, ya = as_embedding(x, "x", 4), as_embedding(y, "y", 4)
    check_same_samples(xa, ya)
    return (reconstruction_state(xa, "x", train_idx, test_idx),
            reconstruction_state(ya, "y", train_idx, test_idx))


# --- the ridge with two-fold cut-off selection, batched ------------------------------------


_GRAM_TAU = 1e-3
"""Batched local fits take singular values from the Gram matrix's eigendecomposition only when
every kept singular value is at least this fraction of the largest (error <= ~m eps / tau^2)."""

CUDA_BATCHED_EIGH_MAX = 32
"""Largest matrix that cuSOLVER's batched (Jacobi) eigensolver takes; torch decomposes larger
batched matrices one at a time on CUDA, so LFRE's local fits of larger Gram matrices (min(k, D_x)
above this) run on the host's cores instead (5,000 fits at D = 128: 16 s on an H100, 2.1 s on
its 16 host cores)."""


def _thin_svd(x: Any, gram: bool, cut: Any = None) -> tuple[Any, Any, Any]:
    """Thin SVD (u, s, vh) of each (m, D) matrix of a (T, m, D) stack (any order of s: the
    callers select singular values by threshold).

    With ``gram``, from the eigendecomposition of the smaller Gram matrix (x x' or x' x: about
    four times faster for small matrices), s = sqrt(λ) and the other factor by one product; a
    problem whose smallest singular value is below ``_GRAM_TAU`` times its largest is recomputed
    by LAPACK's SVD, unless ``cut`` (T, 1) says every value below that fraction is cut off
    anyway. The Gram route squares the condition number, so it is used only where that loses
    nothing (relative error of the kept values <= m·eps/τ² ≈ 1e-8).
    """
    import torch

    if not gram:
        return torch.linalg.svd(x, full_matrices=False)
    wide = x.shape[1] <= x.shape[2]
    lam, w = torch.linalg.eigh(x @ x.mT if wide else x.mT @ x)  # ascending
    s = lam.clamp_min(0.0).sqrt()
    inv = torch.where(s > 0, 1.0 / torch.where(s > 0, s, 1.0), 0.0)
    if wide:
        u, vh = w, (w.mT @ x) * inv[:, :, None]
    else:
        u, vh = (x @ w) * inv[:, None, :], w.mT
    floor = _GRAM_TAU * s[:, -1:]
    ok = s[:, :1] >= floor
    if cut is not None:
        ok |= cut >= floor
    bad = torch.nonzero(~ok[:, 0]).flatten()
    if bad.numel():
        ub, sb, vhb = torch.linalg.svd(x[bad], full_matrices=False)
        u[bad], s[bad], vh[bad] = ub, sb, vhb
    return u, s, vh


def _rank_errors(a: Any, b: Any, s: Any, target: Any) -> tuple[Any, Any]:
    """Squared errors of one fold's cut-off predictions at every number of kept components.

    With the components in decreasing order of s, p_i = a_i / s_i and b_i (the rows of b): the
    prediction keeping the r largest is P_r = Σ_{i<r} p_i b_i', and for each output column c
    E_r[c] = ‖t_c − P_r e_c‖² = ‖t_c‖² + Σ_{i<r} (b_ic² G_ii + 2 b_ic Σ_{l<i} G_il b_lc
    − 2 b_ic p_i't_c), G = P'P: every r from three products and a cumulative sum instead of one
    prediction per cut-off.

    Parameters
    ----------
    a : (T, m, r) tensor
        The predicted fold in the fitted fold's right singular basis.
    b : (T, r, D_y) tensor
        U' y of the fitted fold.
    s : (T, r) tensor
        Its singular values, any order.
    target : (T, m, D_y) tensor

    Returns
    -------
    errors : (T, r + 1, D_y) tensor
        ``errors[:, r]`` = E_r (r = 0: nothing kept).
    ordered : (T, r) tensor
        s in decreasing order.
    """
    import torch

    order = torch.argsort(s, dim=1, descending=True)
    ordered = s.gather(1, order)
    inv = torch.where(ordered > 0, 1.0 / torch.where(ordered > 0, ordered, 1.0), 0.0)
    p = a.gather(2, order[:, None, :].expand_as(a)) * inv[:, None, :]
    b = b.gather(1, order[:, :, None].expand_as(b))
    g = p.mT @ p
    steps = b * (2.0 * (torch.tril(g, -1) @ b) + torch.diagonal(g, dim1=1, dim2=2)[:, :, None] * b
                 - 2.0 * (p.mT @ target))
    total = (target * target).sum(dim=1, keepdim=True)
    return torch.cat([total, total + steps.cumsum(dim=1)], dim=1), ordered


def _cv_cutoff(x: Any, y: Any, folds: tuple[np.ndarray, np.ndarray], alphas: np.ndarray,
               gram: bool) -> Any:
    """The singular-value cut-off (T, 1) that scikit-matter's two-fold CV chooses (see
    :func:`_ridge_2fold_cutoff`)."""
    import torch

    dev = x.device
    f1, f2 = (torch.as_tensor(f, device=dev) for f in folds)
    x1, x2, y1, y2 = x[:, f1], x[:, f2], y[:, f1], y[:, f2]
    u1, s1, v1h = _thin_svd(x1, gram)
    u2, s2, v2h = _thin_svd(x2, gram)
    rcond = max(x.shape[1], x.shape[2]) * float(np.finfo(np.float64).eps)
    smax = torch.maximum(s1.amax(dim=1), s2.amax(dim=1))  # (T,)
    al = torch.as_tensor(np.asarray(alphas, dtype=np.float64), device=dev)
    scaled = smax[:, None] * al[None, :]  # (T, n_alpha)
    threshold = scaled.clamp_min(rcond)

    def fold_scores(a, b, s, target):
        errors, ordered = _rank_errors(a, b, s, target)
        kept = (ordered[:, None, :] > threshold[:, :, None]).sum(dim=2)  # (T, n_alpha)
        picked = errors.gather(1, kept[:, :, None].expand(-1, -1, errors.shape[2]))
        return -(picked.clamp_min(0.0) / target.shape[1]).sqrt().mean(dim=2)  # -mean RMSE

    cv = (fold_scores(x2 @ v1h.mT, u1.mT @ y1, s1, y2)
          + fold_scores(x1 @ v2h.mT, u2.mT @ y2, s2, y1)) / 2
    best = torch.argmax(cv, dim=1)  # first maximum, as numpy
    return scaled.gather(1, best[:, None])  # (T, 1)


def _ridge_2fold_cutoff(x: Any, y: Any, folds: tuple[np.ndarray, np.ndarray],
                        alphas: np.ndarray, gram: bool = False, x_new: Any = None) -> Any:
    """Batched scikit-matter ``Ridge2FoldCV(alpha_type="relative", regularization_method="cutoff",
    scoring="neg_root_mean_squared_error")``: weights W with predictions x @ W.

    For each of the T problems (x_t (m, D_x), y_t (m, D_y)), with folds F1, F2 and thin SVDs
    x_F = U_F S_F V_F': the prediction of fold 2 from fold 1 at cut-off a keeps the singular
    values s > max(a, rcond), ŷ_2 = x_2 V_1 S_1⁻¹ U_1' y_1 (and 2 -> 1 likewise), rcond =
    max(m, D_x)·eps; the score is −(1/D_y) Σ_j RMSE_j averaged over both directions, a = α·max(s)
    over both folds; the first best α wins (the errors of every cut-off come from one cumulative
    sum over the kept components, :func:`_rank_errors`). The final W = V S⁻¹ U' y keeps the
    singular values of the whole x_t above the chosen cut-off (scikit-matter applies no rcond
    there).

    Parameters
    ----------
    x : (T, m, D_x) float64 tensor
    y : (T, m, D_y) float64 tensor
    folds : (fold1, fold2) position arrays
    alphas : (n_alpha,) relative cut-offs in [0, 1)
    gram : bool
        Decompose through Gram matrices where that is exact enough (:func:`_thin_svd`).
    x_new : (T, n, D_x) tensor, optional
        Rows to predict: then x_new @ W is returned, computed as ((x_new V S⁻¹) U') y without
        forming W (O(n m D) instead of O(m D_x D_y) per problem).

    Returns
    -------
    (T, D_x, D_y) tensor W, or (T, n, D_y) predictions with ``x_new``
    """
    import torch

    cut = _cv_cutoff(x, y, folds, alphas, gram)
    u, s, vh = _thin_svd(x, gram, cut)
    keep = s > cut
    inv = torch.where(keep, 1.0 / torch.where(keep, s, 1.0), 0.0)
    if x_new is not None:
        return (((x_new @ vh.mT) * inv[:, None, :]) @ u.mT) @ y
    return vh.mT @ (inv[:, :, None] * (u.mT @ y))


def _tensor(a: np.ndarray, be: Backend) -> Any:
    import torch

    return torch.as_tensor(a, dtype=torch.float64, device=be.device)


# --- global --------------------------------------------------------------------------------


def _global_predictions(sx: ReconstructionState, sy: ReconstructionState, be: Backend,
                        alphas: np.ndarray) -> tuple[Any, Any, Any]:
    """(W, predictions of the train rows, predictions of the test rows) of y from x."""
    w = _ridge_2fold_cutoff(_tensor(sx.train, be)[None], _tensor(sy.train, be)[None], sx.folds,
                            alphas)[0]
    return w, _tensor(sx.train, be) @ w, _tensor(sx.test, be) @ w


def pointwise_gfre_from_states(sx: ReconstructionState, sy: ReconstructionState,
                               device: Any = "cpu", alphas: np.ndarray = SKMATTER_ALPHAS
                               ) -> np.ndarray:
    """Per-test-sample ‖y_i − x_i W‖ from two prepared states (see :func:`pointwise_gfre`)."""
    be = resolve_backend(device)
    _, _, pred = _global_predictions(sx, sy, be, alphas)
    return (_tensor(sy.test, be) - pred).norm(dim=1).cpu().numpy()


def pointwise_gfrd_from_states(sx: ReconstructionState, sy: ReconstructionState,
                               device: Any = "cpu", alphas: np.ndarray = SKMATTER_ALPHAS
                               ) -> np.ndarray:
    """Per-test-sample ‖x_i W − x_i Q‖ from two prepared states (see :func:`pointwise_gfrd`)."""
    import torch

    be = resolve_backend(device)
    _, pred_train, pred_test = _global_predictions(sx, sy, be, alphas)
    d = max(sx.train.shape[1], sy.train.shape[1])

    def pad(t):
        return torch.nn.functional.pad(t, (0, d - t.shape[1]))

    u, _, vh = torch.linalg.svd(pad(_tensor(sx.train, be)).T @ pad(pred_train))
    q = u @ vh  # argmin_Q ‖x Q − x W‖_F over orthogonal Q (scipy.linalg.orthogonal_procrustes)
    return (pad(pred_test) - pad(_tensor(sx.test, be)) @ q).norm(dim=1).cpu().numpy()


def _rms(values: np.ndarray) -> float:
    return float(np.linalg.norm(values) / math.sqrt(len(values)))


def pointwise_gfre(x: Any, y: Any, train_idx: Any = None, test_idx: Any = None,
                   device: Any = "cpu") -> np.ndarray:
    """Pointwise global feature reconstruction error of y from x (scikit-matter defaults).

    Both are split (:func:`reconstruction_split`) and scaled by ``StandardFlexibleScaler``
    fitted on the train rows; W is the two-fold cut-off ridge of y_train on x_train
    (:func:`_ridge_2fold_cutoff`, no intercept: the data are centred); GFRE_i = ‖y_i − x_i W‖.

    Parameters
    ----------
    x : (N, D_x) array
        Source features.
    y : (N, D_y) array
        Target features, same samples in the same order.
    train_idx, test_idx : int arrays, optional
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    (n_test,) float64 array
    """
    sx, sy = _states(x, y, train_idx, test_idx)
    return pointwise_gfre_from_states(sx, sy, device)


def gfre(x: Any, y: Any, train_idx: Any = None, test_idx: Any = None,
         device: Any = "cpu") -> float:
    """Global feature reconstruction error GFRE(x → y) = sqrt((1/n_test) Σ_i ‖y_i − x_i W‖²).

    Equal to ``skmatter.metrics.global_reconstruction_error(x, y)`` (see :func:`pointwise_gfre`).
    Near 0: y is a linear function of x; near 1: x carries none of y (scaled units). Directed:
    gfre(x, y) != gfre(y, x).

    Returns
    -------
    float >= 0
    """
    return _rms(pointwise_gfre(x, y, train_idx, test_idx, device))


def pointwise_gfrd(x: Any, y: Any, train_idx: Any = None, test_idx: Any = None,
                   device: Any = "cpu") -> np.ndarray:
    """Pointwise global feature reconstruction distortion of y from x.

    With W as in :func:`pointwise_gfre` and Q the orthogonal matrix minimising
    ‖x_train Q − x_train W‖_F (both sides zero-padded to max(D_x, D_y) columns),
    GFRD_i = ‖x_i W − x_i Q‖: how far the best linear map is from a rotation.

    scikit-matter's ``pointwise_global_reconstruction_distortion`` pads only the orthogonal
    prediction, so it fails with a shape error when D_x > D_y; here the linear prediction is
    padded with zeros too (same value whenever scikit-matter returns one).

    Returns
    -------
    (n_test,) float64 array
    """
    sx, sy = _states(x, y, train_idx, test_idx)
    return pointwise_gfrd_from_states(sx, sy, device)


def gfrd(x: Any, y: Any, train_idx: Any = None, test_idx: Any = None,
         device: Any = "cpu") -> float:
    """Global feature reconstruction distortion GFRD(x → y) = sqrt((1/n_test) Σ_i GFRD_i²).

    Equal to ``skmatter.metrics.global_reconstruction_distortion(x, y)`` where that is defined
    (D_x <= D_y; see :func:`pointwise_gfrd`).
    """
    return _rms(pointwise_gfrd(x, y, train_idx, test_idx, device))


# --- local ---------------------------------------------------------------------------------


def local_neighbours(train: Any, test: Any, k: int, block: int = 4096) -> Any:
    """Indices (n_test, k) of the k nearest train rows of each test row, nearest first.

    Squared distances by scikit-matter's expansion ‖a‖² + ‖b‖² − 2 a·b in float64 (the same
    rounding decides the same order); ties are broken by the lower train index.
    """
    import torch

    sq_train = (train * train).sum(dim=1)
    out = []
    for start in range(0, test.shape[0], block):
        t = test[start : start + block]
        d = sq_train[None, :] + (t * t).sum(dim=1)[:, None] - 2.0 * (t @ train.T)
        order = torch.argsort(d, dim=1, stable=True)[:, :k]
        out.append(order)
    return torch.cat(out)


def pointwise_lfre_from_states(sx: ReconstructionState, sy: ReconstructionState, k: int | None,
                               device: Any = "cpu", alphas: np.ndarray = SKMATTER_ALPHAS
                               ) -> np.ndarray:
    """Per-test-sample local reconstruction errors from two prepared states (see :func:`lfre`)."""
    import torch

    be = resolve_backend(device)
    n_train, dx = sx.train.shape
    dy = sy.train.shape[1]
    k = min(dx, dy) if k is None else int(k)
    if not 2 <= k <= n_train:
        raise EmbeddingError(
            f"{sx.name} -> {sy.name}: n_local_points={k} must be in [2, {n_train}] (the training "
            "half of the samples).")
    if be.device.type == "cuda" and min(k, dx) > CUDA_BATCHED_EIGH_MAX:
        be = resolve_backend("cpu")  # one eigh at a time on the GPU: the host's cores are faster
    xtr, xte = _tensor(sx.train, be), _tensor(sx.test, be)
    ytr, yte = _tensor(sy.train, be), _tensor(sy.test, be)
    key = ("neighbours", k)
    if key not in sx.cache:
        sx.cache[key] = local_neighbours(xtr, xte, k)
    nbr = sx.cache[key].to(be.device)
    folds = two_folds(k)
    chunk = max(1, be.block_bytes // (8 * k * (dx + dy) * 6))  # backend's memory per block
    if be.device.type == "cpu":  # small problems get a chunk per thread, not threads per problem
        chunk = max(1, min(chunk, -(-xte.shape[0] // torch.get_num_threads())))

    def solve(start: int) -> Any:
        idx = nbr[start : start + chunk]
        lx, ly = xtr[idx], ytr[idx]  # (T, k, D)
        mx, my = lx.mean(dim=1, keepdim=True), ly.mean(dim=1, keepdim=True)
        pred = my + _ridge_2fold_cutoff(lx - mx, ly - my, folds, alphas, gram=True,
                                        x_new=xte[start : start + chunk, None, :] - mx)
        return (yte[start : start + chunk] - pred[:, 0]).norm(dim=1)

    starts = range(0, xte.shape[0], chunk)
    if be.device.type != "cpu":
        errors = [solve(s) for s in starts]
    else:
        with one_torch_thread() as workers, ThreadPoolExecutor(workers) as pool:
            errors = list(pool.map(solve, starts))
    return torch.cat(errors).cpu().numpy()


def pointwise_lfre(x: Any, y: Any, k: int | None = None, train_idx: Any = None,
                   test_idx: Any = None, device: Any = "cpu") -> np.ndarray:
    """Pointwise local feature reconstruction error of y from x.

    Split and scaling as :func:`pointwise_gfre`. For each test row i: N_i = its k nearest train
    rows in scaled x (squared Euclidean distance, nearest first); x̄, ȳ their means; W_i the
    two-fold cut-off ridge of (y_j − ȳ) on (x_j − x̄), j ∈ N_i (folds by position in N_i, as
    scikit-matter's ``Ridge2FoldCV``); LFRE_i = ‖y_i − ȳ − (x_i − x̄) W_i‖.

    All test rows' local problems are solved together (batched SVDs in torch), in chunks.

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    k : int, optional
        ``n_local_points``; default min(D_x, D_y), Chorna et al.'s choice (scikit-matter has no
        default).
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    (n_test,) float64 array
    """
    sx, sy = _states(x, y, train_idx, test_idx)
    return pointwise_lfre_from_states(sx, sy, k, device)


def lfre(x: Any, y: Any, k: int | None = None, train_idx: Any = None, test_idx: Any = None,
         device: Any = "cpu") -> float:
    """Local feature reconstruction error LFRE(x → y) = sqrt((1/n_test) Σ_i LFRE_i²).

    Equal to ``skmatter.metrics.local_reconstruction_error(x, y, n_local_points=k)``
    (see :func:`pointwise_lfre`). Directed.
    """
    return _rms(pointwise_lfre(x, y, k, train_idx, test_idx, device))
