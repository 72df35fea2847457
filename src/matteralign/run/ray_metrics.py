"""The all-pairs metric engine split into blocks across Ray workers (or in process), then reduced.

Per-model work (neighbour graphs, centred features, bases) runs as one task per model; pair-local
scores (CKNNA, mutual kNN, linear CKA, SVCCA, ...) as blocks of rows of the M x M matrix; streamed
scores (dCor, RBF CKA, information imbalance, IdCor) as row blocks of the samples whose partial
sums are added in block order. Results equal :func:`matteralign.metrics.pairwise` (to rounding of
the float64 sums). CKNNA / mutual kNN pairs run batched on the device
(:func:`matteralign.metrics.knn_pairs.knn_pair_matrix`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from matteralign.metrics._backend import resolve_backend
from matteralign.metrics.cka import rbf_sigma
from matteralign.metrics.classical import rsa_matrix
from matteralign.metrics.dcor import dcor_from_sums
from matteralign.metrics.engine import (
    AlignmentResult,
    kernel_for,
    prepare_inputs,
    result_from_matrix,
)
from matteralign.metrics.idcor import idcor_value
from matteralign.metrics.information_imbalance import imbalance_from_rank_sums
from matteralign.metrics.intrinsic_dimension import id_from_graph_values
from matteralign.metrics.knn_pairs import StackedGraphs, knn_pair_matrix
from matteralign.metrics.neighbours import NeighbourGraph, nearest_neighbours
from matteralign.metrics.registry import MetricSpec, get_metric
from matteralign.metrics.streams import _Model, _tile, centred_product, pair_two_nn, rank_sums

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


# ---- batched CKNNA / mutual kNN on the device ------------------------------------------------


def _knn_row_block(spec: MetricSpec, device: Any, precision: str | None, rows: Sequence[int],
                   *graphs: NeighbourGraph) -> dict[str, np.ndarray]:
    """Scores of the rows ``rows`` of the M x M matrix for CKNNA / mutual kNN."""
    be = resolve_backend(device, precision)
    stacked = StackedGraphs.build(graphs, be)
    values, mutual = knn_pair_matrix(stacked, spec.family, be, rows)
    return {"values": values, "n_mutual": mutual, "tied": stacked.tied}


# ---- per-model and pair-block tasks -----------------------------------------------------------


def _prepare_state(spec: MetricSpec, device: Any, precision: str | None, x: np.ndarray,
                   name: str) -> Any:
    be = resolve_backend(device, precision)
    if spec.family in ("cknna", "mknn"):
        return nearest_neighbours(x, spec.params["k"], "inner", be, name=name)
    return _to_device(kernel_for(spec, be).prepare(x, name))


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


def _sigma(x: np.ndarray) -> float:
    return rbf_sigma(x)


def _knn_indices(device: Any, precision: str | None, k: int, x: np.ndarray, name: str
                 ) -> np.ndarray:
    return nearest_neighbours(x, k, "euclidean", resolve_backend(device, precision),
                              name=name).indices


def _knn_values(device: Any, precision: str | None, k: int, x: np.ndarray, name: str
                ) -> np.ndarray:
    return nearest_neighbours(x, k, "euclidean", resolve_backend(device, precision),
                              name=name).values


def _cross_sums_rows(device: Any, precision: str | None, kind: str, sigmas: Sequence[float] | None,
                     zero_diag: bool, start: int, stop: int, *xs: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Rows [start, stop) of :func:`matteralign.metrics.streams.cross_sums` (right = left).

    Returns the partial S (M, M) over those rows and the row sums (M, stop - start).
    """
    import torch

    be = resolve_backend(device, precision)
    n = xs[0].shape[0]
    sig = list(sigmas) if sigmas is not None else [None] * len(xs)
    models = [_Model(x, be, sig[i]) for i, x in enumerate(xs)]
    step = be.block_rows(n, n_tiles=len(models) + 1)
    s = torch.zeros((len(models), len(models)), dtype=torch.float64, device=be.device)
    rs = torch.zeros((len(models), stop - start), dtype=torch.float64, device=be.device)
    for lo in range(start, stop, step):
        rows = torch.arange(lo, min(stop, lo + step), device=be.device)
        tiles = torch.stack([_tile(m, rows, kind, zero_diag).reshape(-1) for m in models])
        rs[:, rows - start] = tiles.view(len(models), rows.numel(), n).sum(-1)
        s += tiles @ tiles.T
        del tiles
    return s.cpu().numpy(), rs.cpu().numpy()


def _rank_sums_rows(device: Any, precision: str | None, start: int, stop: int, n_models: int,
                    *arrays: np.ndarray) -> np.ndarray:
    """Rows [start, stop) of :func:`matteralign.metrics.streams.rank_sums` (right = left).

    ``arrays`` holds the M neighbour index arrays (N, k) then the M embeddings.
    """
    return rank_sums(arrays[:n_models], arrays[n_models:], resolve_backend(device, precision),
                     row_range=(start, stop))


def _two_nn_rows(device: Any, precision: str | None, pairs: Sequence[tuple[int, int]],
                 start: int, stop: int, *xs: np.ndarray) -> np.ndarray:
    """Rows [start, stop) of :func:`matteralign.metrics.streams.pair_two_nn`: (P, stop-start, 2)."""
    return pair_two_nn(xs, pairs, resolve_backend(device, precision), row_range=(start, stop))


# ---- the distributed engine ----------------------------------------------------------------


def _streamed_matrix(spec: MetricSpec, names: list[str], refs: list[Any], xs: list[np.ndarray],
                     runner: BlockRunner, device: Any, precision: str | None,
                     n_row_blocks: int) -> np.ndarray:
    n, m = xs[0].shape[0], len(xs)
    blocks = _row_blocks(n, n_row_blocks)
    p = spec.params
    if spec.family in ("dcor", "cka"):
        kind = "distance" if spec.family == "dcor" else "rbf"
        unb = p["unbiased"]
        sig = runner.map(_sigma, [(r,) for r in refs]) if kind == "rbf" else None
        parts = runner.map(_cross_sums_rows,
                           [(device, precision, kind, sig, unb, a, b, *refs) for a, b in blocks])
        s = np.zeros((m, m))
        for part, _ in parts:
            s += part
        rl = np.concatenate([rows for _, rows in parts], axis=1)
        if spec.family == "dcor":
            out = dcor_from_sums(s, rl, n, unb)
        else:
            c = centred_product(s, rl[:, None, :], rl[None, :, :], n, unb)
            d = np.sqrt(np.where(np.diag(c) > 0, np.diag(c), np.nan))
            out = c / d[:, None] / d[None, :]
        return out
    if spec.family == "ii":
        k = p["k"]
        knn = runner.map(_knn_indices, [(device, precision, k, r, nm)
                                         for r, nm in zip(refs, names, strict=True)])
        knn_refs = [runner.put(a) for a in knn]
        parts = runner.map(_rank_sums_rows,
                           [(device, precision, a, b, m, *knn_refs, *refs) for a, b in blocks])
        r = np.zeros((m, m))
        for part in parts:
            r += part
        return imbalance_from_rank_sums(r, n, k)
    if spec.family == "idcor":
        values = runner.map(_knn_values, [(device, precision, 2, r, nm)
                                           for r, nm in zip(refs, names, strict=True)])
        ids = [id_from_graph_values(v, "twonn", 2, 0.1, nm)
               for v, nm in zip(values, names, strict=True)]
        pairs = [(a, b) for a in range(m) for b in range(a + 1, m)]
        parts = runner.map(_two_nn_rows, [(device, precision, pairs, a, b, *refs)
                                          for a, b in blocks])
        r = np.concatenate(parts, axis=1)
        out = np.ones((m, m))
        for (a, b), rp in zip(pairs, r, strict=True):
            id_xy = id_from_graph_values(rp, "twonn", 2, 0.1, f"[{names[a]}|{names[b]}]")
            out[a, b] = out[b, a] = idcor_value(ids[a], ids[b], id_xy)
        return out
    if spec.family == "rsa":
        # every model's distance ranks go to one scratch disk: RSA runs where the engine runs
        return rsa_matrix(list(xs), None, names)
    raise KeyError(f"{spec.id}: no streamed kernel")


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
    elif spec.family in ("cknna", "mknn"):
        graphs = runner.map(_prepare_state, [(spec, device_name, precision, r, nm)
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
        if spec.family == "cknna":
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
