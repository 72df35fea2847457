"""CKNNA and mutual kNN for many model pairs at once: M neighbour graphs stacked on one device.

The batched counterpart of :func:`~matteralign.metrics.cknna.cknna_from_graphs` and
:func:`~matteralign.metrics.knn.mutual_knn_from_graphs`: one pass scores model a against a batch of
models b, O(B N k log k) work and no N x N matrix; equal to the pair kernels to float64 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Backend
from .neighbours import NeighbourGraph

__all__ = ["StackedGraphs", "knn_pair_matrix", "knn_pair_scores"]

@dataclass
class StackedGraphs:
    """M inner-product neighbour graphs on one device, rows sorted by neighbour index.

    Attributes
    ----------
    idx : (M, N, k) int64 tensor
        Neighbour indices, ascending within each row.
    val : (M, N, k) float64 tensor
        Inner products x_i . x_j of each edge.
    rev : (M, N*k) int64 tensor
        Flat position of the reverse edge (j, i) in the same graph, or -1 when absent.
    tied : (M,) float array
        Each graph's tied fraction.
    """

    idx: Any
    val: Any
    rev: Any
    tied: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """(M, N, k)."""
        return tuple(self.idx.shape)  # type: ignore[return-value]

    @classmethod
    def build(cls, graphs: Sequence[NeighbourGraph], be: Backend) -> StackedGraphs:
        """Stack ``graphs`` (same N and k) on ``be.device`` and index every edge's reverse edge.

        Parameters
        ----------
        graphs : sequence of M NeighbourGraph
            Inner-product graphs of the M models, each (N, k).
        be : Backend
            Device; ``be.block_bytes`` (up to 4 GiB on CUDA by default) bounds the reverse-edge
            search's
            temporaries.
        """
        with be.stage("pairs: stack graphs"):
            return cls._build(graphs, be)

    @classmethod
    def _build(cls, graphs: Sequence[NeighbourGraph], be: Backend) -> StackedGraphs:
        import torch

        idx = torch.stack([torch.as_tensor(g.indices, device=be.device) for g in graphs])
        val = torch.stack([torch.as_tensor(g.values, dtype=torch.float64, device=be.device)
                           for g in graphs])
        order = idx.argsort(dim=2)
        idx, val = idx.gather(2, order), val.gather(2, order)
        m, n, k = idx.shape
        rev = torch.empty((m, n * k), dtype=torch.int64, device=be.device)
        owner = torch.arange(n, device=be.device).repeat_interleave(k)
        chunk = max(1, be.block_bytes // (8 * k * 4))
        for a in range(m):
            flat = idx[a].reshape(-1)
            for s in range(0, n * k, chunk):
                j, i = flat[s : s + chunk], owner[s : s + chunk]
                rows_j = idx[a, j]  # (C, k): neighbour lists of the edges' targets
                p = torch.searchsorted(rows_j, i[:, None]).clamp_(max=k - 1)
                hit = rows_j.gather(1, p)[:, 0] == i
                rev[a, s : s + chunk] = torch.where(hit, j * k + p[:, 0], -1)
        return cls(idx, val, rev, np.array([g.tied_fraction for g in graphs]))


def knn_pair_scores(
    graphs: StackedGraphs, a: int, bs: Sequence[int], be: Backend
) -> tuple[np.ndarray, np.ndarray]:
    """Unbiased sparse HSIC of model ``a`` against each model of ``bs``, and mutual-edge counts.

    For S = mutual k-NN edges of a and b, K = a's inner products and L = b's on S:
    HSIC_1 = [sum_{(i,j),(j,i) in S} K_ij L_ij + (1'K1)(1'L1)/((N-1)(N-2))
              - 2/(N-2) sum_j colsum(K)_j rowsum(L)_j] / (N (N-3)),
    as :func:`matteralign.metrics.cknna.hsic_unbiased_sparse`, for a batch of b in one pass:
    O(B N k log k) work, no N x N matrix. ``be.block_bytes`` bounds the temporaries of one batch
    (about 96 N k bytes per b).

    Parameters
    ----------
    graphs : StackedGraphs
        (M, N, k) graphs on ``be.device``.
    a : int
        Row model.
    bs : sequence of int
        Column models (may include ``a``: a graph is fully mutual with itself).
    be : Backend

    Returns
    -------
    hsic : (B,) float64
    n_mutual : (B,) int64
        |S| for each b.
    """
    import torch

    m, n, k = graphs.shape
    out_h, out_m = [], []
    per_pair = n * k * 8 * 12  # bytes of temporaries per b
    step = max(1, min(len(bs), be.block_bytes // per_pair))
    ia, va, rev = graphs.idx[a], graphs.val[a], graphs.rev[a]
    has_rev = rev >= 0
    rev_c = rev.clamp(min=0)
    zero = torch.zeros((), dtype=torch.float64, device=be.device)
    for s in range(0, len(bs), step):
        sel = torch.as_tensor(list(bs[s : s + step]), device=be.device)
        b = sel.numel()
        ib, vb = graphs.idx[sel], graphs.val[sel]
        iae = ia.expand(b, n, k)
        pos = torch.searchsorted(ib.reshape(b * n, k), iae.reshape(b * n, k))
        pos = pos.clamp_(max=k - 1).view(b, n, k)
        mask = ib.gather(2, pos) == iae
        kv = torch.where(mask, va, zero)
        lv = torch.where(mask, vb.gather(2, pos), zero)
        sk, sl = kv.sum((1, 2)), lv.sum((1, 2))
        rowl = lv.sum(2)
        colk = torch.zeros((b, n), dtype=torch.float64, device=be.device)
        colk.scatter_add_(1, iae.reshape(b, n * k), kv.reshape(b, n * k))
        cross = (colk * rowl).sum(1)
        mflat = mask.reshape(b, n * k)
        both = mflat & has_rev & mflat.gather(1, rev_c.expand(b, -1))
        tr = (kv.reshape(b, -1) * lv.reshape(b, -1) * both).sum(1)
        hsic = (tr + sk * sl / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)) / (n * (n - 3))
        out_h.append(hsic.cpu().numpy())
        out_m.append(mask.sum((1, 2)).cpu().numpy())
    return np.concatenate(out_h), np.concatenate(out_m)


def knn_pair_matrix(
    graphs: StackedGraphs,
    family: str,
    be: Backend,
    rows: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the M x M CKNNA or mutual-kNN matrix, each row batched over all its columns.

    CKNNA is asymmetric: values[r, b] = HSIC_1(a, b) / sqrt(HSIC_1(a, a) HSIC_1(b, b)) with
    a = rows[r] (NaN where the denominator is not positive), for every b including a. Mutual kNN
    is symmetric: values[r, b] = |S_ab| / (N k) only for b >= a (NaN below; mirror it).

    Parameters
    ----------
    graphs : StackedGraphs
        (M, N, k) graphs on ``be.device``.
    family : {"cknna", "mknn"}
    be : Backend
        On CUDA the batch memory budget is raised to at least 1 GiB.
    rows : sequence of int, optional
        Row models a; default all M.

    Returns
    -------
    values : (R, M) float64
    n_mutual : (R, M) float64
        Mutual-edge counts |S_ab| (NaN where not computed).
    """
    if family not in ("cknna", "mknn"):
        raise ValueError(f"family must be 'cknna' or 'mknn', got {family!r}.")
    with be.stage("pairs: kernel"):
        return _pair_matrix(graphs, family, be, rows)


def _pair_matrix(graphs: StackedGraphs, family: str, be: Backend, rows: Sequence[int] | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    m, n, k = graphs.shape
    rows = list(range(m)) if rows is None else list(rows)
    self_h = None
    if family == "cknna":
        self_h = np.array([knn_pair_scores(graphs, a, [a], be)[0][0] for a in range(m)])
    values = np.full((len(rows), m), np.nan)
    mutual = np.full((len(rows), m), np.nan)
    for r, a in enumerate(rows):
        bs = list(range(m)) if family == "cknna" else list(range(a, m))
        h, nm = knn_pair_scores(graphs, a, bs, be)
        mutual[r, bs] = nm
        if self_h is None:
            values[r, bs] = nm / (n * k)
            continue
        den = self_h[a] * self_h[bs]
        with np.errstate(invalid="ignore"):
            values[r, bs] = np.where(den > 0, h / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)
    return values, mutual
