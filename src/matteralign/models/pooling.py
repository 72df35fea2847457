"""Pooling of per-atom, per-token or per-residue features into one vector per sample.

The pooling name is part of every shard's configuration hash and provenance.
"""

from __future__ import annotations

from math import comb

import torch

from matteralign.threads import one_torch_thread

MAX_CUMULANT_ORDER = 8
POOLINGS = ("mean", "sum", "per_element_mean", "mean_std") + tuple(
    f"cumulants-{n}" for n in range(1, MAX_CUMULANT_ORDER + 1)
)


def pool_segments(
    features: torch.Tensor,
    segment: torch.Tensor,
    n_segments: int,
    method: str = "mean",
    atomic_numbers: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pool rows of ``features`` that belong to the same sample.

    Parameters
    ----------
    features : (n_items, D) tensor
        Per-atom (or per-token) features of a whole batch.
    segment : (n_items,) int tensor
        Index of the sample each row belongs to, in ``[0, n_segments)``.
    n_segments : int
        Number of samples B in the batch.
    method : {"mean", "sum", "per_element_mean", "mean_std", "cumulants-n"}
        ``mean``: h_b = (1/n_b) Σ_{i∈b} f_i (the paper's choice). ``sum``: h_b = Σ_{i∈b} f_i.
        ``per_element_mean``: the mean over the elements present in b of each element's mean
        feature, h_b = (1/|Z_b|) Σ_{z∈Z_b} mean_{i∈b, Z_i=z} f_i, so every element weighs the
        same whatever its count. ``mean_std``: [mean, σ] with σ² = (1/n_b) Σ_{i∈b} (f_i − mean)²
        (2D columns). ``cumulants-n`` (n = 1..8): Chorna et al.'s structure-level features, the
        per-column cumulants κ_1..κ_n of the atoms of b (population moments, see
        :func:`segment_cumulants`) as signed roots, [κ_1, sgn(κ_2)|κ_2|^{1/2}, ...,
        sgn(κ_n)|κ_n|^{1/n}] (n·D columns; ``cumulants-2`` equals ``mean_std``).
    atomic_numbers : (n_items,) int tensor, optional
        Needed for ``per_element_mean``.

    Returns
    -------
    (B, D) tensor ((B, 2D) for ``mean_std``, (B, nD) for ``cumulants-n``), float64 accumulation
    cast back to ``features.dtype``.

    Notes
    -----
    Sums are ``index_add_``'s: rows added one at a time in row order,
    s_b = ((0 + f_{i1}) + f_{i2}) + ... with i1 < i2 < ..., whatever the thread count. The
    whole pooling of CPU tensors runs on one torch thread
    (:func:`~matteralign.threads.one_torch_thread`): its kernels are small, and with 2 threads
    on a busy 2-core host each parallel region waits on the other thread,
    ``index_add_`` once per row (mean of 512 × 6384 float64 rows in 7 samples: about 20 ms with
    2 threads, 1 ms with 1; same bits).
    """
    if method not in POOLINGS:
        raise ValueError(f"unknown pooling {method!r}; choose one of {POOLINGS}")
    if features.device.type != "cpu":
        return _pool(features, segment, n_segments, method, atomic_numbers)
    with one_torch_thread():
        return _pool(features, segment, n_segments, method, atomic_numbers)


def _pool(
    features: torch.Tensor,
    segment: torch.Tensor,
    n_segments: int,
    method: str,
    atomic_numbers: torch.Tensor | None,
) -> torch.Tensor:
    """:func:`pool_segments` itself, run on one torch thread."""
    values = features.to(torch.float64)
    if method == "mean_std" or method.startswith("cumulants-"):
        order = 2 if method == "mean_std" else int(method.split("-")[1])
        kappa = segment_cumulants(values, segment, n_segments, order)
        roots = [kappa[0]] + [signed_root(kappa[p - 1], p) for p in range(2, order + 1)]
        return torch.cat(roots, dim=1).to(features.dtype)
    if method == "per_element_mean":
        if atomic_numbers is None:
            raise ValueError("per_element_mean pooling needs atomic_numbers")
        pair = segment.to(torch.int64) * 128 + atomic_numbers.to(torch.int64)
        unique_pairs, inverse = torch.unique(pair, return_inverse=True)
        element_means = pool_segments(values, inverse, len(unique_pairs), "mean")
        return pool_segments(element_means, unique_pairs // 128, n_segments, "mean").to(
            features.dtype
        )
    sums = torch.zeros((n_segments, values.shape[1]), dtype=torch.float64, device=values.device)
    sums.index_add_(0, segment.to(torch.int64), values)
    if method == "sum":
        return sums.to(features.dtype)
    counts = torch.bincount(segment.to(torch.int64), minlength=n_segments).clamp_min(1)
    return (sums / counts.unsqueeze(1)).to(features.dtype)


def segment_cumulants(
    values: torch.Tensor, segment: torch.Tensor, n_segments: int, order: int
) -> list[torch.Tensor]:
    """Per-sample, per-column cumulants κ_1..κ_order of the rows of each sample.

    Population (biased) moments: μ_p = (1/n_b) Σ_{i∈b} (f_i − f̄_b)^p, as
    ``scipy.stats.moment``; κ_1 = f̄_b, κ_2 = μ_2, κ_3 = μ_3 and
    κ_p = μ_p − Σ_{m=2}^{p−2} C(p−1, m−1) κ_m μ_{p−m} (the moment-cumulant recursion with
    μ_1 = 0; e.g. κ_4 = μ_4 − 3μ_2²). A one-row sample has κ_p = 0 for p >= 2.

    Parameters
    ----------
    values : (n_items, D) float64 tensor
    segment : (n_items,) int tensor
    n_segments : int
    order : int >= 1

    Returns
    -------
    list of ``order`` (B, D) float64 tensors
    """
    mean = pool_segments(values, segment, n_segments, "mean")
    seg = segment.to(torch.int64)
    centred = values - mean[seg]
    moments = {1: torch.zeros_like(mean)}
    power = centred
    for p in range(2, order + 1):
        power = power * centred
        moments[p] = pool_segments(power, seg, n_segments, "mean")
    kappa = [mean]
    for p in range(2, order + 1):
        k = moments[p].clone()
        for m in range(2, p - 1):
            k -= comb(p - 1, m - 1) * kappa[m - 1] * moments[p - m]
        kappa.append(k)
    return kappa


def signed_root(x: torch.Tensor, n: int) -> torch.Tensor:
    """sgn(x)·|x|^{1/n}, elementwise: a cumulant of order n in the units of the features."""
    return torch.sign(x) * x.abs().pow(1.0 / n)
