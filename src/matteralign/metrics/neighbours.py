"""Exact k-nearest-neighbour lists by blockwise GEMM + top-k, on CPU or CUDA.

Self is excluded by index; ties are broken by the lowest index; rows tied at rank k are counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Backend, resolve_backend
from ._checks import as_embedding, check_k, check_shape, check_values_on_device

__all__ = [
    "NeighbourGraph", "nearest_neighbours", "score_tile", "tile_error_factor", "top_candidates",
]

RECALL_SAMPLE_ROWS = 1024


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
    fallback_fraction : float
        Diagnostic: fraction of rows whose candidate list could not be certified and was
        recomputed in float64 against all N rows (0 when every row was settled by its candidates).
    recall : float
        1 for exact lists. For approximate lists (``neighbours="approximate"``): the mean share of
        each row's exact k neighbours that the list holds, measured on a seeded sample of at most
        :data:`RECALL_SAMPLE_ROWS` rows recomputed exactly in float64.
    """

    indices: np.ndarray
    values: np.ndarray
    kind: str
    tied_fraction: float
    fallback_fraction: float = 0.0
    recall: float = 1.0

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
        x_i . x_j, or -(|x_i|^2 + |x_j|^2 - 2 x_i . x_j) clamped to <= 0; bfloat16 inner
        products stay bfloat16 (half the bytes for top-k), distances are formed in float32.
    """
    import torch

    g = xb @ x.T
    if kind == "inner":
        return g
    if g.dtype == torch.bfloat16:
        g = g.float()
    g.mul_(2).sub_(sq_b[:, None]).sub_(sq[None, :])
    return g.clamp_(max=0.0)


def _exact_scores(x64: Any, rows: Any, cand: Any, kind: str, budget: int = 2**25) -> Any:
    """Float64 scores of candidate pairs, (B, C): x_i . x_j or -||x_i - x_j||^2 by differences.

    Gathers the candidate rows in chunks of at most ``budget`` bytes and contracts them with one
    batched product per chunk, so memory stays bounded.
    """
    import torch

    b, c = cand.shape
    d = x64.shape[1]
    out = torch.empty((b, c), dtype=torch.float64, device=x64.device)
    chunk = max(1, budget // (8 * max(1, c * d)))
    for s in range(0, b, chunk):
        xi = x64[rows[s : s + chunk]]
        xj = x64[cand[s : s + chunk]]
        if kind == "inner":
            out[s : s + chunk] = torch.einsum("bd,bcd->bc", xi, xj)
        else:
            xj.sub_(xi[:, None, :])
            out[s : s + chunk] = -torch.einsum("bcd,bcd->bc", xj, xj)
    return out


def _full_rows(x64: Any, rows: Any, kind: str) -> Any:
    """(R, N) float64 scores of some rows against all rows: x_i . x_j or -||x_i - x_j||^2 (Gram)."""
    g = x64[rows] @ x64.T
    if kind == "inner":
        return g
    sq = (x64 * x64).sum(1)
    return (2 * g - sq[rows][:, None] - sq[None, :]).clamp(max=0.0)


def _gamma(n: int, u: float) -> float:
    """Higham's gamma_n(u) = n u / (1 - n u); inf when n u >= 1."""
    return n * u / (1.0 - n * u) if n * u < 1.0 else float("inf")


def tile_error_factor(be: Any, d: int) -> float:
    """Factor c with |tile(x . y) - x . y| <= c |x| |y| for the GEMM of ``be`` at dimension D.

    Each operand entry reaches the multiplier as x_l (1 + a_l), |a_l| <= u_in
    (``be.gemm_input_roundoff``: float32 cast, then TF32/bf16 if enabled), so
    |sum x~_l y~_l - x . y| <= ((1 + u_in)^2 - 1) sum |x_l y_l| <= ((1 + u_in)^2 - 1) |x| |y|
    (Cauchy-Schwarz). The D products and D - 1 additions, each with relative error <= u_a
    (``be.gemm_accumulation_roundoff``, in any summation order, split-K included), add at most
    gamma_{D+1}(u_a) sum |x~_l y~_l| <= gamma_{D+1}(u_a) (1 + u_in)^2 |x| |y|. Hence
    c = (1 + u_in)^2 (1 + gamma_{D+1}(u_a)) - 1. For TF32 (u_in = 2^-10 + 2^-24 + 2^-34,
    u_a = 2^-23) and D = 512: c = 1.96e-3; for CPU float32 and D = 256: c = 3.1e-5.
    """
    if be.exact:
        return 0.0
    u_in = be.gemm_input_roundoff
    return (1.0 + u_in) ** 2 * (1.0 + _gamma(d + 1, be.gemm_accumulation_roundoff)) - 1.0


def _order(idx: Any, ex: Any) -> tuple[Any, Any]:
    """Sort candidate lists by (score descending, index ascending)."""
    import torch

    o = torch.argsort(idx, dim=1)
    idx, ex = idx.gather(1, o), ex.gather(1, o)
    o = torch.sort(-ex, dim=1, stable=True).indices
    return idx.gather(1, o), ex.gather(1, o)


def _exact_rows(x64: Any, rows: Any, k: int, kind: str, g_t: Any) -> tuple[Any, Any]:
    """Exact float64 top-(k+1) of some rows against all N, ties by lowest index.

    Returns (R, min(k + 1, N - 1)) indices and Gram scores. ``torch.topk`` fetches a few extra
    candidates; rows whose last fetched score still equals the k-th (ties running past the fetch)
    are settled by a stable sort of the full row.
    """
    import torch

    n = x64.shape[0]
    r = rows.numel()
    keep = min(n - 1, k + 1)
    full = _full_rows(x64, rows, kind)
    full[torch.arange(r, device=x64.device), rows] = -torch.inf
    if g_t is not None:
        full.masked_fill_(g_t[rows][:, None] == g_t[None, :], -torch.inf)
    fetch = min(n, k + 9)
    vals, idx = torch.topk(full, fetch, dim=1)
    idx, vals = _order(idx, vals)
    if fetch < n:
        amb = torch.nonzero(vals[:, -1] == vals[:, k - 1]).flatten()
        if amb.numel():
            o = torch.sort(-full[amb], dim=1, stable=True).indices[:, :fetch]
            idx[amb] = o
            vals[amb] = full[amb].gather(1, o)
    return idx[:, :keep], vals[:, :keep]


def nearest_neighbours(
    x: np.ndarray,
    k: int,
    kind: str = "inner",
    device: Any = "cpu",
    precision: str | None = None,
    groups: np.ndarray | None = None,
    name: str = "x",
    checked: bool = False,
) -> NeighbourGraph:
    """Exact k nearest neighbours of every row, self excluded by index, ties by lowest index.

    Row blocks of the (N, N) score matrix are formed by GEMM and reduced with ``torch.topk`` to
    F = k + m candidates (float64: m = max(2, k // 2); float32: m = max(16, k)). Candidates are
    ordered by (score descending, index ascending).

    float64 tiles: a row is accepted when its last fetched score is below its k-th.

    float32 tiles (TF32 on CUDA): the F candidates are re-scored exactly in float64 (gathered
    rows, one batched product) and re-ranked. Every candidate not fetched has a tile score
    s~_j <= s~_F (the F-th tile score), hence a true score s_j <= s~_F + e_i with the rigorous
    rounding bound

    * inner: e_i = (c + g) |x_i| max_j |x_j|,
    * euclidean (tiles on the column-centred data z, -||z_i - z_j||^2 = 2 z_i.z_j - |z_i|^2 -
      |z_j|^2 in float32): e_i = 2 c |z_i| Z + (2^-21 + g) (|z_i| + Z)^2, Z = max_j |z_j|; the
      2^-21 covers the float32 norms and the two float32 subtractions,

    plus (8 D + 16) 2^-126 Z^2 for float32 underflow (the tiles see the data scaled by a power of
    two so that every row has norm <= 1, so nothing overflows),

    with c = :func:`tile_error_factor` ((1 + u_in)^2 (1 + gamma_{D+1}(u_a)) - 1, u_in = 2^-10 for
    TF32 inputs, u_a = 2^-23 for the float32 accumulator; 1.96e-3 at D = 512) and
    g = gamma_{D+2}(2^-53) + 2^-50 for the float64 evaluation of the re-ranked scores. The row is
    certified when its exact k-th score exceeds s~_F + e_i strictly: no candidate left out can
    then reach or tie the k-th. All uncertified rows (of every block) are recomputed together in
    float64 against all N columns (:func:`_exact_rows`), in memory-bounded chunks.

    Approximate search (``neighbours="approximate"`` on the backend): tiles in bfloat16 on CUDA
    (float32 on CPU), the same F candidates re-ranked in float64, no certification and no
    fallback. Each returned list is ordered by exact score but may miss a true neighbour whose
    screened score fell below the F-th; ``recall`` reports the share found on a sample of rows.

    Parameters
    ----------
    x : (N, D) array
    k : int
        1 <= k <= N - 1.
    kind : {"inner", "euclidean"}
        Inner product x_i . x_j (cosine after L2 normalisation; platonic-rep's kernel) or Euclidean
        distance.
    device, precision
        See :class:`~matteralign.metrics._backend.Backend`; pass a ``Backend`` for
        approximate neighbours. On CUDA, ``x`` is copied in its own dtype and checked for
        NaN/inf and constant rows on the device.
    groups : (N,) int array, optional
        Samples with equal group id are never each other's neighbours (bootstrap copies of one
        sample).
    name : str
        Used in error messages.
    checked : bool
        ``x`` is an (N, D) float64 array or tensor that has passed the value checks already
        (:func:`matteralign.metrics.engine.prepare_models`): it is used as it is, not scanned again.

    Returns
    -------
    NeighbourGraph
        ``fallback_fraction`` says which share of rows needed the full float64 recomputation;
        ``recall`` the measured share of exact neighbours (1 for an exact search).
    """
    import torch

    be = resolve_backend(device, precision)
    x64 = be.tensor(x) if checked else _validated_tensor(x, name, be)
    n, d = x64.shape
    k = check_k(k, n, name)
    if kind not in ("inner", "euclidean"):
        raise ValueError(f"kind must be 'inner' or 'euclidean', got {kind!r}.")
    if kind == "euclidean":  # distances do not move with the origin; centred rows keep digits
        x64 = shifted_to_spread(x64)
    approximate = be.neighbours == "approximate"
    screened = approximate or not be.exact
    # candidates beyond k: TF32 / bfloat16 screens need more than float32 with float32 inputs
    # (CPU: c = 3.1e-5 at D = 256) or float64, where few rows then fail their certificate
    gpu_screen = screened and be.device.type != "cpu"
    extra = max(16, k) if approximate or gpu_screen else max(2, k // 2)
    fetch = min(n - 1, k + extra)
    keep = min(n - 1, k + 1)
    dev = be.device
    if not screened:
        xw, unscale, thr_add = x64, 1.0, None
    else:
        c = tile_error_factor(be, d)
        g64 = _gamma(d + 2, 2.0**-53) + 2.0**-50
        base = x64
        nrm = base.norm(dim=1)
        big = float(nrm.max())
        # scale by a power of two (exact) so that every row has norm <= 1 in the tiles: no float32
        # overflow; underflow / flush-to-zero is covered by the absolute term below
        e = math.ceil(math.log2(big)) if 0.0 < big < math.inf else 0
        unscale = math.ldexp(1.0, 2 * e) if -480 < e < 480 else math.inf
        tiny = (8 * d + 16) * 2.0**-126 * unscale
        if kind == "euclidean":
            thr_add = 2 * c * nrm * big + (2.0**-21 + g64) * (nrm + big) ** 2 + tiny
        else:
            thr_add = (c + g64) * nrm * big + tiny
        xw = base * math.ldexp(1.0, -e)
        if not math.isfinite(big) or not math.isfinite(unscale):
            thr_add = torch.full_like(nrm, math.inf)
    tile_dtype = _screen_dtype(be) if approximate else be.dtype
    sq = (xw * xw).sum(1).float() if kind == "euclidean" and screened else None
    if kind == "euclidean" and not screened:
        sq = (xw * xw).sum(1)
    xw = xw.to(tile_dtype)
    g_t = None if groups is None else torch.as_tensor(np.asarray(groups), device=dev)
    out_idx = torch.empty((n, keep), dtype=torch.int64, device=dev)
    out_ex = torch.empty((n, keep), dtype=torch.float64, device=dev)
    ok_all = torch.empty(n, dtype=torch.bool, device=dev)
    with be.stage("knn: screen and re-rank"):
        step = be.block_rows(n, n_tiles=3, itemsize=4 if screened else 8)
        ar = torch.arange(n, device=dev)
        for start in range(0, n, step):
            rows = ar[start : start + step]
            b = rows.numel()
            s = score_tile(xw[rows], xw, None if sq is None else sq[rows], sq, kind)
            s[torch.arange(b, device=dev), rows] = -torch.inf
            if g_t is not None:
                s.masked_fill_(g_t[rows][:, None] == g_t[None, :], -torch.inf)
            # the two-stage selection pays on a GPU; on a CPU one top-k is faster
            vals, idx = (top_candidates(s, fetch) if dev.type != "cpu"
                         else torch.topk(s, fetch, dim=1))
            del s
            vals = vals.double()
            last = vals[:, -1]
            if not screened:
                ex, bound = vals, last
            else:
                last = last * unscale
                ex = _exact_scores(x64, rows, idx, kind, be.block_bytes // 8)
                masked = idx == rows[:, None]
                if g_t is not None:
                    masked |= g_t[idx] == g_t[rows][:, None]
                ex.masked_fill_(masked, -torch.inf)
                bound = last + thr_add[rows]
            idx, ex = _order(idx, ex)
            kth = ex[:, k - 1]
            if fetch == n - 1 or approximate:
                ok = torch.ones(b, dtype=torch.bool, device=dev)
            else:
                ok = bound < kth
            if groups is not None:
                ok &= torch.isfinite(kth)
            ok_all[rows] = ok
            out_idx[rows] = idx[:, :keep]
            out_ex[rows] = ex[:, :keep]
    bad = torch.nonzero(~ok_all).flatten()
    n_bad = int(bad.numel())
    be.count("knn: fallback rows", n_bad)
    chunk = max(1, be.block_rows(n, n_tiles=2))
    with be.stage("knn: float64 fallback rows"):
        for c0 in range(0, n_bad, chunk):
            r = bad[c0 : c0 + chunk]
            out_idx[r], out_ex[r] = _exact_rows(x64, r, k, kind, g_t)
    if k < n - 1:
        n_tied = int((out_ex[:, k - 1] == out_ex[:, k]).sum())
    else:
        n_tied = 0
    out_idx = out_idx[:, :k]
    if kind == "euclidean":
        redo = bad if screened else ar
        if redo.numel():
            out_ex[redo, :k] = _exact_scores(x64, redo, out_idx[redo], kind, be.block_bytes // 8)
        out_val = (-out_ex[:, :k]).clamp(min=0).sqrt()
    else:
        out_val = out_ex[:, :k]
    with be.stage("knn: sampled recall"):
        recall = _sampled_recall(x64, out_idx, k, kind, g_t, chunk) if approximate else 1.0
    with be.stage("knn: graph to host"):
        indices, values = out_idx.cpu().numpy(), out_val.cpu().numpy()
    return NeighbourGraph(
        indices=indices,
        values=values,
        kind=kind,
        tied_fraction=n_tied / n,
        fallback_fraction=n_bad / n,
        recall=recall,
    )


def shifted_to_spread(t: Any) -> Any:
    """An (N, D) float64 tensor shifted column by column towards the origin, distances unchanged.

    Column j is shifted by its mean rounded to a multiple of 2^e_j, e_j = floor(log2(sd_j)): the
    Gram identity ||z_i||^2 + ||z_j||^2 - 2 z_i.z_j then cancels on the scale of the spread, not of
    the offset (uncentred, data at 1e7 from the origin lose their neighbours to rounding), while
    data on an integer (dyadic) grid stay on it, so tied distances stay exactly tied. The same
    shift as the streamed distance tiles (:mod:`~.streams`).
    """
    import torch

    sd = t.std(0, keepdim=True) if t.shape[0] > 1 else torch.ones_like(t[:1])
    step = torch.exp2(torch.floor(torch.log2(sd.clamp_min(torch.finfo(t.dtype).tiny))))
    return t - torch.round(t.mean(0, keepdim=True) / step) * step


def top_candidates(s: Any, f: int) -> tuple[Any, Any]:
    """The F largest scores of every row of a (B, N) tile and their columns (ties: any order).

    Two-stage selection, equal in values to ``torch.topk(s, F)``: the columns are dealt into
    groups of g (a power of two near sqrt(N / F); group c holds columns c, c + N/g, ...); the F
    groups with the largest maxima are kept and the top F is taken among their F g entries and
    the < g columns left over. Every top-F entry lies in a kept group: an entry below
    the F-th largest group maximum t has F kept-group maxima above it. Every entry left out is
    <= t <= the F-th returned value, which is what the certificates of
    :func:`nearest_neighbours` need. Reads the tile once (the group maxima) instead of running a
    full top-k over N columns.
    """
    import torch

    b, n = s.shape
    g = 1 << max(3, min(8, round(math.log2(max(1.0, n / max(1, f))) / 2)))
    n_groups = n // g
    if n_groups <= 2 * f:
        return torch.topk(s, f, dim=1)
    body = n_groups * g  # the last n - body < g columns are always candidates
    # group c holds the columns c, c + n_groups, c + 2 n_groups, ...: its maximum is a reduction
    # over the middle axis, which reads the tile coalesced
    maxima = s[:, :body].view(b, g, n_groups).amax(dim=1)
    groups = torch.topk(maxima, f, dim=1).indices  # (B, F)
    member = torch.arange(g, device=s.device) * n_groups
    group_cols = (groups[:, :, None] + member).reshape(b, f * g)
    cand = torch.cat([s.gather(1, group_cols), s[:, body:]], dim=1)
    vals, pos = torch.topk(cand, f, dim=1)
    tail = torch.arange(body, n, device=s.device).expand(b, n - body)
    cols = torch.cat([group_cols, tail], dim=1).gather(1, pos)
    return vals, cols


def _validated_tensor(x: Any, name: str, be: Backend) -> Any:
    """(N, D) float64 tensor of ``x`` on the backend's device, with :func:`as_embedding`'s checks.

    On a GPU the array travels in its own dtype (float32 halves the transfer), and the value
    checks (NaN/inf, constant) run on the device.
    """
    import torch

    if be.device.type == "cpu":
        return be.tensor(as_embedding(x, name))
    arr = check_shape(x, name)
    if not (arr.dtype in (np.float32, np.float64) and arr.dtype.isnative):
        arr = arr.astype(np.float64)
    t = torch.as_tensor(np.ascontiguousarray(arr)).to(be.device).to(torch.float64)
    check_values_on_device(t, name)
    return t


def _screen_dtype(be: Backend) -> Any:
    """Tile dtype of an approximate search: bfloat16 on CUDA, float32 elsewhere."""
    import torch

    return torch.bfloat16 if be.device.type == "cuda" else torch.float32


def _sampled_recall(x64: Any, idx: Any, k: int, kind: str, g_t: Any, chunk: int,
                    seed: int = 0) -> float:
    """Mean share of the exact k neighbours found by ``idx``, on a seeded sample of rows.

    The exact rows are formed ``chunk`` rows at a time (the float64 fallback's memory bound), not
    as one (1024, N) float64 block (8 GB at N = 10^6)."""
    import torch

    n = idx.shape[0]
    m = min(n, RECALL_SAMPLE_ROWS)
    rows = torch.as_tensor(np.sort(np.random.default_rng(seed).choice(n, m, replace=False)),
                           device=idx.device)
    exact = torch.cat([_exact_rows(x64, rows[c : c + chunk], k, kind, g_t)[0][:, :k]
                       for c in range(0, m, chunk)])
    found = (idx[rows][:, :, None] == exact[:, None, :]).any(dim=2)
    return float(found.double().mean())


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
