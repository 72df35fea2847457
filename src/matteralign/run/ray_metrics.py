"""The all-pairs metric engine split into blocks across Ray workers (or in process), then reduced.

Per-model work (neighbour graphs, centred features, bases) runs as one task per model; pair-local
scores (CKNNA, mutual kNN, linear CKA, SVCCA, ...) as blocks of rows of the M x M matrix; streamed
scores (dCor, RBF CKA, information imbalance, IdCor) as row blocks of the samples whose partial
sums are added in block order. Every task runs the metric's own engine kernel
(:func:`matteralign.metrics.engine.kernel_for`) through its public methods, so results equal
:func:`matteralign.metrics.pairwise` (to rounding of the float64 sums).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from matteralign.metrics._backend import resolve_backend
from matteralign.metrics.engine import (
    AlignmentResult,
    NeighbourGraphKernel,
    kernel_for,
    prepare_inputs,
    result_from_matrix,
)
from matteralign.metrics.neighbours import NeighbourGraph
from matteralign.metrics.registry import MetricSpec, get_metric

__all__ = [
    "BlockRunner",
    "InProcessRunner",
    "RayRunner",
    "pairwise_blocks",
    "ray_pairwise",
]


# ---- runners: where blocks run ---------------------------------------------------------------


class BlockRunner:
    """Runs block functions; ``put`` shares an object with workers, ``map`` runs calls."""

    def put(self, obj: Any) -> Any:
        return obj

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
        raise NotImplementedError


class InProcessRunner(BlockRunner):
    """Every block in this process, in order (the single-GPU path)."""

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
        return [fn(*args) for args in calls]


class RayRunner(BlockRunner):
    """Every block a Ray task; arrays are put in the object store once and shared.

    Parameters
    ----------
    num_gpus : float
        GPUs per task (set 1 for CUDA; fractions share a GPU between tasks).
    """

    def __init__(self, num_cpus: float = 1.0, num_gpus: float = 0.0) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self._remotes: dict[Callable[..., Any], Any] = {}

    def put(self, obj: Any) -> Any:
        import ray

        return ray.put(obj)

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
        import ray

        if fn not in self._remotes:
            self._remotes[fn] = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                                           max_calls=0)(fn)
        remote = self._remotes[fn]
        return ray.get([remote.remote(*args) for args in calls])


# ---- helpers --------------------------------------------------------------------------------


def _to_device(obj: Any, device: Any = "cpu") -> Any:
    """The same object with every torch tensor moved to ``device`` (CPU: so it can travel)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if is_dataclass(obj) and not isinstance(obj, type):
        return replace(obj, **{f.name: _to_device(getattr(obj, f.name), device)
                               for f in fields(obj)})
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _row_blocks(n: int, n_blocks: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, max(1, min(n, n_blocks)) + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


# ---- tasks: each builds the spec's engine kernel where it runs ---------------------------------


def _kernel(spec: MetricSpec, device: Any, precision: str | None) -> Any:
    return kernel_for(spec, resolve_backend(device, precision))


def _knn_row_block(spec: MetricSpec, device: Any, precision: str | None, rows: Sequence[int],
                   *graphs: NeighbourGraph) -> dict[str, np.ndarray]:
    """Scores of the rows ``rows`` of the M x M matrix for CKNNA / mutual kNN."""
    values, mutual = _kernel(spec, device, precision).rows_matrix(graphs, rows)
    return {"values": values, "n_mutual": mutual,
            "tied": np.array([g.tied_fraction for g in graphs])}


def _graph(spec: MetricSpec, device: Any, precision: str | None, x: np.ndarray,
           name: str) -> NeighbourGraph:
    return _kernel(spec, device, precision).graph(x, name)


def _prepare_state(spec: MetricSpec, device: Any, precision: str | None, x: np.ndarray,
                   name: str) -> Any:
    return _to_device(_kernel(spec, device, precision).prepare(x, name))


def _pair_block(spec: MetricSpec, device: Any, precision: str | None,
                pairs: Sequence[tuple[int, int]], index: Sequence[int], *states: Any
                ) -> list[tuple[float, dict[str, float]]]:
    """Scores of ``pairs`` (model indices) given the states of the models in ``index``."""
    be = resolve_backend(device, precision)
    kern = kernel_for(spec, be)
    where = {model: i for i, model in enumerate(index)}
    states = tuple(_to_device(state, be.device) for state in states)
    return [kern.pair(states[where[a]], states[where[b]]) for a, b in pairs]


def _per_model(spec: MetricSpec, device: Any, x: np.ndarray) -> float:
    return spec.function(x, **spec.params, device=device)


def _model_terms(spec: MetricSpec, device: Any, precision: str | None, x: np.ndarray,
                 name: str) -> Any:
    return _kernel(spec, device, precision).model_terms(x, name)


def _rows_partial(spec: MetricSpec, device: Any, precision: str | None, start: int, stop: int,
                  n_models: int, *arrays: Any) -> Any:
    """One row block of a streamed kernel; ``arrays`` holds the M embeddings, then M terms."""
    return _kernel(spec, device, precision).rows_partial(arrays[:n_models], arrays[n_models:],
                                                         start, stop)


# ---- the distributed engine ----------------------------------------------------------------


def _streamed_matrix(spec: MetricSpec, names: list[str], refs: list[Any], xs: list[np.ndarray],
                     runner: BlockRunner, device: Any, precision: str | None,
                     n_row_blocks: int) -> np.ndarray:
    kern = kernel_for(spec, resolve_backend("cpu"))
    if not kern.distributable:  # e.g. RSA: every model's ranks go to one scratch disk
        return kern.matrix(list(xs), None, names, None)
    n, m = xs[0].shape[0], len(xs)
    terms = runner.map(_model_terms, [(spec, device, precision, r, nm)
                                      for r, nm in zip(refs, names, strict=True)])
    term_refs = [runner.put(t) for t in terms]
    parts = runner.map(_rows_partial, [(spec, device, precision, a, b, m, *refs, *term_refs)
                                       for a, b in _row_blocks(n, n_row_blocks)])
    return kern.combine(parts, xs, terms, names)


def pairwise_blocks(
    embeddings: Mapping[str, Any],
    metric: str | MetricSpec,
    *,
    runner: BlockRunner | None = None,
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
    precision: str | None = None,
    n_row_blocks: int = 4,
    pairs_per_block: int = 64,
    **params: Any,
) -> AlignmentResult:
    """:func:`matteralign.metrics.pairwise`, computed as blocks that ``runner`` distributes.

    Parameters
    ----------
    embeddings : mapping of model name -> (N, D_m) array
    metric : str or MetricSpec
    runner : BlockRunner, optional
        :class:`RayRunner` for a cluster; default :class:`InProcessRunner`.
    device, precision
        Where each block computes (see :class:`~matteralign.metrics._backend.Backend`).
    n_row_blocks : int
        Sample row blocks for streamed metrics (dCor, RBF CKA, II, IdCor).
    pairs_per_block : int
        Pairs per task for pair-local metrics; CKNNA / mutual kNN use row blocks of the M x M
        matrix of about that many pairs.

    Returns
    -------
    AlignmentResult
        Same matrix, rows and diagnostics as the single-process engine.
    """
    t0 = time.perf_counter()
    runner = runner or InProcessRunner()
    spec = get_metric(metric, **params)
    names, xs = prepare_inputs(embeddings, spec, preprocessing)
    pre = tuple(preprocessing)
    m, n = len(xs), xs[0].shape[0]
    refs = [runner.put(x) for x in xs]
    device_name = device if isinstance(device, str) else str(device)
    if spec.per_model:
        vals = runner.map(_per_model, [(spec, device_name, r) for r in refs])
        series = pd.Series(vals, index=names, name=spec.id)
        rows = pd.DataFrame({"model_a": names, "model_b": None, "metric": spec.id, "value": vals,
                             "preprocessing": "|".join(pre)})
        return AlignmentResult(spec, None, series, rows, pre, n, time.perf_counter() - t0)
    diags: dict[str, np.ndarray] = {}
    kern = kernel_for(spec, resolve_backend("cpu"))
    if kern.streamed:
        mat = _streamed_matrix(spec, names, refs, xs, runner, device_name, precision, n_row_blocks)
    elif isinstance(kern, NeighbourGraphKernel):
        graphs = runner.map(_graph, [(spec, device_name, precision, r, nm)
                                     for r, nm in zip(refs, names, strict=True)])
        graph_refs = [runner.put(g) for g in graphs]
        per = max(1, pairs_per_block // max(1, m))
        row_sets = [list(range(s, min(m, s + per))) for s in range(0, m, per)]
        parts = runner.map(_knn_row_block, [(spec, device_name, precision, rows, *graph_refs)
                                            for rows in row_sets])
        mat = np.vstack([p["values"] for p in parts])
        mutual = np.vstack([p["n_mutual"] for p in parts])
        tied = parts[0]["tied"]
        if spec.symmetric:
            upper = np.triu(mat)
            mat = upper + np.triu(mat, 1).T
        diags = {"tied_fraction_a": np.repeat(tied[:, None], m, 1),
                 "tied_fraction_b": np.repeat(tied[None, :], m, 0)}
        if kern.mode == "cknna":
            diags["n_mutual"] = mutual
    else:
        states = runner.map(_prepare_state, [(spec, device_name, precision, r, nm)
                                             for r, nm in zip(refs, names, strict=True)])
        state_refs = [runner.put(s) for s in states]
        pairs = [(a, b) for a in range(m) for b in range(m)
                 if (a != b or spec.symmetric) and (not spec.symmetric or a <= b)]
        if not spec.symmetric:
            pairs += [(a, a) for a in range(m)]
        chunks = [pairs[s : s + pairs_per_block] for s in range(0, len(pairs), pairs_per_block)]
        calls = []
        for chunk in chunks:
            index = sorted({a for a, _ in chunk} | {b for _, b in chunk})
            shared = [state_refs[i] for i in index]
            calls.append((spec, device_name, precision, chunk, index, *shared))
        results = [r for part in runner.map(_pair_block, calls) for r in part]
        mat = np.full((m, m), np.nan)
        for (a, b), (v, d) in zip(pairs, results, strict=True):
            mat[a, b] = v
            if spec.symmetric:
                mat[b, a] = v
            if a != b or spec.symmetric:
                for key, val in d.items():
                    diags.setdefault(key, np.full((m, m), np.nan))[a, b] = val
    return result_from_matrix(spec, names, mat, diags, pre, n, t0)


def ray_pairwise(
    embeddings: Mapping[str, Any],
    metric: str | MetricSpec,
    *,
    device: Any = "cpu",
    gpus_per_task: float = 1.0,
    **kwargs: Any,
) -> AlignmentResult:
    """:func:`pairwise_blocks` on Ray: one task per model, per pair block and per row block.

    Uses the Ray instance of this process (or starts a local one); with ``device="cuda"`` each
    task asks Ray for ``gpus_per_task`` GPUs and computes on the one Ray gives it.
    """
    cuda = str(device).startswith("cuda")
    runner = RayRunner(num_gpus=gpus_per_task if cuda else 0.0)
    return pairwise_blocks(embeddings, metric, runner=runner,
                           device="cuda" if cuda else device, **kwargs)
