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
from ._checks import EmbeddingError, as_embedding, check_k, check_shape
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
from .preprocess import apply_preprocessing
from .registry import MetricSpec, get_metric
from .streams import centred_product, cross_sums, pair_two_nn, rank_sums

__all__ = ["AlignmentResult", "pairwise"]


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


class _PairLocal:
    """A family scored pair by pair from per-model states."""

    streamed = False

    def __init__(self, spec: MetricSpec, be: Backend):
        self.spec, self.p, self.be = spec, dict(spec.params), be

    def prepare(self, x: np.ndarray, name: str, groups: np.ndarray | None = None) -> Any:
        raise NotImplementedError

    def permute(self, state: Any, x: np.ndarray, perm: np.ndarray) -> Any:
        """State of x[perm]; default recomputes (overridden where a relabel is cheaper)."""
        return self.prepare(x[perm], "permuted")

    def pair(self, a: Any, b: Any) -> tuple[float, dict[str, float]]:
        raise NotImplementedError


class _Knn(_PairLocal):
    def prepare(self, x, name, groups=None):
        g = nearest_neighbours(x, self.p["k"], "inner", self.be, groups=groups, name=name)
        sg = sorted_graph(g)
        return {"g": g, "sg": sg, "h": self_hsic(sg) if self.spec.family == "cknna" else None}

    def permute(self, state, x, perm):
        return {"g": state["g"], "sg": sorted_graph(state["g"], perm), "h": state["h"]}

    def pair(self, a, b):
        diag = {"tied_fraction_a": a["g"].tied_fraction, "tied_fraction_b": b["g"].tied_fraction}
        if self.be.neighbours == "approximate":
            diag |= {"recall_a": a["g"].recall, "recall_b": b["g"].recall}
        if self.spec.family == "mknn":
            return mutual_knn_from_graphs(a["sg"], b["sg"]), diag
        v, n_mutual = cknna_from_graphs(a["sg"], b["sg"], a["h"], b["h"])
        return v, {**diag, "n_mutual": float(n_mutual)}

    def batched_matrix(self, xs, names, progress, groups=None):
        """All pairs on the device at once (:func:`~.knn_pairs.knn_pair_matrix`), row by row.

        Same matrix as :meth:`pair` over all pairs (to float64 rounding of the sums) and the same
        diagonal and diagnostics layout as :func:`score_matrix`'s pair loop.
        """
        graphs = []
        with progress_bar(len(xs), f"{self.spec.id}: models", progress) as adv:
            for x, nm in zip(xs, names, strict=True):
                graphs.append(nearest_neighbours(x, self.p["k"], "inner", self.be, groups=groups,
                                                 name=nm))
                adv(1)
        m = len(graphs)
        values, mutual = knn_pair_matrix(StackedGraphs.build(graphs, self.be), self.spec.family,
                                         self.be)
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
        if self.spec.family == "cknna":
            diags["n_mutual"] = np.where(written, mutual, np.nan)
        else:
            values = np.where(written, values, values.T)
        return values, diags


class _LinearCka(_PairLocal):
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


class _Factored(_PairLocal):
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


class _Svcca(_Factored):
    """Factor: the orthonormal (N, r) basis kept by the variance cut (:func:`svcca_basis`)."""

    self_value = 1.0

    def prepare(self, x, name, groups=None):
        return svcca_basis(x, self.p["variance"], name)

    def scores(self, a, b, c):
        v = svcca_from_block(c)
        return v, v

    def diagnostics(self, a, b):
        return {"rank_a": float(a.shape[1]), "rank_b": float(b.shape[1])}


class _Procrustes(_Factored):
    """Factor: centred unit-norm features, or U S of their thin SVD when D > N
    (:func:`procrustes_state`)."""

    self_value = 0.0

    def prepare(self, x, name, groups=None):
        return procrustes_state(x, name)

    def scores(self, a, b, c):
        v = procrustes_from_block(c)
        return v, v


class _Linrec(_Factored):
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


class _Streamed:
    """A family scored for all pairs in one streamed pass: matrix(left, right)."""

    streamed = True

    def __init__(self, spec: MetricSpec, be: Backend):
        self.spec, self.p, self.be = spec, dict(spec.params), be

    def self_terms(self, xs: Sequence[np.ndarray], names: Sequence[str]) -> Any:
        return None

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None) -> np.ndarray:
        raise NotImplementedError


class _CrossSum(_Streamed):
    """dCor (distance tiles) and RBF CKA (kernel tiles)."""

    def _kind(self):
        return "distance" if self.spec.family == "dcor" else "rbf"

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None):
        n = xs[0].shape[0]
        unb = self.p["unbiased"]
        sig = None
        if self._kind() == "rbf":
            sig = [rbf_sigma(x) for x in xs] + ([rbf_sigma(x) for x in right] if right else [])
        s, rl, rr = cross_sums(xs, right, self.be, self._kind(), sig, zero_diag=unb,
                               progress=progress)
        if right is None:
            if self.spec.family == "dcor":
                out = dcor_from_sums(s, rl, n, unb)
            else:
                c = centred_product(s, rl[:, None, :], rl[None, :, :], n, unb)
                d = np.sqrt(np.where(np.diag(c) > 0, np.diag(c), np.nan))
                out = c / d[:, None] / d[None, :]
            bad = [names[i] for i in np.flatnonzero(np.isnan(np.diag(out)))]
            if bad:
                raise EmbeddingError(
                    f"models {bad}: all rows identical (no variance); {self.spec.id} undefined."
                )
            return out
        c = centred_product(s, rl[:, None, :], rr[None, :, :], n, unb)
        d = self_cache
        return c / np.sqrt(d[:, None] * d[None, :])

    def self_terms(self, xs, names):
        n = xs[0].shape[0]
        unb = self.p["unbiased"]
        sig = [rbf_sigma(x) for x in xs] if self._kind() == "rbf" else None
        s, rl, _ = cross_sums(xs, None, self.be, self._kind(), sig, zero_diag=unb)
        return np.diag(centred_product(s, rl[:, None, :], rl[None, :, :], n, unb)).copy()


class _Imbalance(_Streamed):
    def self_terms(self, xs, names):
        return [nearest_neighbours(x, self.p["k"], "euclidean", self.be, name=nm).indices
                for x, nm in zip(xs, names, strict=True)]

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None):
        n, k = xs[0].shape[0], self.p["k"]
        knn = self_cache or [
            nearest_neighbours(x, k, "euclidean", self.be, groups=groups, name=nm).indices
            for x, nm in zip(xs, names, strict=True)]
        r = rank_sums(knn, right if right is not None else xs, self.be, progress, groups=groups)
        return imbalance_from_rank_sums(r, n, k)


class _IdCor(_Streamed):
    def self_terms(self, xs, names, groups=None):
        return [id_from_graph_values(
            nearest_neighbours(x, 2, "euclidean", self.be, groups=groups, name=nm).values,
            "twonn", 2, 0.1, nm) for x, nm in zip(xs, names, strict=True)]

    def matrix(self, xs, right, names, progress, self_cache=None, groups=None):
        ids = self_cache or self.self_terms(xs, names, groups)
        m = len(xs)
        if right is None:
            pairs = [(a, b) for a in range(m) for b in range(a + 1, m)]
        else:
            pairs = [(a, b) for a in range(m) for b in range(m)]
        r = pair_two_nn(xs, pairs, self.be, right=right, progress=progress, groups=groups)
        out = np.ones((m, m))
        for (a, b), rp in zip(pairs, r, strict=True):
            id_xy = id_from_graph_values(rp, "twonn", 2, 0.1, f"[{names[a]}|{names[b]}]")
            out[a, b] = idcor_value(ids[a], ids[b], id_xy)
            if right is None:
                out[b, a] = out[a, b]
        return out


class _Rsa(_Streamed):
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


_KERNELS: dict[str, type] = {
    "cknna": _Knn, "mknn": _Knn, "svcca": _Svcca, "procrustes": _Procrustes, "rsa": _Rsa,
    "linrec": _Linrec, "dcor": _CrossSum, "ii": _Imbalance, "idcor": _IdCor,
}


def kernel_for(spec: MetricSpec, be: Backend) -> Any:
    """The engine kernel that scores ``spec``."""
    if spec.family == "cka":
        return (_LinearCka if spec.params["kernel"] == "linear" else _CrossSum)(spec, be)
    if spec.family not in _KERNELS:
        raise KeyError(f"{spec.id} is a per-model metric; it has no pair kernel.")
    return _KERNELS[spec.family](spec, be)


# --- input handling ------------------------------------------------------------------------------


def prepare_inputs(
    embeddings: Mapping[str, Any],
    spec: MetricSpec,
    preprocessing: Sequence[str],
    be: Backend | None = None,
) -> tuple[list[str], list[np.ndarray]]:
    """Validate, preprocess and check that all models embed the same N samples.

    On a CUDA backend, CKNNA and mutual kNN without preprocessing keep each array in its own
    dtype here and check its values on the device (:func:`~.neighbours.nearest_neighbours`), so
    60 float32 inputs are not widened and scanned on the host first.
    """
    if not isinstance(embeddings, Mapping) or len(embeddings) == 0:
        raise EmbeddingError("embeddings must be a non-empty mapping {model name: (N, D) array}.")
    names = [str(n) for n in embeddings]
    min_n = 4 if spec.family in ("cknna", "cka", "dcor") else 3
    on_device = (be is not None and be.device.type == "cuda" and spec.family in ("cknna", "mknn")
                 and not preprocessing)
    xs = []
    for name, x in embeddings.items():
        try:
            if on_device:
                xs.append(check_shape(x, str(name), min_samples=min_n))
                continue
            arr = as_embedding(x, str(name), min_samples=min_n)
            arr = apply_preprocessing(arr, preprocessing)
        except EmbeddingError as err:
            raise EmbeddingError(f"model {name!r}: {err}") from None
        xs.append(arr)
    ns = {x.shape[0] for x in xs}
    if len(ns) > 1:
        sizes = {n: x.shape[0] for n, x in zip(names, xs, strict=True)}
        raise EmbeddingError(
            f"models embed different numbers of samples {sizes}; every model must embed the same "
            "inputs in the same order."
        )
    k = spec.params.get("k")
    if k is not None:
        n_nb = 2 * k if spec.params.get("method") == "gride" else k
        check_k(n_nb, xs[0].shape[0], names[0])
    return names, xs


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
    if isinstance(kern, _Knn) and be.device.type == "cuda":
        return kern.batched_matrix(list(xs), names, progress, groups)
    if isinstance(kern, _Factored):
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
    embeddings: Mapping[str, Any],
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
    embeddings : mapping of model name -> (N, D_m) array
        All models embed the same N samples in the same order.
    metric : str or MetricSpec
        A registry id (see :func:`list_metrics`), e.g. "cknna-k10".
    preprocessing : sequence of str
        Steps applied to every model first, recorded in the result: "clamp-q0.95", "max-abs", "l2".
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
    """
    t0 = time.perf_counter()
    spec = get_metric(metric, **params)
    be = resolve_backend(device, precision, neighbours)
    names, xs = prepare_inputs(embeddings, spec, preprocessing, be)
    pre = tuple(preprocessing)
    if spec.per_model:
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
    mat, diags = score_matrix(spec, xs, names, be, progress)
    return result_from_matrix(spec, names, mat, diags, pre, xs[0].shape[0], t0)


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
