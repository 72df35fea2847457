"""Streamed passes over row blocks of all models' distance tiles at once (dCor, RBF CKA, II, IdCor).

No N x N matrix is held: each pass keeps one (B, N) tile per model and accumulates in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._backend import Backend

__all__ = [
    "centred_product",
    "count_below",
    "cross_sums",
    "distance_ranks",
    "full_tile",
    "pair_two_nn",
    "rank_sums",
]

Progress = Callable[[int], None] | None


class _Model:
    """One model on the device: centred features, squared norms, optional RBF bandwidth.

    Distances are translation invariant, so the features are first shifted towards the origin in
    float64 (:func:`~.neighbours.shifted_to_spread`): uncentred, data at 1e7 from the origin lost
    2 % in information imbalance to cancellation in the Gram identity; data on an integer grid
    stay on it, so their tied distances stay exactly tied.
    """

    def __init__(self, x: np.ndarray, be: Backend, sigma: float | None = None):
        from .neighbours import shifted_to_spread

        self.x = shifted_to_spread(be.tensor(x)).to(be.dtype)
        self.sq = (self.x * self.x).sum(1)
        self.sigma = sigma

    def sq_dist(self, rows: Any) -> Any:
        """(B, N) squared Euclidean distances by the Gram identity, clamped >= 0, self set to 0."""
        import torch

        g = self.x[rows] @ self.x.T
        g.mul_(-2).add_(self.sq[rows][:, None]).add_(self.sq[None, :]).clamp_(min=0)
        g[torch.arange(rows.numel(), device=g.device), rows] = 0
        return g.double()


def _tile(m: _Model, rows: Any, kind: str, zero_diag: bool) -> Any:
    import torch

    d2 = m.sq_dist(rows)
    if kind == "distance":
        return d2.sqrt_()
    t = torch.exp(d2 / (-2.0 * m.sigma**2))
    if zero_diag:
        t[torch.arange(rows.numel(), device=t.device), rows] = 0
    return t


def cross_sums(
    left: Sequence[np.ndarray],
    right: Sequence[np.ndarray] | None,
    be: Backend,
    kind: str = "distance",
    sigmas: Sequence[float] | None = None,
    zero_diag: bool = False,
    progress: Progress = None,
    row_range: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Sums over all (i, j) of products of two models' tiles, for every pair of models, in one pass.

    S[a, b] = sum_ij t_a(i, j) t_b(i, j), t = Euclidean distance ``kind="distance"`` or
    RBF kernel exp(-||x_i - x_j||^2 / (2 sigma^2)) ``kind="rbf"`` (diagonal zeroed if
    ``zero_diag``).

    Parameters
    ----------
    left : M_l arrays (N, D_m)
    right : M_r arrays (N, D_m), or None for ``right = left`` (S is then symmetric)
    be : Backend
    kind : {"distance", "rbf"}
    sigmas : per-model bandwidths for ``kind="rbf"``, left then right
    progress : callable(int rows_done), optional
    row_range : (start, stop), optional
        Only sample rows i in [start, stop) (all j): the partial sums of one row block, which
        add up over consecutive blocks covering [0, N) to the whole pass (the Ray engine's tasks).

    Returns
    -------
    S : (M_l, M_r) float64
    row_sums_left : (M_l, R) float64, R = stop - start (N without ``row_range``)
    row_sums_right : (M_r, R) float64 or None when ``right`` is None
    """
    import torch

    n = left[0].shape[0]
    start, stop = (0, n) if row_range is None else row_range
    sig = list(sigmas) if sigmas is not None else [None] * (len(left) + len(right or []))
    lm = [_Model(x, be, sig[i]) for i, x in enumerate(left)]
    rm = None if right is None else [_Model(x, be, sig[len(left) + i]) for i, x in enumerate(right)]
    n_tiles = len(lm) + (len(rm) if rm else 0)
    step = be.block_rows(n, n_tiles=n_tiles + 1)
    s = torch.zeros((len(lm), len(rm) if rm else len(lm)), dtype=torch.float64, device=be.device)
    width = stop - start
    rs_l = torch.zeros((len(lm), width), dtype=torch.float64, device=be.device)
    rs_r = (None if rm is None
            else torch.zeros((len(rm), width), dtype=torch.float64, device=be.device))
    ar = torch.arange(n, device=be.device)
    for lo in range(start, stop, step):
        rows = ar[lo : min(stop, lo + step)]
        fl = torch.stack([_tile(m, rows, kind, zero_diag).reshape(-1) for m in lm])
        rs_l[:, rows - start] = fl.view(len(lm), rows.numel(), n).sum(-1)
        if rm is None:
            s += fl @ fl.T
        else:
            fr = torch.stack([_tile(m, rows, kind, zero_diag).reshape(-1) for m in rm])
            rs_r[:, rows - start] = fr.view(len(rm), rows.numel(), n).sum(-1)
            s += fl @ fr.T
            del fr
        del fl
        if progress is not None:
            progress(rows.numel())
    return (
        s.cpu().numpy(),
        rs_l.cpu().numpy(),
        None if rs_r is None else rs_r.cpu().numpy(),
    )


def full_tile(x: np.ndarray, be: Backend, kind: str = "distance", sigma: float | None = None,
              zero_diag: bool = False) -> np.ndarray:
    """The whole (N, N) tile of one model, as :func:`cross_sums` forms it row block by row block.

    For permutation nulls that reuse it every round (t[pi][:, pi] is the tile of x[pi]); the same
    operations as the streamed pass, so sums over it match :func:`cross_sums` to rounding.

    Returns
    -------
    (N, N) float64 array
    """
    import torch

    m = _Model(x, be, sigma)
    n = m.x.shape[0]
    step = be.block_rows(n, n_tiles=2)
    out = np.empty((n, n))
    ar = torch.arange(n, device=be.device)
    for start in range(0, n, step):
        rows = ar[start : start + step]
        out[start : start + rows.numel()] = _tile(m, rows, kind, zero_diag).cpu().numpy()
    return out


def distance_ranks(x: np.ndarray, be: Backend) -> np.ndarray:
    """rank(i, j) = 1 + #{l != i : d(i, l) < d(i, j)} for every pair, as :func:`rank_sums` counts.

    The squared distances are the same tile values :func:`rank_sums` compares (self set to inf);
    tied distances share the smallest rank.

    Returns
    -------
    (N, N) int32 array (the diagonal holds N, self's rank behind every other sample)
    """
    import torch

    m = _Model(x, be)
    n = m.x.shape[0]
    step = be.block_rows(n, n_tiles=3)
    out = np.empty((n, n), dtype=np.int32)
    ar = torch.arange(n, device=be.device)
    for start in range(0, n, step):
        rows = ar[start : start + step]
        d2 = m.sq_dist(rows)
        d2[torch.arange(rows.numel(), device=be.device), rows] = torch.inf
        srt = torch.sort(d2, dim=1).values
        out[start : start + rows.numel()] = (
            torch.searchsorted(srt, d2, side="left") + 1).cpu().numpy()
    return out


def centred_product(
    s: float | np.ndarray,
    ra: np.ndarray,
    rb: np.ndarray,
    n: int,
    unbiased: bool,
) -> float | np.ndarray:
    """Sum of products of two double-centred (or U-centred) symmetric matrices from their raw sums.

    Biased (V-statistic), A = H a H:        sum A o B = S - (2/N) sum_i a_i. b_i. + a.. b.. / N^2
    Unbiased (U-centred, Szekely-Rizzo 2014; equals Song et al.'s HSIC_1 numerator, with the
    diagonals of a and b zero):
    sum A~ o B~ = S + a.. b.. / ((N-1)(N-2)) - (2/(N-2)) sum_i a_i. b_i.

    Parameters
    ----------
    s : float or (...) array
        S = sum_ij a_ij b_ij.
    ra, rb : (..., N) arrays
        Row sums a_i., b_i.
    n : int
    unbiased : bool

    Returns
    -------
    float or array; the constant 1/N^2 or 1/(N(N-3)) factor is omitted (it cancels in ratios).
    """
    cross = (ra * rb).sum(-1)
    ta, tb = ra.sum(-1), rb.sum(-1)
    if unbiased:
        return s + ta * tb / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)
    return s - 2.0 * cross / n + ta * tb / n**2


def count_below(tile: Any, thresholds: Any) -> Any:
    """Per row, how many tile entries lie strictly below each threshold, without sorting the row.

    count[i, t] = #{l : tile[i, l] < thresholds[i, t]}. The (few) thresholds of a row are sorted;
    every entry is bucketed by binary search among them (bucket = #{sorted thresholds <= entry},
    O(N log T) instead of the O(N log N) row sort); a per-row histogram of buckets, cumulated,
    gives the counts, which are scattered back to the thresholds' original order. Exact: only
    comparisons of the given values are made, so ties follow ``<`` exactly. Entries >= the row's
    largest threshold (including inf) never count.

    Parameters
    ----------
    tile : (B, N) tensor
    thresholds : (B, T) tensor, same dtype and device

    Returns
    -------
    (B, T) int64 tensor
    """
    import torch

    b, t = thresholds.shape
    srt, order = torch.sort(thresholds, dim=1)
    bucket = torch.searchsorted(srt, tile, side="right")  # (B, N) in [0, T]
    bucket += (torch.arange(b, device=tile.device) * (t + 1))[:, None]
    hist = torch.bincount(bucket.view(-1), minlength=b * (t + 1)).view(b, t + 1)
    below_sorted = hist[:, :t].cumsum(1)  # entries with bucket <= s, i.e. < srt[:, s]
    return torch.empty_like(below_sorted).scatter_(1, order, below_sorted)


def rank_sums(
    knn: Sequence[np.ndarray],
    right: Sequence[np.ndarray],
    be: Backend,
    progress: Progress = None,
    groups: np.ndarray | None = None,
    row_range: tuple[int, int] | None = None,
) -> np.ndarray:
    """Sum of ranks, in each right-hand space, of each left-hand model's nearest neighbours.

    R[a, b] = sum_i sum_{j in knn_a(i)} rank_b(i, j), with
    rank_b(i, j) = 1 + #{l != i : d_b(i, l) < d_b(i, j)} (1 = nearest; tied distances share the
    smallest rank). Per row block and right model, the M_l k thresholds d_b(i, j) of a row are
    counted against the row by :func:`count_below` (bucketing, no row sort); the counts are
    integers summed in int64, so R is exact.

    Parameters
    ----------
    knn : M_l arrays (N, k) int
        Nearest-neighbour indices of the left models (Euclidean, self excluded).
    right : M_r arrays (N, D_m)
    be : Backend
    progress : callable(int rows_done), optional
    groups : (N,) int array, optional
        Samples of one group are excluded from each other's ranks (as self is).
    row_range : (start, stop), optional
        Sum over the rows i in [start, stop) only (one block of a distributed run).

    Returns
    -------
    (M_l, M_r) float64
    """
    import torch

    n = right[0].shape[0]
    k = knn[0].shape[1]
    rm = [_Model(x, be) for x in right]
    nn = torch.stack([torch.as_tensor(np.asarray(a), device=be.device) for a in knn])  # (M_l, N, k)
    m_l = nn.shape[0]
    g_t = None if groups is None else torch.as_tensor(np.asarray(groups), device=be.device)
    step = be.block_rows(n, n_tiles=4)
    out = torch.zeros((m_l, len(rm)), dtype=torch.int64, device=be.device)
    lo, hi = row_range or (0, n)
    ar = torch.arange(n, device=be.device)
    for start in range(lo, hi, step):
        rows = ar[start : min(hi, start + step)]
        b = rows.numel()
        cols = nn[:, rows, :].permute(1, 0, 2).reshape(b, m_l * k)  # (B, M_l * k)
        for j, m in enumerate(rm):
            d2 = m.sq_dist(rows)
            d2[torch.arange(b, device=be.device), rows] = torch.inf
            if g_t is not None:
                d2.masked_fill_(g_t[rows][:, None] == g_t[None, :], torch.inf)
            cnt = count_below(d2, d2.gather(1, cols)) + 1
            out[:, j] += cnt.view(b, m_l, k).sum(dim=(0, 2))
            del d2
        if progress is not None:
            progress(b)
    return out.double().cpu().numpy()


def pair_two_nn(
    xs: Sequence[np.ndarray],
    pairs: Sequence[tuple[int, int]],
    be: Backend,
    right: Sequence[np.ndarray] | None = None,
    progress: Progress = None,
    groups: np.ndarray | None = None,
    row_range: tuple[int, int] | None = None,
) -> np.ndarray:
    """First and second nearest-neighbour distances in every concatenated space [x_a | x_b].

    ||[x_a|x_b]_i - [x_a|x_b]_j||^2 = d_a(i,j)^2 + d_b(i,j)^2, so each pair costs one tile addition
    per block; the three nearest candidates are re-measured by differences in float64.

    Parameters
    ----------
    xs : M arrays (N, D_m)
    pairs : (a, b) index pairs; b indexes ``right`` when it is given, else ``xs``
    be : Backend

    row_range : (start, stop), optional
        Only the rows in [start, stop) (one block of a distributed run).

    Returns
    -------
    (P, N, 2) float64 (N = stop - start with ``row_range``): r1, r2 per pair and sample.
    """
    import torch

    n = xs[0].shape[0]
    lm = [_Model(x, be) for x in xs]
    rm = lm if right is None else [_Model(x, be) for x in right]
    l64 = [be.tensor(x) for x in xs]
    r64 = l64 if right is None else [be.tensor(x) for x in right]
    used_l = sorted({a for a, _ in pairs})
    used_r = sorted({b for _, b in pairs})
    if right is None:
        used_l = used_r = sorted(set(used_l) | set(used_r))
    step = be.block_rows(n, n_tiles=len(set(used_l) | set(used_r)) + 2)
    lo, hi = row_range or (0, n)
    out = torch.zeros((len(pairs), hi - lo, 2), dtype=torch.float64, device=be.device)
    ar = torch.arange(n, device=be.device)
    c = min(3, n - 1)
    g_t = None if groups is None else torch.as_tensor(np.asarray(groups), device=be.device)
    for start in range(lo, hi, step):
        rows = ar[start : min(hi, start + step)]
        b = rows.numel()
        tl = {a: lm[a].sq_dist(rows) for a in used_l}
        tr = tl if right is None else {j: rm[j].sq_dist(rows) for j in used_r}
        diag = torch.arange(b, device=be.device)
        for p, (a, bb) in enumerate(pairs):
            s = tl[a] + tr[bb]
            s[diag, rows] = torch.inf
            if g_t is not None:
                s.masked_fill_(g_t[rows][:, None] == g_t[None, :], torch.inf)
            cand = torch.topk(s, c, dim=1, largest=False).indices
            xa, xb = l64[a], r64[bb]
            ex = ((xa[rows][:, None, :] - xa[cand]) ** 2).sum(-1) + (
                (xb[rows][:, None, :] - xb[cand]) ** 2
            ).sum(-1)
            ex = torch.sort(ex, dim=1).values[:, :2]
            out[p, rows - lo] = ex.sqrt()
        if progress is not None:
            progress(b)
    return out.cpu().numpy()
