"""Pooling of per-atom, per-token or per-residue features into one vector per sample."""

from __future__ import annotations

import torch

POOLINGS = ("mean", "sum", "per_element_mean")


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
    method : {"mean", "sum", "per_element_mean"}
        ``mean``: h_b = (1/n_b) Σ_{i∈b} f_i (the paper's choice). ``sum``: h_b = Σ_{i∈b} f_i.
        ``per_element_mean``: the mean over the elements present in b of each element's mean
        feature, h_b = (1/|Z_b|) Σ_{z∈Z_b} mean_{i∈b, Z_i=z} f_i, so every element weighs the
        same whatever its count.
    atomic_numbers : (n_items,) int tensor, optional
        Needed for ``per_element_mean``.

    Returns
    -------
    (B, D) tensor, float64 accumulation cast back to ``features.dtype``.
    """
    if method not in POOLINGS:
        raise ValueError(f"unknown pooling {method!r}; choose one of {POOLINGS}")
    values = features.to(torch.float64)
    dim = values.shape[1]
    if method == "per_element_mean":
        if atomic_numbers is None:
            raise ValueError("per_element_mean pooling needs atomic_numbers")
        pair = segment.to(torch.int64) * 128 + atomic_numbers.to(torch.int64)
        unique_pairs, inverse = torch.unique(pair, return_inverse=True)
        element_means = pool_segments(values, inverse, len(unique_pairs), "mean")
        return pool_segments(element_means, unique_pairs // 128, n_segments, "mean").to(
            features.dtype
        )
    sums = torch.zeros((n_segments, dim), dtype=torch.float64, device=values.device)
    sums.index_add_(0, segment.to(torch.int64), values)
    if method == "sum":
        return sums.to(features.dtype)
    counts = torch.bincount(segment.to(torch.int64), minlength=n_segments).clamp_min(1)
    return (sums / counts.unsqueeze(1)).to(features.dtype)
