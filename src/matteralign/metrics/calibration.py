"""Permutation-calibrated similarity (Gröger, Wen & Brbić 2026): nulls for all pairs at once,
p-values, the calibrated score (obs - tau) / (s_best - tau) and Benjamini-Hochberg FDR.

A round draws one permutation pi of the samples (optionally only within groups) and scores every
ordered pair (a, b[pi]). kNN families reuse each model's neighbour list, relabelled, and score all
pairs of a round from one lookup of the permuted edges in the union of the original edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._backend import Backend, resolve_backend
from ._checks import EmbeddingError
from .engine import (
    DcorKernel,
    ImbalanceKernel,
    NeighbourGraphKernel,
    RbfCkaKernel,
    kernel_for,
    prepare_inputs,
    progress_bar,
    score_matrix,
)
from .neighbours import NeighbourGraph, nearest_neighbours
from .registry import MetricSpec, get_metric

__all__ = [
    "CalibratedScores",
    "benjamini_hochberg",
    "calibrate",
    "calibrate_layers",
    "calibrated_layer_scores",
    "calibrated_scores",
    "calibrated_value",
    "has_relabelled_null",
    "null_matrices",
    "permutations",
]

#: A calibrated score needs tau at least this far from the best attainable score; below it the
#: null fills (nearly) the whole range at this N and the metric cannot tell pairs apart.
MIN_HEADROOM = 0.1

#: Largest memory (bytes) for the whole (N, N) tiles (dCor, RBF CKA) or rank matrices (II) of all
#: M models kept across the rounds of a null; above it the rounds stream row blocks instead.
DENSE_NULL_BYTES = 2**31


def permutations(
    n: int, rounds: int, seed: int = 0, groups: Sequence[Any] | np.ndarray | None = None
) -> np.ndarray:
    """Seeded permutations of N samples, free or restricted to within groups.

    Parameters
    ----------
    n : int
    rounds : int
    seed : int
        ``numpy.random.default_rng(seed)``; the same seed gives the same permutations.
    groups : (N,) labels, optional
        Samples are only exchanged with samples of the same label (e.g. structures of one
        composition, rattled copies of one molecule); a sample alone in its group stays put.

    Returns
    -------
    (rounds, N) int64 array
        Row r is pi_r; the permuted model is ``y[pi_r]``.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        return np.stack([rng.permutation(n) for _ in range(rounds)]) if rounds else \
            np.empty((0, n), dtype=np.int64)
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise EmbeddingError(f"groups has shape {labels.shape}; expected one label per sample "
                             f"({n},).")
    _, codes = np.unique(labels, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    members = [m for m in np.split(order, bounds) if len(m) > 1]
    out = np.tile(np.arange(n, dtype=np.int64), (rounds, 1))
    for r in range(rounds):
        for m in members:
            out[r, m] = m[rng.permutation(len(m))]
    return out


def _best(spec: MetricSpec) -> float:
    """The best attainable score: 1 for every similarity here, 0 for II and Procrustes."""
    return 1.0 if spec.higher_is_more_similar else 0.0


def calibrated_value(
    value: np.ndarray | float,
    tau: np.ndarray | float,
    higher_is_more_similar: bool = True,
    s_best: float | None = None,
) -> np.ndarray:
    """clip((s - tau) / (s_best - tau), 0, 1) for a similarity, mirrored for a dissimilarity
    (clip((tau - d) / (tau - d_best), 0, 1)); NaN where s is NaN. ``s_best`` defaults to 1
    (similarity) or 0 (dissimilarity). Used by :func:`calibrate`, and for interval bounds."""
    sign = 1.0 if higher_is_more_similar else -1.0
    best = (1.0 if higher_is_more_similar else 0.0) if s_best is None else float(s_best)
    o, t = sign * np.asarray(value, dtype=np.float64), sign * np.asarray(tau, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cal = np.clip((o - t) / np.maximum(sign * best - t, 1e-12), 0.0, 1.0)
    return np.where(np.isnan(o), np.nan, cal)


def calibrate(
    observed: np.ndarray | float,
    null: np.ndarray,
    higher_is_more_similar: bool = True,
    alpha: float = 0.05,
    s_best: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated score, p-value and threshold tau from a permutation null (Gröger et al. 2026).

    With R null values s_1..s_R and the observed s_0, for a similarity (higher = more aligned):

        tau = the ceil((1 - alpha)(R + 1))-th smallest of {s_0, s_1, ..., s_R}
        p = (1 + #{r : s_r >= s_0}) / (R + 1)
        calibrated = clip((s_0 - tau) / (s_best - tau), 0, 1)

    exactly as ``calibrated_similarity.calibrate`` (``s_best`` = its ``smax``; None gives
    max(s_0 - tau, 0)). A dissimilarity (lower = more aligned, e.g. information imbalance) is
    calibrated as the similarity -d with s_best = -d_best, i.e. tau is the
    floor-complementary lower order statistic, p counts s_r <= s_0 and
    calibrated = clip((tau - s_0) / (tau - d_best), 0, 1).

    Parameters
    ----------
    observed : float or (...) array
    null : (R, ...) array
        Null scores; the leading axis is the round.
    higher_is_more_similar : bool
    alpha : float
        Level of the threshold; a pair whose score does not beat the (1 - alpha) null quantile
        calibrates to 0.
    s_best : float, optional
        Best attainable score (default 1 for similarities, 0 for dissimilarities).

    Returns
    -------
    calibrated, p_value, tau : arrays shaped like ``observed``
        NaN where the observed score is NaN (it is then neither significant nor counted by
        :func:`benjamini_hochberg`).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    obs = np.asarray(observed, dtype=np.float64)
    nl = np.asarray(null, dtype=np.float64)
    rounds = nl.shape[0]
    if rounds < 1:
        raise ValueError("a permutation null needs at least one round")
    sign = 1.0 if higher_is_more_similar else -1.0
    o, s = sign * obs, sign * nl
    combined = np.sort(np.concatenate([o[None], s]), axis=0)
    idx = min(max(int(math.ceil((1.0 - alpha) * (rounds + 1))) - 1, 0), rounds)
    missing = np.isnan(o)  # an unscored pair (e.g. NaN for tied data) has no p and no tau
    tau = np.where(missing, np.nan, sign * combined[idx])
    p = np.where(missing, np.nan, (1.0 + (s >= o).sum(0)) / (rounds + 1))
    return calibrated_value(obs, tau, higher_is_more_similar, s_best), p, tau


def benjamini_hochberg(p: np.ndarray | Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up FDR); NaNs are left out and kept NaN.

    p_(i)^adj = min_{j >= i} min(1, m p_(j) / j) over the m finite p-values sorted ascending
    (``scipy.stats.false_discovery_control(p, method="bh")``).
    """
    from scipy.stats import false_discovery_control

    arr = np.asarray(p, dtype=np.float64)
    out = np.full(arr.shape, np.nan)
    ok = np.isfinite(arr)
    if ok.any():
        out[ok] = false_discovery_control(arr[ok], method="bh")
    return out


# --- nulls of every pair -------------------------------------------------------------------------


class _KnnNull:
    """All ordered pairs (a, b[pi]) of CKNNA or mutual kNN in one pass per round.

    The permuted model's graph is its original graph relabelled: an edge (p, j) of y becomes the
    edge (inv_p, inv_j) of y[pi] (inv = pi^-1) with the same inner product, so a round needs two
    lookups in an N-long array per edge and no neighbour search. The union of every model's
    original edges (key i N + j) is indexed once; a round looks up the M N k relabelled edges in it
    and expands each hit to every model holding that edge, giving the mutual edges S_ab of all
    pairs at once. Per pair (with K = a's and L = b's edge values on S_ab):

        mutual kNN = |S_ab| / (N k)
        HSIC_1 = [tr(K L) + (1'K1)(1'L1)/((N-1)(N-2)) - 2/(N-2) 1'K L 1] / (N (N-3))

    with tr(K L) over edges whose transpose is also in S_ab (:func:`~.cknna.hsic_unbiased_sparse`),
    and CKNNA = HSIC_1 / sqrt(h_a h_b) with the models' cached self terms.
    """

    dense_limit = 2**26

    def __init__(self, mode: str, graphs: Sequence[NeighbourGraph]):
        from .cknna import self_hsic
        from .neighbours import sorted_graph

        self.family = mode
        self.m = len(graphs)
        self.n, self.k = graphs[0].indices.shape
        n, k, m = self.n, self.k, self.m
        # edge keys i N + j in int32 while N^2 fits (half the memory traffic of every round)
        self.itype = np.int32 if n * n < 2**31 else np.int64
        self.cols = np.concatenate([g.indices.reshape(-1) for g in graphs]).astype(self.itype)
        self.rows = np.tile(np.repeat(np.arange(n, dtype=self.itype), k), m)
        self.vals = np.concatenate([g.values.reshape(-1) for g in graphs]).astype(np.float64)
        keys = self.rows.astype(np.int64) * n + self.cols
        order = np.argsort(keys, kind="stable")
        self.owner = order // (n * k)                      # model of each sorted original edge
        self.kval = self.vals[order]
        self.unique, self.start = np.unique(keys[order], return_index=True)
        self.stop = np.append(self.start[1:], keys.size)
        self.table = self.bits = None
        if n * n <= self.dense_limit:
            self.table = np.full(n * n, -1, dtype=np.int32 if self.unique.size < 2**31 else
                                 np.int64)
            self.table[self.unique] = np.arange(self.unique.size)
            present = np.zeros(n * n, dtype=bool)
            present[self.unique] = True
            self.bits = np.packbits(present, bitorder="little")  # N^2 / 8 bytes: stays in cache
        sgs = [sorted_graph(g) for g in graphs]
        self.h = np.array([self_hsic(sg) for sg in sgs]) if self.family == "cknna" else None
        # recip[e]: the reverse of original edge e is an edge of the same model. (j, i) is in
        # S_ab exactly when a's edge and b's (relabelled) edge both have their reverse, so the
        # tr(K L) term needs no per-round search.
        self.recip = np.concatenate([_has_reverse(g.indices, sg.keys) for g, sg in
                                     zip(graphs, sgs, strict=True)])
        self.recip_sorted = self.recip[order]

    def _hits(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the keys present in the union of original edges, and their entries."""
        if self.table is not None:
            q = np.flatnonzero((self.bits[key >> 3] >> (key & 7).astype(np.uint8)) & 1)
            return q, self.table[key[q]].astype(np.int64)
        pos = np.minimum(np.searchsorted(self.unique, key), self.unique.size - 1)
        q = np.flatnonzero(self.unique[pos] == key)
        return q, pos[q]

    def round(self, perm: np.ndarray) -> np.ndarray:
        """(M, M) null scores of one permutation: [a, b] = score(a, b[perm]); NaN diagonal."""
        n, k, m = self.n, self.k, self.m
        inv = np.empty(n, dtype=self.itype)
        inv[perm] = np.arange(n)
        ri, cj = inv[self.rows], inv[self.cols]                # relabelled edges, original order
        q, u = self._hits(ri * n + cj)
        counts = self.stop[u] - self.start[u]
        first = self.start[u] - (np.cumsum(counts) - counts)
        q = np.repeat(q, counts)
        h = np.repeat(first, counts) + np.arange(q.size)
        a, b = self.owner[h], q // (n * k)
        keep = a != b
        q, h, pair = q[keep], h[keep], a[keep] * m + b[keep]
        if self.family == "mknn":
            out = np.bincount(pair, minlength=m * m) / (n * k)
        else:
            both = self.recip[q] & self.recip_sorted[h]
            out = self._cknna(pair, ri[q], cj[q], self.kval[h], self.vals[q], both)
        out = out.reshape(m, m).astype(np.float64)
        np.fill_diagonal(out, np.nan)
        return out

    def _cknna(self, pair: np.ndarray, i: np.ndarray, j: np.ndarray, kv: np.ndarray,
               lv: np.ndarray, both: np.ndarray) -> np.ndarray:
        """CKNNA of every pair from its mutual edges (pair id a M + b, rows i, cols j, values;
        ``both``: the edge's reverse is also a mutual edge of the pair)."""
        n, m = self.n, self.m
        mm = m * m
        tr = np.bincount(pair[both], weights=kv[both] * lv[both], minlength=mm)
        sk = np.bincount(pair, weights=kv, minlength=mm)
        sl = np.bincount(pair, weights=lv, minlength=mm)
        # 1'KL1 = sum_j colsum(K)_j rowsum(L)_j, per pair; the matches come grouped by b (pair =
        # a M + b ascending in b's edges), so each b's M pairs use an (M, N) table in cache.
        cross = np.zeros(mm)
        b = pair % m
        bounds = np.searchsorted(b, np.arange(m + 1)) if np.all(np.diff(b) >= 0) else None
        for bb in range(m):
            sel = slice(bounds[bb], bounds[bb + 1]) if bounds is not None else b == bb
            a = pair[sel] // m
            colk = np.bincount(a * n + j[sel], weights=kv[sel], minlength=m * n)
            rowl = np.bincount(a * n + i[sel], weights=lv[sel], minlength=m * n)
            cross[bb::m] = (colk * rowl).reshape(m, n).sum(1)
        hab = (tr + sk * sl / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)) / (n * (n - 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            den = np.sqrt(np.outer(self.h, self.h)).ravel()
            return np.where(den > 0, hab / den, np.nan)


def _has_reverse(indices: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each edge (i, indices[i, t]) in row-major order: is (indices[i, t], i) an edge too?"""
    n, k = indices.shape
    rev = indices.reshape(-1).astype(np.int64) * n + np.repeat(np.arange(n, dtype=np.int64), k)
    pos = np.minimum(np.searchsorted(keys, rev), keys.size - 1)
    return keys[pos] == rev


def has_relabelled_null(spec: MetricSpec) -> bool:
    """True for measures whose null round is a relabelling of per-model data: neighbour graphs
    (CKNNA, mutual kNN: one edge lookup per round, :class:`_KnnNull`) and distance ranks
    (information imbalance: N k gathered ranks per pair, up to :data:`DENSE_NULL_BYTES`), so
    thousands of rounds are cheap."""
    return isinstance(kernel_for(spec, resolve_backend("cpu")),
                      (NeighbourGraphKernel, ImbalanceKernel))


def null_matrices(
    spec: MetricSpec,
    xs: Sequence[np.ndarray],
    names: Sequence[str],
    be: Backend,
    perms: np.ndarray,
    progress: bool | None = None,
) -> np.ndarray:
    """Null score matrices: out[r, a, b] = score(x_a, x_b[perms[r]]) for every ordered pair.

    Per-model work is done once: kNN graphs are relabelled (:class:`_KnnNull`, all pairs of a
    round from one edge lookup), CKA/SVCCA/Procrustes/ridge states have their rows permuted,
    and the streamed metrics (dCor, RBF CKA, II, IdCor) score all pairs of a round in one pass
    against the permuted tiles with self terms cached. RSA recomputes the permuted ranks.

    Parameters
    ----------
    spec : MetricSpec
    xs : M arrays (N, D_m), already preprocessed (:func:`~.engine.prepare_inputs`)
    names : M str
    be : Backend
    perms : (R, N) int array (:func:`permutations`)

    Returns
    -------
    (R, M, M) float64; the diagonal is NaN (a model is not compared with itself).
    """
    m, rounds = len(xs), perms.shape[0]
    null = np.full((rounds, m, m), np.nan)
    kern = kernel_for(spec, be)
    label = f"{spec.id}: permutations"
    if isinstance(kern, NeighbourGraphKernel):
        graphs = [nearest_neighbours(x, spec.k, "inner", be, name=nm)
                  for x, nm in zip(xs, names, strict=True)]
        fast = _KnnNull(kern.mode, graphs)
        with progress_bar(rounds, label, progress) as adv:
            for r in range(rounds):
                null[r] = fast.round(perms[r])
                adv(1)
        return null
    n = xs[0].shape[0]
    if isinstance(kern, (DcorKernel, RbfCkaKernel)) and 2 * m * n * n * 8 <= DENSE_NULL_BYTES:
        return _dense_cross_null(kern, xs, names, be, perms, progress, label)
    if isinstance(kern, ImbalanceKernel) and m * n * n * 4 <= DENSE_NULL_BYTES:
        return _dense_rank_null(kern, xs, names, be, perms, progress, label)
    if kern.streamed:
        cache = kern.self_terms(xs, names)
        with progress_bar(rounds, label, progress) as adv:
            for r in range(rounds):
                null[r] = kern.matrix(xs, [x[perms[r]] for x in xs], names, None,
                                      self_cache=cache)
                adv(1)
        np.einsum("rii->ri", null)[:] = np.nan
        return null
    states = [kern.prepare(x, nm) for x, nm in zip(xs, names, strict=True)]
    with progress_bar(rounds, label, progress) as adv:
        for r in range(rounds):
            pst = [kern.permute(st, x, perms[r]) for st, x in zip(states, xs, strict=True)]
            for a in range(m):
                for b in range(m):
                    if a != b:
                        null[r, a, b] = kern.pair(states[a], pst[b])[0]
            adv(1)
    return null


def _dense_cross_null(kern: Any, xs: Sequence[np.ndarray], names: Sequence[str], be: Backend,
                      perms: np.ndarray, progress: bool | None, label: str) -> np.ndarray:
    """dCor / RBF CKA nulls from each model's whole tile T_m, kept for all rounds.

    The tile of x[pi] is T[pi][:, pi], so a round is one gather per model and one (M, N^2) x
    (N^2, M) product S = T T_pi', then the centred products from S and the (permuted) row sums,
    divided by the cached self terms, exactly as the streamed pass (:func:`~.streams.cross_sums`).
    """
    from .cka import rbf_sigma
    from .streams import centred_product, full_tile

    m, n = len(xs), xs[0].shape[0]
    unb = kern.p["unbiased"]
    kind = "distance" if isinstance(kern, DcorKernel) else "rbf"
    tiles = np.stack([full_tile(x, be, kind, rbf_sigma(x) if kind == "rbf" else None, unb)
                      for x in xs])
    flat = tiles.reshape(m, n * n)
    rows = tiles.sum(2)
    d = kern.self_terms(xs, names)
    null = np.full((perms.shape[0], m, m), np.nan)
    with progress_bar(perms.shape[0], label, progress) as adv:
        for r, p in enumerate(perms):
            moved = np.take(flat, (p[:, None] * n + p[None, :]).ravel(), axis=1)
            c = centred_product(flat @ moved.T, rows[:, None, :], rows[:, p][None, :, :], n, unb)
            null[r] = c / np.sqrt(d[:, None] * d[None, :])
            adv(1)
    np.einsum("rii->ri", null)[:] = np.nan
    return null


def _dense_rank_null(kern: Any, xs: Sequence[np.ndarray], names: Sequence[str], be: Backend,
                     perms: np.ndarray, progress: bool | None, label: str) -> np.ndarray:
    """Information-imbalance nulls from each model's whole rank matrix, kept for all rounds.

    rank of (i, j) in x[pi] is rank(pi_i, pi_j) in x, so Delta(a -> b[pi]) =
    2 / (N^2 k) sum_i sum_{j in kNN_a(i)} rank_b(pi_i, pi_j): a gather of N k ranks per pair.
    """
    from .information_imbalance import imbalance_from_rank_sums
    from .streams import distance_ranks

    m, n = len(xs), xs[0].shape[0]
    k = kern.p["k"]
    knn = kern.self_terms(xs, names)
    ranks = [distance_ranks(x, be) for x in xs]
    rows = np.repeat(np.arange(n), k)
    null = np.full((perms.shape[0], m, m), np.nan)
    with progress_bar(perms.shape[0], label, progress) as adv:
        for r, p in enumerate(perms):
            total = np.empty((m, m))
            for a in range(m):
                i, j = p[rows], p[np.asarray(knn[a]).reshape(-1)]
                for b in range(m):
                    total[a, b] = ranks[b][i, j].sum(dtype=np.int64)
            null[r] = imbalance_from_rank_sums(total, n, k)
            adv(1)
    np.einsum("rii->ri", null)[:] = np.nan
    return null


@dataclass
class CalibratedScores:
    """Raw and calibrated scores of every model pair, with their permutation statistics.

    Attributes
    ----------
    metric : MetricSpec
    rows : DataFrame
        One row per pair (symmetric metrics: each unordered pair once; asymmetric: both orders):
        model_a, model_b, metric, raw, null_mean, null_sd, tau, calibrated, p_value, p_fdr
        (Benjamini-Hochberg over the rows of this matrix), headroom = |s_best - tau|,
        null_fills_range (headroom < :data:`MIN_HEADROOM`), n_permutations, seed, restricted.
    null : (R, M, M) array
        The null matrices.
    """

    metric: MetricSpec
    rows: pd.DataFrame
    null: np.ndarray

    def matrix(self, column: str = "calibrated") -> pd.DataFrame:
        """An (M, M) matrix of one column (symmetric metrics filled both ways; diagonal NaN)."""
        names = list(dict.fromkeys([*self.rows.model_a, *self.rows.model_b]))
        out = pd.DataFrame(np.nan, index=names, columns=names, dtype=float)
        for r in self.rows.itertuples():
            out.loc[r.model_a, r.model_b] = getattr(r, column)
            if self.metric.symmetric:
                out.loc[r.model_b, r.model_a] = getattr(r, column)
        out.index.name, out.columns.name = "model_a", "model_b"
        return out


def calibrated_scores(
    embeddings: Mapping[str, Any],
    metric: str | MetricSpec,
    n_permutations: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    groups: Sequence[Any] | np.ndarray | None = None,
    observed: pd.DataFrame | None = None,
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
    precision: str | None = None,
    progress: bool | None = None,
    **params: Any,
) -> CalibratedScores:
    """Permutation-calibrate every pair of a score matrix (all pairs share each round's pi).

    Parameters
    ----------
    embeddings : mapping of model name -> (N, D_m) array
    metric : str or MetricSpec
    n_permutations : int
        Rounds R; the smallest attainable p is 1 / (R + 1).
    seed : int
    alpha : float
        Level of tau (:func:`calibrate`).
    groups : (N,) labels, optional
        Restrict permutations to within groups (:func:`permutations`).
    observed : (M, M) DataFrame, optional
        The raw matrix already computed (e.g. the one ``align`` stored); default: scored here.
    preprocessing, device, precision, progress, **params
        As :func:`~matteralign.metrics.pairwise`.

    Returns
    -------
    CalibratedScores
    """
    spec = get_metric(metric, **params)
    if spec.per_model:
        raise ValueError(f"{spec.id} is a per-model metric; a pair permutation null does not "
                         "apply.")
    fewest = math.ceil(1 / alpha) - 1
    if n_permutations < fewest:
        raise ValueError(
            f"{n_permutations} permutation rounds cannot calibrate at alpha = {alpha}: tau would "
            f"be the observed score itself; use at least {fewest} (1,000 gives p down to 0.001)."
        )
    be = resolve_backend(device, precision)
    names, xs = prepare_inputs(embeddings, spec, preprocessing)
    n = xs[0].shape[0]
    if observed is None:
        value, _ = score_matrix(spec, xs, names, be, progress=False)
    else:
        value = observed.loc[names, names].to_numpy(dtype=float)
    perms = permutations(n, n_permutations, seed, groups)
    null = null_matrices(spec, xs, names, be, perms, progress)
    cal, p, tau = calibrate(value, null, spec.higher_is_more_similar, alpha)
    best = _best(spec)
    m = len(names)
    pairs = [(a, b) for a in range(m) for b in range(m) if a != b and (not spec.symmetric or a < b)]
    recs = []
    for a, b in pairs:
        nl = null[:, a, b]
        headroom = abs(best - float(tau[a, b]))
        recs.append({
            "model_a": names[a], "model_b": names[b], "metric": spec.id,
            "raw": float(value[a, b]), "null_mean": float(np.mean(nl)),
            "null_sd": float(np.std(nl, ddof=1)) if n_permutations > 1 else float("nan"),
            "tau": float(tau[a, b]), "calibrated": float(cal[a, b]),
            "p_value": float(p[a, b]), "headroom": headroom,
            "null_fills_range": bool(headroom < MIN_HEADROOM),
            "n_permutations": n_permutations, "seed": seed, "restricted": groups is not None,
        })
    rows = pd.DataFrame(recs)
    if not rows.empty:
        rows.insert(rows.columns.get_loc("p_value") + 1, "p_fdr",
                    benjamini_hochberg(rows.p_value.to_numpy()))
    return CalibratedScores(spec, rows, null)


def _layer_aggregate(
    spec: MetricSpec, agg: str | Callable[[np.ndarray], float]
) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
    """The aggregate over layer pairs as a function of (R, L_a, L_b) blocks -> (R,), and whether
    it selects one layer pair (max: the best pair, i.e. the minimum for a dissimilarity)."""
    if callable(agg):
        return (lambda block: np.array([agg(b) for b in block], dtype=np.float64)), False
    if agg == "mean":
        return (lambda block: block.mean(axis=(1, 2))), False
    if agg == "max":  # over the scored layer pairs (NaN only when none is scored)
        best = np.fmax if spec.higher_is_more_similar else np.fmin
        return (lambda block: best.reduce(block, axis=(1, 2))), True
    raise ValueError(f"agg must be 'max', 'mean' or a callable, not {agg!r}")


def calibrated_layer_scores(
    layers: Mapping[str, Mapping[str, np.ndarray]],
    metric: str | MetricSpec,
    agg: str | Callable[[np.ndarray], float] = "max",
    n_permutations: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    groups: Sequence[Any] | np.ndarray | None = None,
    observed: Mapping[tuple[str, str], np.ndarray] | None = None,
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
) -> pd.DataFrame:
    """Calibrate the aggregate over layer pairs of every model pair (Gröger et al. Algorithm 2).

    For models a, b with layers A_1..A_La, B_1..B_Lb the statistic is
    T_ab = agg_{l, l'} s(A_l, B_l'); a round applies ONE permutation pi to every layer of every
    model, so T_ab^(r) = agg_{l, l'} s(A_l, B_l'[pi_r]) carries the same search over layer pairs as
    the observed T_ab (the best of L_a L_b pairs is not compared with the null of one pair). All
    layers of all models share one null pass (:func:`null_matrices`: per-layer work, e.g. kNN
    graphs, done once per block of rounds); a block holds at most :data:`DENSE_NULL_BYTES` / 8 of
    null matrices (one block up to ~180 layers in all at 1,000 rounds).
    Calibrated, p and tau as :func:`calibrate`.

    Parameters
    ----------
    layers : mapping of model id to (mapping of layer name to (N, D_l) array)
        Every array holds the same N samples in the same order; models in input order.
    metric : str or MetricSpec
    agg : {"max", "mean"} or callable on the (L_a, L_b) score matrix
        "max" is the best layer pair (the minimum for a dissimilarity).
    n_permutations : int
        Rounds R (smallest p = 1 / (R + 1)).
    seed : int
    alpha : float
    groups : (N,) labels, optional
        Restrict permutations to within groups (:func:`permutations`).
    observed : mapping of (model_a, model_b) to (L_a, L_b) array, optional
        The layer-pair scores already computed (row = layer of a, column = layer of b); default:
        scored here.
    preprocessing : sequence of str
    device : str

    Returns
    -------
    DataFrame
        One row per model pair (a before b in input order): model_a, model_b, observed (T_ab),
        layer_a, layer_b (the selected pair for "max", else None), calibrated, p_value, tau,
        p_selected (for "max": p of the selected pair against its own single-pair null from the
        same rounds, i.e. the naive p that ignores the selection; NaN otherwise), n_layer_pairs,
        n_permutations, seed.
    """
    spec = get_metric(metric)
    reduce, selects = _layer_aggregate(spec, agg)
    models = list(layers)
    names_of = {m: list(layers[m]) for m in models}
    flat = {f"{m} layer {name}": x for m in models for name, x in layers[m].items()}
    if len(flat) != sum(len(v) for v in names_of.values()):
        raise ValueError("model and layer names must give distinct '<model> layer <name>' labels")
    be = resolve_backend(device, "float64")
    names, xs = prepare_inputs(flat, spec, preprocessing)
    start, pos = {}, 0
    for m in models:
        start[m], pos = pos, pos + len(names_of[m])
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]

    def block(mat: np.ndarray, a: str, b: str) -> np.ndarray:
        ra = slice(start[a], start[a] + len(names_of[a]))
        rb = slice(start[b], start[b] + len(names_of[b]))
        return mat[..., ra, rb]

    if observed is None:
        value, _ = score_matrix(spec, xs, names, be, progress=False)
        obs = {(a, b): block(value, a, b) for a, b in pairs}
    else:
        obs = {(a, b): np.asarray(observed[(a, b)], dtype=np.float64) for a, b in pairs}
    pick = np.nanargmax if spec.higher_is_more_similar else np.nanargmin
    chosen = {pr: np.unravel_index(pick(obs[pr]), obs[pr].shape) for pr in pairs
              if selects and not np.isnan(obs[pr]).all()}  # an all-NaN pair selects no layer
    perms = permutations(xs[0].shape[0], n_permutations, seed, groups)
    per_block = max(1, DENSE_NULL_BYTES // (8 * 8 * len(xs) ** 2))
    agg_null = {pr: np.empty(n_permutations) for pr in pairs}
    own_null = {pr: np.empty(n_permutations) for pr in chosen}
    for lo in range(0, n_permutations, per_block):
        hi = min(lo + per_block, n_permutations)
        null = null_matrices(spec, xs, names, be, perms[lo:hi], progress=False)
        for a, b in pairs:
            sub = block(null, a, b)
            agg_null[(a, b)][lo:hi] = reduce(sub)
            if (a, b) in chosen:
                own_null[(a, b)][lo:hi] = sub[(slice(None), *chosen[(a, b)])]
    recs = []
    for a, b in pairs:
        t = float(reduce(obs[(a, b)][None])[0])
        cal, p, tau = calibrate(t, agg_null[(a, b)], spec.higher_is_more_similar, alpha)
        rec = {"model_a": a, "model_b": b, "observed": t, "layer_a": None, "layer_b": None,
               "calibrated": float(cal), "p_value": float(p), "tau": float(tau),
               "p_selected": float("nan")}
        if (a, b) in chosen:
            ia, ib = chosen[(a, b)]
            rec.update(layer_a=names_of[a][ia], layer_b=names_of[b][ib], p_selected=float(
                calibrate(t, own_null[(a, b)], spec.higher_is_more_similar, alpha)[1]))
        recs.append({**rec, "n_layer_pairs": obs[(a, b)].size,
                     "n_permutations": n_permutations, "seed": seed})
    return pd.DataFrame(recs)


def calibrate_layers(
    layers_a: Sequence[np.ndarray],
    layers_b: Sequence[np.ndarray],
    metric: str | MetricSpec,
    agg: str | Callable[[np.ndarray], float] = "max",
    n_permutations: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    groups: Sequence[Any] | np.ndarray | None = None,
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
) -> dict[str, float]:
    """Calibrate an aggregate (max or mean) over all layer pairs of two models (Gröger et al.
    Algorithm 2): :func:`calibrated_layer_scores` for the one pair.

    T = agg_{l, l'} s(A_l, B_l'); each round applies ONE permutation to every layer of B, so the
    null of T carries the same search over layer pairs as the observed T (the best of many layer
    pairs is not compared with the null of one). Calibrated as :func:`calibrate`.

    Parameters
    ----------
    layers_a, layers_b : sequences of (N, D_l) arrays
    metric : str or MetricSpec
    agg : {"max", "mean"} or callable on the (L_a, L_b) score matrix
        For a dissimilarity, "max" means the best layer pair, i.e. the minimum.

    Returns
    -------
    dict
        observed, calibrated, p_value, tau, p_selected, n_permutations.
    """
    row = calibrated_layer_scores(
        {"a": {str(i): x for i, x in enumerate(layers_a)},
         "b": {str(j): y for j, y in enumerate(layers_b)}},
        metric, agg, n_permutations, seed, alpha=alpha, groups=groups,
        preprocessing=preprocessing, device=device).iloc[0]
    return {"observed": float(row.observed), "calibrated": float(row.calibrated),
            "p_value": float(row.p_value), "tau": float(row.tau),
            "p_selected": float(row.p_selected), "n_permutations": n_permutations}
