"""Exact k-nearest-neighbour lists by blockwise GEMM + top-k, on CPU or CUDA.

Self is excluded by index; ties are broken by the lowest index; rows tied at rank k are counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import resolve_backend
from ._checks import as_embedding, check_k

__all__ = ["NeighbourGraph", "nearest_neighbours", "score_tile"]


@dataclass(frozen=True)
class NeighbourGraph:
    """The k nearest neighbours of every sample.

    Attributes
    ----------
    indices : (N, k) int64 array
        Neighbour indices, nearest first; never the sample itself (nor a sample of the same group).
    values : (N, k) float64 array
        ``kind="inner"``: inner products x_i . x_j, descending.
        ``kind="euclidean"``: distances ||x_i - x_j||_2 (computed from differences), ascending.
    kind : str
        "inner" or "euclidean".
    tied_fraction : float
        Fraction of rows whose k-th and (k+1)-th candidates have equal scores, so that the
        lowest-index rule decided membership.
    """

    indices: np.ndarray
    values: np.ndarray
    kind: str
    tied_fraction: float

    @property
    def k(self) -> int:
        """Number of neighbours per row."""
        return int(self.indices.shape[1])


def score_tile(xb: Any, x: Any, sq_b: Any, sq: Any, kind: str) -> Any:
    """Similarity tile, larger = nearer: inner products, or minus squared distances.

    Parameters
    ----------
    xb : (B, D) tensor
        Rows of the block.
    x : (N, D) tensor
        All rows.
    sq_b, sq : (B,), (N,) tensors or None
        Squared row norms (only for ``kind="euclidean"``).
    kind : {"inner", "euclidean"}

    Returns
    -------
    (B, N) tensor
        x_i . x_j, or -(|x_i|^2 + |x_j|^2 - 2 x_i . x_j) clamped to <= 0.
    """
    g = xb @ x.T
    if kind == "inner":
        return g
    g.mul_(2).sub_(sq_b[:, None]).sub_(sq[None, :])
    return g.clamp_(max=0.0)


def _exact_scores(x64: Any, rows: Any, cand: Any, kind: str) -> Any:
    """Float64 scores of candidate pairs, (B, C): x_i . x_j or -||x_i - x_j||^2 by differences.

    Gathers in row chunks of at most 32 MiB so memory stays bounded.
    """
    import torch

    b, c = cand.shape
    d = x64.shape[1]
    out = torch.empty((b, c), dtype=torch.float64, device=x64.device)
    chunk = max(1, 2**22 // max(1, c * d))
    for s in range(0, b, chunk):
        xi = x64[rows[s : s + chunk]][:, None, :]
        xj = x64[cand[s : s + chunk]]
        if kind == "inner":
            out[s : s + chunk] = (xi * xj).sum(-1)
        else:
            out[s : s + chunk] = -((xi - xj) ** 2).sum(-1)
    return out


def _full_rows(x64: Any, rows: Any, kind: str) -> Any:
    """(R, N) float64 scores of some rows against all rows: x_i . x_j or -||x_i - x_j||^2 (Gram)."""
    g = x64[rows] @ x64.T
    if kind == "inner":
        return g
    sq = (x64 * x64).sum(1)
    return (2 * g - sq[rows][:, None] - sq[None, :]).clamp(max=0.0)


def nearest_neighbours(
    x: np.ndarray,
    k: int,
    kind: str = "inner",
    device: Any = "cpu",
    precision: str | None = None,
    groups: np.ndarray | None = None,
    name: str = "x",
) -> NeighbourGraph:
    """Exact k nearest neighbours of every row, self excluded by index, ties by lowest index.

    Row blocks of the (N, N) score matrix are formed by GEMM and reduced with ``torch.topk`` over
    k + extra candidates. Candidates are ordered by (score descending, index ascending). A row whose
    last fetched candidate could still tie or beat the k-th (within the GEMM rounding bound) is
    recomputed in float64 over all N columns with a stable sort, so membership never depends on the
    top-k kernel's tie order or on float32/TF32 rounding.

    Parameters
    ----------
    x : (N, D) array
    k : int
        1 <= k <= N - 1.
    kind : {"inner", "euclidean"}
        Inner product x_i . x_j (cosine after L2 normalisation; platonic-rep's kernel) or Euclidean
        distance.
    device, precision
        See :class:`~matteralign.metrics._backend.Backend`.
    groups : (N,) int array, optional
        Samples with equal group id are never each other's neighbours (bootstrap copies of one sample).
    name : str
        Used in error messages.

    Returns
    -------
    NeighbourGraph
    """
    import torch

    be = resolve_backend(device, precision)
    x = as_embedding(x, name)
    n = x.shape[0]
    k = check_k(k, n, name)
    if kind not in ("inner", "euclidean"):
        raise ValueError(f"kind must be 'inner' or 'euclidean', got {kind!r}.")
    extra = max(2, k // 2) if be.exact else max(8, k)
    fetch = min(n - 1, k + extra)
    x64 = be.tensor(x)
    xw = x64.to(be.dtype)
    sq = (xw * xw).sum(1) if kind == "euclidean" else None
    norms = x64.norm(dim=1)
    maxnorm = float(norms.max())
    g_t = None if groups is None else torch.as_tensor(np.asarray(groups), device=be.device)
    out_idx = torch.empty((n, k), dtype=torch.int64, device=be.device)
    out_val = torch.empty((n, k), dtype=torch.float64, device=be.device)
    n_tied = 0
    step = be.block_rows(n, n_tiles=3)
    ar = torch.arange(n, device=be.device)
    for start in range(0, n, step):
        rows = ar[start : start + step]
        b = rows.numel()
        s = score_tile(xw[rows], xw, None if sq is None else sq[rows], sq, kind)
        s[torch.arange(b, device=be.device), rows] = -torch.inf
        if g_t is not None:
            s.masked_fill_(g_t[rows][:, None] == g_t[None, :], -torch.inf)
        vals, idx = torch.topk(s, fetch, dim=1)
        vals = vals.double()
        last = vals[:, -1]
        if be.exact:
            ex = vals
            err = torch.zeros(b, dtype=torch.float64, device=be.device)
        else:
            # data-driven rounding bound: 4 x the largest observed |tile - exact| in the row, plus
            # a floor of sqrt(D) u |x_i| max|x_j| (typical GEMM error), instead of the worst-case D u
            ex = _exact_scores(x64, rows, idx, kind)
            scale = norms[rows] * maxnorm if kind == "inner" else (norms[rows] + maxnorm) ** 2
            seen = (vals - ex).abs().amax(1)
            err = 4.0 * torch.maximum(seen, x.shape[1] ** 0.5 * be.unit_roundoff * scale)
        # order candidates by (score desc, index asc)
        o = torch.argsort(idx, dim=1)
        idx, ex = idx.gather(1, o), ex.gather(1, o)
        o = torch.sort(-ex, dim=1, stable=True).indices
        idx, ex = idx.gather(1, o), ex.gather(1, o)
        kth = ex[:, k - 1]
        ok = (last + err < kth) | torch.tensor(fetch == n - 1, device=be.device)
        if groups is not None:
            ok &= torch.isfinite(kth)
        tied = ex[:, k - 1] == ex[:, k] if fetch > k else torch.zeros_like(ok)
        bad = torch.nonzero(~ok).flatten()
        chunk = max(1, be.block_rows(n, n_tiles=2))
        for c0 in range(0, bad.numel(), chunk):
            r = bad[c0 : c0 + chunk]
            i = rows[r]
            full = _full_rows(x64, i, kind)
            full[torch.arange(r.numel(), device=be.device), i] = -torch.inf
            if g_t is not None:
                full.masked_fill_(g_t[i][:, None] == g_t[None, :], -torch.inf)
            order = torch.sort(-full, dim=1, stable=True).indices[:, : k + 1]
            top = full.gather(1, order)
            idx[r, : k + 1] = order
            ex[r, : k + 1] = top
            tied[r] = (top[:, k - 1] == top[:, k]) if k < n - 1 else False
        out_idx[rows] = idx[:, :k]
        if kind == "euclidean":
            out_val[rows] = (-_exact_scores(x64, rows, idx[:, :k], kind)).clamp(min=0).sqrt()
        else:
            out_val[rows] = ex[:, :k]
        n_tied += int(tied.sum())
    return NeighbourGraph(
        indices=out_idx.cpu().numpy(),
        values=out_val.cpu().numpy(),
        kind=kind,
        tied_fraction=n_tied / n,
    )




@dataclass(frozen=True)
class SortedGraph:
    """A neighbour graph flattened to sorted keys ``i * N + j`` for O(N k log) set operations.

    Attributes
    ----------
    n, k : int
    keys : (N*k,) int64, ascending
    rows, cols : (N*k,) int64
        i and j of every key.
    values : (N*k,) float64
        Score of each edge (inner product for CKNNA).
    tied_fraction : float
    """

    n: int
    k: int
    keys: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    tied_fraction: float


def sorted_graph(g: NeighbourGraph, perm: np.ndarray | None = None) -> SortedGraph:
    """Flatten ``g`` to sorted keys; with ``perm``, the graph of the row-permuted data x[perm].

    If y' = y[perm] then row i of y' is row perm[i] of y, and its neighbours are
    inv[indices[perm[i]]] with the same values (inv = argsort(perm)): no neighbour search is redone.
    """
    idx, val = g.indices, g.values
    n, k = idx.shape
    if perm is not None:
        inv = np.empty(n, dtype=np.int64)
        inv[perm] = np.arange(n)
        idx = inv[idx[perm]]
        val = val[perm]
    o = np.argsort(idx, axis=1, kind="stable")
    cols = np.take_along_axis(idx, o, 1).ravel()
    vals = np.take_along_axis(val, o, 1).ravel()
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    return SortedGraph(n, k, rows * n + cols, rows, cols, vals, g.tied_fraction)


def intersect(a: SortedGraph, b: SortedGraph) -> tuple[np.ndarray, np.ndarray]:
    """Edges of ``a`` that are also edges of ``b``.

    Returns
    -------
    mask : (N*k_a,) bool
        True where a's edge (i, j) is in b.
    pos : (n_common,) int64
        Position in b's arrays of each common edge.
    """
    pos = np.searchsorted(b.keys, a.keys)
    pos_c = np.minimum(pos, b.keys.size - 1)
    mask = b.keys[pos_c] == a.keys
    return mask, pos_c[mask]
