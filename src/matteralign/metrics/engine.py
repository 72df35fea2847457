"""All-pairs engine: scores M models against each other, computing per-model work once.

Per-model state (neighbour lists, norms, centred features, bases) is built once; pair kernels are
O(N k) or one small GEMM; dCor, RBF CKA, II and IdCor run one streamed pass for all pairs.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ._backend import Backend, resolve_backend
from ._checks import EmbeddingError, check_k, check_shape, check_values, check_values_on_device
from .cka import linear_cross, linear_state, rbf_sigma
from .cknna import cknna_from_graphs, self_hsic
from .classical import (
    procrustes_from_block,
    procrustes_state,
    ridge_r2_from_block,
    ridge_state,
    rsa_matrix,
    svcca_basis,
    svcca_from_block,
)
from .dcor import dcor_from_sums
from .idcor import idcor_value
from .information_imbalance import imbalance_from_rank_sums
from .intrinsic_dimension import id_from_graph_values
from .knn import mutual_knn_from_graphs
from .knn_pairs import StackedGraphs, knn_pair_matrix
from .neighbours import nearest_neighbours, sorted_graph
from .preprocess import check_steps, preprocess_values
from .registry import MetricSpec, get_metric
from .streams import centred_product, cross_sums, pair_two_nn, rank_sums

__all__ = [
    "AlignmentResult",
    "PreparedModels",
    "check_scorable",
    "kernel_for",
    "pairwise",
    "prepare_models",
]


@dataclass
class AlignmentResult:
    """Scores of every model pair (or every model, for per-model metrics).

    Attributes
    ----------
    metric : MetricSpec
    matrix : (M, M) DataFrame or None
        Labelled by model names; matrix.loc[a, b] = score(a -> b) for asymmetric metrics.
        None for per-model metrics.
    per_model : Series or None
        Per-model values (intrinsic dimension); None for pairwise metrics.
    rows : DataFrame
        Long form: model_a, model_b, metric, value, plus diagnostics columns. Symmetric metrics
        list each unordered pair once (a before b in input order), asymmetric ones both orders;
        per-model metrics have model_b = None.
    preprocessing : tuple of str
    n_samples : int
    seconds : float
    """

    metric: MetricSpec
    matrix: pd.DataFrame | None
    per_model: pd.Series | None
    rows: pd.DataFrame
    preprocessing: tuple[str, ...] = ()
    n_samples: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# --- progress -----------------------------------------------------------------------------------


@contextmanager
def progress_bar(total: int, label: str, enabled: bool | None) -> Iterator[Callable[[int], None]]:
    """A transient rich progress bar; a no-op when disabled or stderr is not a TTY."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total <= 0:
        yield lambda _n: None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), TimeRemainingColumn(), transient=True,
    ) as prog:
        task = prog.add_task(label, total=total)
        yield lambda n: prog.advance(task, n)


# --- per-family kernels ------------------------------------------------------------------------


class PairKernel:
    """A family scored pair by pair from per-model states."""

    streamed = False
    device_inputs = False  # True: accepts (N, D) float64 tensors on the backend's device

    def __init__(self, spec: MetricSpec, be: Backend):
        self.spec, self.p, self.be = spec, dict(spec.params), be

    def prepare(self, x: np.ndarray, name: str, groups: np.ndarray | None = None) -> Any:
        raise NotImplementedError

    def permute(self, state: Any, x: np.ndarray, perm: np.ndarray) -> Any:
        """State of x[perm]; default recomputes (overridden where a relabel is cheaper)."""
        return self.prepare(x[perm], "permuted")

    def pair(self, a: Any, b: Any) -> tuple[float, dict[str, float]]:
        raise NotImplementedError


class NeighbourGraphKernel(PairKernel):
    """CKNNA (``mode = "cknna"``) or mutual kNN (``"mknn"``) from per-model neighbour graphs."""

    mode = "cknna"
    device_inputs = True

    def prepare(self, x, name, groups=None):
        g = nearest_neighbours(x, self.p["k"], "inner", self.be, groups=groups, name=name,
                               checked=True)
        sg = sorted_graph(g)
        return {"g": g, "sg": sg, "h": self_hsic(sg) if self.mode == "cknna" else None}

    def permute(self, state, x, perm):
        return {"g": state["g"], "sg": sorted_graph(state["g"], perm), "h": state["h"]}

    def pair(self, a, b):
        diag = {"tied_fraction_a": a["g"].tied_fraction, "tied_fraction_b": b["g"].tied_fraction}
        if self.be.neighbours == "approximate":
            diag |= {"recall_a": a["g"].recall, "recall_b": b["g"].recall}
        if self.mode == "mknn":
            return mutual_knn_from_graphs(a["sg"], b["sg"]), diag
        v, n_mutual = cknna_from_graphs(a["sg"], b["sg"], a["h"], b["h"])
        return v, {**diag, "n_mutual": float(n_mutual)}

    def graph(self, x, name, groups=None):
        """The model's neighbour graph (the per-model state of :meth:`rows_matrix`)."""
        with self.be.stage("knn: total"):
            return nearest_neighbours(x, self.p["k"], "inner", self.be, groups=groups, name=name,
                                      checked=True)

    def rows_matrix(self, graphs, rows=None):
        """Rows ``rows`` (default all) of the M x M matrix from all models' graphs, batched on the
        device (:func:`~.knn_pairs.knn_pair_matrix`): values and mutual-edge counts, (R, M)."""
        return knn_pair_matrix(StackedGraphs.build(graphs, self.be), self.mode, self.be, rows)

    def batched_matrix(self, xs, names, progress, groups=None):
        """All pairs on the device at once (:func:`~.knn_pairs.knn_pair_matrix`), row by row.

        Same matrix as :meth:`pair` over all pairs (to float64 rounding of the sums) and the same
        diagonal and diagnostics layout as :func:`score_matrix`'s pair loop.
        """
        graphs = []
        with progress_bar(len(xs), f"{self.spec.id}: models", progress) as adv:
            for x, nm in zip(xs, names, strict=True):
                graphs.append(self.graph(x, nm, groups))
                adv(1)
        m = len(graphs)
        values, mutual = self.rows_matrix(graphs)
        tied = np.array([g.tied_fraction for g in graphs])
        # where the pair loop writes diagnostics: a != b (CKNNA), a <= b (mutual kNN)
        written = (np.triu(np.ones((m, m), dtype=bool)) if self.spec.symmetric
                   else ~np.eye(m, dtype=bool))
        diags = {"tied_fraction_a": np.where(written, tied[:, None], np.nan),
                 "tied_fraction_b": np.where(written, tied[None, :], np.nan)}
        if self.be.neighbours == "approximate":
            recall = np.array([g.recall for g in graphs])
            diags |= {"recall_a": np.where(written, recall[:, None], np.nan),
                      "recall_b": np.where(written, recall[None, :], np.nan)}
        if self.mode == "cknna":
            diags["n_mutual"] = np.where(written, mutual, np.nan)
        else:
            values = np.where(written, values, values.T)
        return values, diags


class CknnaKernel(NeighbourGraphKernel):
    """CKNNA from neighbour graphs: O(N k) per pair after one search per model."""

    mode = "cknna"


class MutualKnnKernel(NeighbourGraphKernel):
    """Mutual kNN from neighbour graphs."""

    mode = "mknn"


class LinearCkaKernel(PairKernel):
    """Linear CKA (biased or unbiased) from centred features and per-model self terms."""

    device_inputs = True

    def prepare(self, x, name, groups=None):
        return linear_state(x, self.be, self.p["unbiased"], name)

    def permute(self, state, x, perm):
        import torch

        pt = torch.as_tensor(perm, device=self.be.device)
        return type(state)(state.xc[pt], state.sq[pt], state.kone[pt], state.sum_k, state.self_term)

    def pair(self, a, b):
        v = linear_cross(a, b, self.p["unbiased"]) / float(np.sqrt(a.self_term * b.self_term))
        return v, {}


def _blas_threads(limit: int) -> Any:
    """Context limiting BLAS/LAPACK to ``limit`` threads (no-op without threadpoolctl).

    LAPACK SVDs of a few hundred columns gain little from threads and, when another process
    shares the cores, OpenBLAS's threads wait on each other: on a loaded 2-core machine a
    (887, 476) ``svd(compute_uv=False)`` took 4.1 s with 2 threads and 0.07 s with 1. The
    factored kernels therefore run their SVDs single-threaded, several at once in a thread pool.
    Process-wide: enter it from one thread only.
    """
    global _THREADPOOL
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    if _THREADPOOL is None:
        _THREADPOOL = ThreadpoolController()
    return _THREADPOOL.limit(limits=limit, user_api="blas")


_THREADPOOL: Any = None


def _worker_count() -> int:
    """Threads for per-model and per-pair LAPACK work: the usable cores, at most the BLAS threads
    this process was started with (so OMP_NUM_THREADS=1 keeps everything on one core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        from threadpoolctl import threadpool_info

        blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    except ImportError:  # pragma: no cover
        blas = []
    return max(1, min(cores or 1, max(blas) if blas else cores or 1, 8))


def _available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class FactoredKernel(PairKernel):
    """A family whose pair score is a function of one block F_a' F_b of per-model (N, r_m) factors.

    SVCCA (orthonormal bases after the variance cut), Procrustes (centred unit-norm features) and
    ridge R^2 (left singular vectors). :meth:`batched_matrix` stacks all factors column-wise into
    one (N, R) float64 array (R = sum r_m, Fortran order, so each model's factor is contiguous) and
    forms its Gram F'F in column groups of at most ``gram_bytes`` per block (one float64 GEMM
    through torch per block, on the backend's device), so no pair does its own N-long product;
    per pair only the (r_a, r_b) block is reduced (singular values, traces), in a thread pool with
    single-threaded LAPACK. :meth:`pair` computes the same block with one GEMM (per-pair callers:
    permutation nulls, the Ray engine).
    """

    gram_bytes = 2**31
    self_value: float | None = None  # score of a model against itself, by definition

    def permute(self, state: Any, x: np.ndarray, perm: np.ndarray) -> Any:
        """State of x[perm]: the rows of the factor (default: the state is the factor)."""
        return state[perm]

    def factor(self, state: Any) -> np.ndarray:
        """The (N, r) factor of a state (default: the state itself)."""
        return state

    def with_factor(self, state: Any, f: np.ndarray) -> Any:
        """The state with its factor replaced by ``f`` (a view into the stacked factors)."""
        return f

    def scores(self, a: Any, b: Any, c: np.ndarray) -> tuple[float, float]:
        """score(a -> b), score(b -> a) from the block C = F_a' F_b."""
        raise NotImplementedError

    def diagnostics(self, a: Any, b: Any) -> dict[str, float]:
        return {}

    def factor_columns(self, n: int, d: int) -> int:
        """Upper bound of a model's factor width r for an (N, D) input."""
        return min(n, d)

    def pair(self, a, b):
        if a is b and self.self_value is not None:
            return self.self_value, self.diagnostics(a, b)
        c = self.factor(a).T @ self.factor(b)
        with _blas_threads(1):
            v = self.scores(a, b, c)[0]
        return v, self.diagnostics(a, b)

    def _check_memory(self, xs: Sequence[np.ndarray], workers: int) -> None:
        n = xs[0].shape[0]
        widths = [self.factor_columns(n, x.shape[1]) for x in xs]
        cols = max(max(widths), int(np.sqrt(self.gram_bytes / 8)))
        need = 8 * (n * sum(widths) + min(sum(widths), cols) ** 2
                    + workers * 3 * n * max(x.shape[1] for x in xs))
        avail = _available_bytes()
        if avail is not None and need > avail:
            raise EmbeddingError(
                f"{self.spec.id}: {len(xs)} models at N={n} need about {need / 1e9:.1f} GB "
                f"(stacked factors {8 * n * sum(widths) / 1e9:.1f} GB, one Gram block and SVD "
                f"scratch), but only {avail / 1e9:.1f} GB is available; score fewer models per "
                "call or fewer samples."
            )

    def _gram(self, big: np.ndarray, lo: int, hi: int, lo2: int, hi2: int) -> np.ndarray:
        """Block big[:, lo:hi]' big[:, lo2:hi2] in float64 (on the backend's device).

        Formed by torch on CPU as well: numpy 2.5's symmetric-product path (SYRK, OpenBLAS
        0.3.34) crashed on these column slices at 60 models x N = 10,000.
        """
        left = self.be.tensor(big[:, lo:hi])
        right = left if (lo, hi) == (lo2, hi2) else self.be.tensor(big[:, lo2:hi2])
        return (left.T @ right).cpu().numpy()

    def batched_matrix(self, xs, names, progress, groups=None):
        """All pairs from one (column-grouped) Gram of the stacked factors.

        Same matrix, diagonal and diagnostics layout as :func:`score_matrix`'s pair loop; values
        equal :meth:`pair` to float64 rounding of the N-long sums.
        """
        m, n = len(xs), xs[0].shape[0]
        workers = _worker_count()
        self._check_memory(xs, workers)
        with _blas_threads(1), progress_bar(m, f"{self.spec.id}: models", progress) as adv:
            def prep(i):
                st = self.prepare(xs[i], names[i])
                adv(1)
                return st

            states = pool_map(prep, range(m), workers)
        widths = [self.factor(st).shape[1] for st in states]
        off = np.concatenate([[0], np.cumsum(widths)]).astype(int)
        big = np.empty((n, int(off[-1])), order="F")
        for i, st in enumerate(states):
            big[:, off[i] : off[i + 1]] = self.factor(st)
            states[i] = self.with_factor(st, big[:, off[i] : off[i + 1]])
            del st
        cols = max(max(widths), int(np.sqrt(self.gram_bytes / 8)))
        model_groups, g0 = [], 0
        for i in range(1, m + 1):
            if i == m or off[i + 1] - off[g0] > cols:
                model_groups.append((g0, i))
                g0 = i
        out = np.full((m, m), np.nan)
        diags: dict[str, np.ndarray] = {}
        sym = self.spec.symmetric
        with progress_bar(m * (m + 1) // 2, f"{self.spec.id}: pairs", progress) as adv:
            for gi, (a0, a1) in enumerate(model_groups):
                for b0, b1 in model_groups[gi:]:
                    gram = self._gram(big, off[a0], off[a1], off[b0], off[b1])
                    todo = [(a, b) for a in range(a0, a1) for b in range(max(a, b0), b1)]

                    def one(ab, gram=gram, a0=a0, b0=b0):
                        a, b = ab
                        if a == b and self.self_value is not None:
                            return self.self_value, self.self_value
                        c = gram[off[a] - off[a0] : off[a + 1] - off[a0],
                                 off[b] - off[b0] : off[b + 1] - off[b0]]
                        return self.scores(states[a], states[b], c)

                    with _blas_threads(1):
                        results = list(pool_map(one, todo, workers))
                    for (a, b), (v_ab, v_ba) in zip(todo, results, strict=True):
                        out[a, b], out[b, a] = v_ab, v_ba
                        written = [(a, b)] if sym else ([(a, b), (b, a)] if a != b else [])
                        for i, j in written:
                            for key, val in self.diagnostics(states[i], states[j]).items():
                                diags.setdefault(key, np.full((m, m), np.nan))[i, j] = val
                    adv(len(todo))
                    del gram
        return out, diags


def pool_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    """``[fn(x) for x in items]`` on ``workers`` threads (in order)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


class SvccaKernel(FactoredKernel):
    """Factor: the orthonormal (N, r) basis kept by the variance cut (:func:`svcca_basis`)."""

    self_value = 1.0

    def prepare(self, x, name, groups=None):
        return svcca_basis(x, self.p["variance"], name)

    def scores(self, a, b, c):
        v = svcca_from_block(c)
        return v, v

    def diagnostics(self, a, b):
        return {"rank_a": float(a.shape[1]), "rank_b": float(b.shape[1])}


class ProcrustesKernel(FactoredKernel):
    """Factor: centred unit-norm features, or U S of their thin SVD when D > N
    (:func:`procrustes_state`)."""

    self_value = 0.0

    def prepare(self, x, name, groups=None):
        return procrustes_state(x, name)

    def scores(self, a, b, c):
        v = procrustes_from_block(c)
        return v, v


class LinrecKernel(FactoredKernel):
    """Factor: U of the thin SVD of Xc; both directions of a pair from one block U_a' U_b
    (:func:`ridge_r2_from_block`)."""

    def prepare(self, x, name, groups=None):
        return ridge_state(x, self.p["alpha"], name)

    def permute(self, state, x, perm):
        return replace(state, u=state.u[perm])

    def factor(self, state):
        return state.u

    def with_factor(self, state, f):
        return replace(state, u=f)

    def scores(self, a, b, c):
        return ridge_r2_from_block(a, b, c)


class StreamedKernel:
    """A family scored for all pairs in one streamed pass: matrix(left, right)."""

    streamed = True
    device_inputs = False  # True: accepts (N, D) float64 tensors on the backend's device

    def __init__(self, spec: MetricSpec, be: Backend):
        self.spec, self.p, self.be = spec, dict(spec.params), be

    def self_terms(self, xs: Sequence[np.ndarray], names: Sequence[str]) -> Any:
        return None

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None) -> np.ndarray:
        raise NotImplementedError

    # the same matrix as row blocks that can run anywhere (the Ray engine): per-model terms,
    # then one partial result per block [start, stop) of sample rows, then a reduction in block
    # order; a kernel without blocks (``distributable = False``) runs :meth:`matrix` whole.
    distributable = False

    def model_terms(self, x: np.ndarray, name: str) -> Any:
        """Per-model input of :meth:`rows_partial` (one task per model)."""
        return None

    def rows_partial(self, xs: Sequence[np.ndarray], terms: Sequence[Any], start: int,
                     stop: int) -> Any:
        """The sums of sample rows [start, stop) for all pairs."""
        raise NotImplementedError

    def combine(self, parts: Sequence[Any], xs: Sequence[np.ndarray], terms: Sequence[Any],
                names: Sequence[str]) -> np.ndarray:
        """(M, M) matrix from the partial results of consecutive row blocks covering [0, N)."""
        raise NotImplementedError


class _CrossSum(StreamedKernel):
    """dCor (distance tiles, ``kind = "distance"``) and RBF CKA (kernel tiles, ``"rbf"``)."""

    kind = "distance"
    device_inputs = True

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None):
        n = xs[0].shape[0]
        unb = self.p["unbiased"]
        sig = None
        if self.kind == "rbf":
            sig = [rbf_sigma(x) for x in xs] + ([rbf_sigma(x) for x in right] if right else [])
        s, rl, rr = cross_sums(xs, right, self.be, self.kind, sig, zero_diag=unb,
                               progress=progress)
        if right is None:
            out = self._from_sums(s, rl, n)
            bad = [names[i] for i in np.flatnonzero(np.isnan(np.diag(out)))]
            if bad:
                raise EmbeddingError(
                    f"models {bad}: all rows identical (no variance); {self.spec.id} undefined."
                )
            return out
        c = centred_product(s, rl[:, None, :], rr[None, :, :], n, unb)
        d = self_cache
        return c / np.sqrt(d[:, None] * d[None, :])

    distributable = True

    def model_terms(self, x, name):
        return rbf_sigma(x) if self.kind == "rbf" else None

    def rows_partial(self, xs, terms, start, stop):
        """Partial S (M, M) over rows [start, stop) and the row sums (M, stop - start)."""
        s, rows, _ = cross_sums(xs, None, self.be, self.kind, terms, zero_diag=self.p["unbiased"],
                                row_range=(start, stop))
        return s, rows

    def combine(self, parts, xs, terms, names):
        s = sum(part for part, _ in parts)
        rl = np.concatenate([rows for _, rows in parts], axis=1)
        return self._from_sums(s, rl, xs[0].shape[0])

    def _from_sums(self, s, rl, n):
        """dCor or RBF CKA of all pairs from the tile sums S (M, M) and row sums (M, N)."""
        unb = self.p["unbiased"]
        if self.kind == "distance":
            return dcor_from_sums(s, rl, n, unb)
        c = centred_product(s, rl[:, None, :], rl[None, :, :], n, unb)
        d = np.sqrt(np.where(np.diag(c) > 0, np.diag(c), np.nan))
        return c / d[:, None] / d[None, :]

    def self_terms(self, xs, names):
        n = xs[0].shape[0]
        unb = self.p["unbiased"]
        sig = [rbf_sigma(x) for x in xs] if self.kind == "rbf" else None
        s, rl, _ = cross_sums(xs, None, self.be, self.kind, sig, zero_diag=unb)
        return np.diag(centred_product(s, rl[:, None, :], rl[None, :, :], n, unb)).copy()


class DcorKernel(_CrossSum):
    """Distance correlation of all pairs from one streamed pass over distance tiles."""

    kind = "distance"


class RbfCkaKernel(_CrossSum):
    """RBF CKA of all pairs from one streamed pass over kernel tiles."""

    kind = "rbf"


class ImbalanceKernel(StreamedKernel):
    """Information imbalance of all pairs: per-model neighbour lists, then one streamed pass of
    rank sums."""

    device_inputs = True

    distributable = True

    def model_terms(self, x, name):
        return nearest_neighbours(x, self.p["k"], "euclidean", self.be, name=name,
                                  checked=True).indices

    def rows_partial(self, xs, terms, start, stop):
        return rank_sums(terms, xs, self.be, row_range=(start, stop))

    def combine(self, parts, xs, terms, names):
        return imbalance_from_rank_sums(sum(parts), xs[0].shape[0], self.p["k"])

    def self_terms(self, xs, names):
        return [self.model_terms(x, nm) for x, nm in zip(xs, names, strict=True)]

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None):
        n, k = xs[0].shape[0], self.p["k"]
        knn = self_cache or [
            nearest_neighbours(x, k, "euclidean", self.be, groups=groups, name=nm,
                               checked=True).indices
            for x, nm in zip(xs, names, strict=True)]
        r = rank_sums(knn, right if right is not None else xs, self.be, progress, groups=groups)
        return imbalance_from_rank_sums(r, n, k)


class IdCorKernel(StreamedKernel):
    """IdCor of all pairs: per-model TwoNN, then one streamed pass over concatenated spaces."""

    device_inputs = True

    distributable = True

    def model_terms(self, x, name, groups=None):
        """The model's TwoNN intrinsic dimension."""
        return id_from_graph_values(
            nearest_neighbours(x, 2, "euclidean", self.be, groups=groups, name=name,
                               checked=True).values, "twonn", 2, 0.1, name)

    def rows_partial(self, xs, terms, start, stop):
        m = len(xs)
        pairs = [(a, b) for a in range(m) for b in range(a + 1, m)]
        return pair_two_nn(xs, pairs, self.be, row_range=(start, stop))

    def combine(self, parts, xs, terms, names):
        return self._from_two_nn(np.concatenate(parts, axis=1), terms, names, None)

    def self_terms(self, xs, names, groups=None):
        return [self.model_terms(x, nm, groups) for x, nm in zip(xs, names, strict=True)]

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None):
        ids = self_cache or self.self_terms(xs, names, groups)
        m = len(xs)
        pairs = self._pairs(m, right)
        r = pair_two_nn(xs, pairs, self.be, right=right, progress=progress, groups=groups)
        return self._from_two_nn(r, ids, names, right)

    @staticmethod
    def _pairs(m, right):
        if right is None:
            return [(a, b) for a in range(m) for b in range(a + 1, m)]
        return [(a, b) for a in range(m) for b in range(m)]

    def _from_two_nn(self, r, ids, names, right):
        m = len(ids)
        pairs = self._pairs(m, right)
        out = np.ones((m, m))
        for (a, b), rp in zip(pairs, r, strict=True):
            id_xy = id_from_graph_values(rp, "twonn", 2, 0.1, f"[{names[a]}|{names[b]}]")
            out[a, b] = idcor_value(ids[a], ids[b], id_xy)
            if right is None:
                out[b, a] = out[a, b]
        return out


class RsaKernel(StreamedKernel):
    """RSA for all pairs at once: each model's doubled distance ranks go to scratch disk (4 bytes
    per pair i < j), then one chunked float64 Gram of the centred ranks (:func:`rsa_matrix`)."""

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None):
        n, m = xs[0].shape[0], len(xs) + len(right or [])
        done = [0]

        def advance(_one):
            done[0] += 1
            if progress is not None:
                progress(n * done[0] // m - n * (done[0] - 1) // m)

        return rsa_matrix(xs, right, names, progress=advance)


def kernel_for(spec: MetricSpec, be: Backend) -> Any:
    """The engine kernel that scores ``spec`` on ``be`` (the one its family registered)."""
    return spec.kernel(be)


def cka_kernel(spec: MetricSpec, be: Backend) -> PairKernel | StreamedKernel:
    """Linear CKA's pair kernel or RBF CKA's streamed kernel, by the spec's ``kernel`` parameter."""
    return (LinearCkaKernel if spec.params["kernel"] == "linear" else RbfCkaKernel)(spec, be)


# --- input handling ------------------------------------------------------------------------------


@dataclass
class PreparedModels:
    """Every model of one command, validated and preprocessed once, where it will be scored.

    Built by :func:`prepare_models`; every metric of the command scores from it (:func:`pairwise`
    accepts it in place of the mapping), so each model is copied to the device, preprocessed and
    checked once per command, not once per metric.

    Attributes
    ----------
    names : list of str
        Models that can be scored, in input order.
    values : list of (N, D_m) float64 arrays or tensors
        Preprocessed; NumPy on the host, torch tensors on ``backend.device`` for a CUDA backend.
    preprocessing : tuple of str
    backend : Backend
    dropped : dict of str to str
        Models left out (only with ``drop_degenerate``) and why: NaN/inf, a constant embedding
        (every row the same vector, :data:`~._checks.CONSTANT_RTOL`), or a failed step.
    """

    names: list[str]
    values: list[Any]
    preprocessing: tuple[str, ...]
    backend: Backend
    dropped: dict[str, str] = field(default_factory=dict)
    _host: list[np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_samples(self) -> int:
        return int(self.values[0].shape[0]) if self.values else 0

    @property
    def on_device(self) -> bool:
        return self.backend.device.type != "cpu"

    def host(self) -> list[np.ndarray]:
        """The values as float64 NumPy arrays (copied back once from a device, then kept)."""
        if not self.on_device:
            return self.values
        if self._host is None:
            self._host = [v.cpu().numpy() for v in self.values]
        return self._host

    def for_kernel(self, kern: Any) -> list[Any]:
        """The values in the form ``kern`` takes: device tensors where it accepts them."""
        return self.values if kern.device_inputs else self.host()


def prepare_models(
    embeddings: Mapping[str, Any],
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
    *,
    drop_degenerate: bool = False,
) -> PreparedModels:
    """Validate, preprocess and check every model once, where the data will be scored.

    On CPU each model becomes a C-contiguous float64 array (one conversion, none when it is one
    already), its steps run in NumPy and it is checked for NaN/inf and a constant embedding. On a
    CUDA backend each model is copied to the device once in its own dtype (float32 stays float32
    on the wire), widened to float64 there, and the checks and steps run on the device.

    Parameters
    ----------
    embeddings : mapping of model name -> (N, D_m) array
    preprocessing : sequence of str
        Steps of :func:`~.preprocess.apply_preprocessing`, in order.
    device : str, torch.device or Backend
    drop_degenerate : bool
        Leave a model that cannot be scored out (recorded in ``dropped`` with its reason) instead
        of raising: the rule of ``matteralign align``.

    Raises
    ------
    EmbeddingError
        Not a non-empty mapping of 2-D real arrays; models of different N; a model that cannot be
        scored (NaN/inf, constant after preprocessing, a zero row under "l2") unless
        ``drop_degenerate``.
    """
    if not isinstance(embeddings, Mapping) or len(embeddings) == 0:
        raise EmbeddingError("embeddings must be a non-empty mapping {model name: (N, D) array}.")
    be = resolve_backend(device)
    pre = tuple(preprocessing)
    check_steps(pre)
    shapes = {}
    names, values, dropped = [], [], {}
    for name, x in embeddings.items():
        name = str(name)
        arr = check_shape(x, name, min_samples=1)
        shapes[name] = arr.shape[0]
        try:
            ready = _prepare_one(arr, name, pre, be)
        except EmbeddingError as err:
            if not drop_degenerate:
                raise EmbeddingError(f"model {name!r}: {err}") from None
            dropped[name] = str(err)
            continue
        names.append(name)
        values.append(ready)
    if len(set(shapes.values())) > 1:
        raise EmbeddingError(
            f"models embed different numbers of samples {shapes}; every model must embed the same "
            "inputs in the same order."
        )
    return PreparedModels(names, values, pre, be, dropped)


def _prepare_one(arr: np.ndarray, name: str, pre: tuple[str, ...], be: Backend) -> Any:
    """One model: to float64 where it is scored, checked, preprocessed, checked again.

    Raises EmbeddingError whose message is the reason alone (no model name)."""
    with be.stage("prepare: to float64 on the device"):
        if be.device.type == "cpu":
            x = np.ascontiguousarray(arr, dtype=np.float64)
            check = check_values
        else:
            x = _upload(arr, be)
            check = check_values_on_device
    try:
        with be.stage("prepare: checks and steps"):
            check(x, "", allow_constant=True)
            if pre:
                try:
                    x = preprocess_values(x, pre)
                except EmbeddingError as err:
                    raise EmbeddingError(f"preprocessing {','.join(pre)} failed: "
                                         f"{str(err).removeprefix('x: ')}") from None
            check(x, "")
    except EmbeddingError as err:
        raise EmbeddingError(str(err).removeprefix(": ")) from None
    return x


def _upload(arr: np.ndarray, be: Backend) -> Any:
    """One host -> device copy in the array's own float dtype, then float64 on the device."""
    import torch

    if not (arr.dtype in (np.float32, np.float64) and arr.dtype.isnative):
        arr = arr.astype(np.float64)
    return torch.as_tensor(np.ascontiguousarray(arr)).to(be.device).to(torch.float64)


def check_scorable(spec: MetricSpec, n: int, name: str = "the models") -> None:
    """Raise :class:`EmbeddingError` when ``spec`` cannot score N samples: N below the family's
    minimum, or N <= the neighbours it needs (k; 2k for GRIDE). The rule every caller shares: a
    measure that does not fit N is not scored (k is never lowered)."""
    if n < spec.min_samples:
        raise EmbeddingError(
            f"{name}: {n} samples, but {spec.id} needs at least {spec.min_samples}; embed more "
            "samples."
        )
    need = spec.neighbours_needed
    if need is not None:
        check_k(need, n, name)


def prepare_inputs(
    embeddings: Mapping[str, Any],
    spec: MetricSpec,
    preprocessing: Sequence[str],
    be: Backend | None = None,
) -> tuple[list[str], list[Any]]:
    """Validate, preprocess and check that all models embed the same N samples (one metric).

    :func:`prepare_models` then :func:`check_scorable`; the values come in the form the spec's
    kernel takes on ``be`` (host float64 arrays when ``be`` is None).
    """
    be = be or resolve_backend("cpu")
    prepared = prepare_models(embeddings, preprocessing, be)
    check_scorable(spec, prepared.n_samples, prepared.names[0])
    if spec.per_model:
        return prepared.names, prepared.host()
    return prepared.names, prepared.for_kernel(kernel_for(spec, be))


def score_matrix(
    spec: MetricSpec,
    xs: Sequence[np.ndarray],
    names: Sequence[str],
    be: Backend,
    progress: bool | None = None,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All-pairs matrix (M, M) and per-pair diagnostics matrices for one metric."""
    m = len(xs)
    kern = kernel_for(spec, be)
    diags: dict[str, np.ndarray] = {}
    if isinstance(kern, NeighbourGraphKernel) and be.device.type == "cuda":
        return kern.batched_matrix(list(xs), names, progress, groups)
    if isinstance(kern, FactoredKernel):
        return kern.batched_matrix(list(xs), names, progress, groups)
    if kern.streamed:
        n = xs[0].shape[0]
        with progress_bar(n, f"{spec.id}: row blocks", progress) as adv:
            return kern.matrix(list(xs), None, names, adv, groups=groups), diags
    states = []
    with progress_bar(m, f"{spec.id}: models", progress) as adv:
        for x, nm in zip(xs, names, strict=True):
            states.append(kern.prepare(x, nm, groups))
            adv(1)
    out = np.full((m, m), np.nan)
    pairs = [(a, b) for a in range(m) for b in range(m)
             if (a != b or spec.symmetric) and (not spec.symmetric or a <= b)]
    with progress_bar(len(pairs), f"{spec.id}: pairs", progress) as adv:
        for a, b in pairs:
            v, d = kern.pair(states[a], states[b])
            out[a, b] = v
            if spec.symmetric:
                out[b, a] = v
            for key, val in d.items():
                diags.setdefault(key, np.full((m, m), np.nan))[a, b] = val
            adv(1)
    if not spec.symmetric:
        for a in range(m):
            out[a, a] = kern.pair(states[a], states[a])[0]
    return out, diags


def pairwise(
    embeddings: Mapping[str, Any] | PreparedModels,
    metric: str | MetricSpec,
    *,
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
    precision: str | None = None,
    neighbours: str = "exact",
    progress: bool | None = None,
    **params: Any,
) -> AlignmentResult:
    """Score every pair of models (or every model, for intrinsic dimension) with one metric.

    Each model's per-model work is done once and reused for all pairs: neighbour lists (indices
    and values) and CKNNA self terms; centred features and Gram norms (CKA); SVD bases (SVCCA,
    Procrustes, ridge); distance ranks (RSA). CKNNA and mutual kNN then cost O(N k log) per pair
    (on CUDA, all pairs of a row are batched on the device: :mod:`~matteralign.metrics.knn_pairs`).
    dCor, RBF CKA, information imbalance and IdCor stream over row blocks of all models' distance
    tiles in one pass, with float64 sums, so no N x N matrix per pair is ever held.

    Parameters
    ----------
    embeddings : mapping of model name -> (N, D_m) array, or PreparedModels
        All models embed the same N samples in the same order. A :class:`PreparedModels`
        (:func:`prepare_models`) is scored as it is, on its backend: ``preprocessing``, ``device``,
        ``precision`` and ``neighbours`` are then its own, so several metrics share one upload,
        one preprocessing and one check per model.
    metric : str or MetricSpec
        A registry id (see :func:`list_metrics`), e.g. "cknna-k10".
    preprocessing : sequence of str
        Steps applied to every model first, recorded in the result: "clamp-q0.95", "max-abs", "l2".
        On CUDA they run on the GPU after one host -> device copy per model.
    device : {"cpu", "cuda", "auto"}
    precision : {"float64", "float32"}, optional
        Tile GEMM precision; default float64 on CPU, float32/TF32 on CUDA (neighbours re-ranked in
        float64, sums in float64).
    neighbours : {"exact", "approximate"}
        "approximate" screens neighbour lists in bfloat16 (CUDA) or float32 (CPU) without the
        exactness certificate, for very large N; CKNNA and mutual kNN then report each model's
        measured neighbour recall (diagnostics ``recall_a``, ``recall_b``).
    progress : bool, optional
        Rich progress bar (transient); default only when stderr is a TTY.
    **params
        Override the id's parameters, e.g. ``k=10``.

    Returns
    -------
    AlignmentResult

    Raises
    ------
    EmbeddingError
        Bad input (named by model), or N too small for the measure (:func:`check_scorable`).
    MetricError
        Unknown metric id or parameter.
    """
    t0 = time.perf_counter()
    spec = get_metric(metric, **params)
    if isinstance(embeddings, PreparedModels):
        prepared = embeddings
    else:
        prepared = prepare_models(embeddings, preprocessing,
                                  resolve_backend(device, precision, neighbours))
    be, names, pre = prepared.backend, prepared.names, prepared.preprocessing
    if len(names) == 0:
        raise EmbeddingError("no model can be scored: " + "; ".join(
            f"{nm}: {why}" for nm, why in prepared.dropped.items()))
    check_scorable(spec, prepared.n_samples, names[0])
    if spec.per_model:
        xs = prepared.host()
        vals = []
        with progress_bar(len(xs), f"{spec.id}: models", progress) as adv:
            for x, nm in zip(xs, names, strict=True):
                try:
                    vals.append(spec.function(x, **spec.params, device=be))
                except EmbeddingError as err:
                    raise EmbeddingError(f"model {nm!r}: {err}") from None
                adv(1)
        series = pd.Series(vals, index=names, name=spec.id)
        rows = pd.DataFrame({"model_a": names, "model_b": None, "metric": spec.id, "value": vals,
                             "preprocessing": "|".join(pre)})
        return AlignmentResult(spec, None, series, rows, pre, xs[0].shape[0],
                               time.perf_counter() - t0)
    xs = prepared.for_kernel(kernel_for(spec, be))
    with be.stage("score: total (knn and pairs included)"):
        mat, diags = score_matrix(spec, xs, names, be, progress)
    with be.stage("result table"):
        return result_from_matrix(spec, names, mat, diags, pre, prepared.n_samples, t0)


def result_from_matrix(
    spec: MetricSpec,
    names: list[str],
    mat: np.ndarray,
    diags: dict[str, np.ndarray],
    pre: Sequence[str],
    n: int,
    started: float,
) -> AlignmentResult:
    """Label an (M, M) score matrix and its per-pair diagnostics as an :class:`AlignmentResult`.

    The long-form rows hold each ordered pair a != b once (each unordered pair once when the
    measure is symmetric).
    """
    frame = pd.DataFrame(mat, index=names, columns=names)
    frame.index.name, frame.columns.name = "model_a", "model_b"
    recs = []
    m = len(names)
    for a in range(m):
        for b in range(m):
            if a == b or (spec.symmetric and b < a):
                continue
            rec = {"model_a": names[a], "model_b": names[b], "metric": spec.id,
                   "value": float(mat[a, b]), "preprocessing": "|".join(pre)}
            for key, d in diags.items():
                rec[key] = float(d[a, b])
            recs.append(rec)
    rows = pd.DataFrame(recs, columns=["model_a", "model_b", "metric", "value", "preprocessing",
                                       *diags])
    return AlignmentResult(spec, frame, None, rows, tuple(pre), n, time.perf_counter() - started)
