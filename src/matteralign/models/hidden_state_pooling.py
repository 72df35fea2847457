"""Pooling of padded per-token hidden states (B, T, D) into one vector per sequence.

Shared by the sequence adapters (protein LMs, LLMs): the mean over each sample's own tokens,
the first (CLS/BOS) token, or the last real token; per-token rows on request. Pooling runs on the
device that holds the hidden states; only the pooled (B, D) rows are copied to the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from matteralign.models.adapter import EmbeddingOutput

TOKEN_POOLINGS = ("mean", "cls", "last")


def pool_hidden_states(
    hidden: torch.Tensor,
    sample_mask: torch.Tensor,
    last_index: Sequence[int],
    method: str,
) -> np.ndarray:
    """Pool padded hidden states of one layer.

    Parameters
    ----------
    hidden : (B, T, D) tensor
        Hidden states of a right-padded batch, on any device (pooled there).
    sample_mask : (B, T) bool tensor
        True at the tokens that carry the sample itself (residues, SMILES characters); special
        tokens, prompt text and padding are False.
    last_index : sequence of B int
        Position of each sequence's last real token (before padding).
    method : {"mean", "cls", "last"}
        ``mean``: h_b = (1/n_b) Σ_{t: mask[b,t]} hidden[b, t], accumulated in float64.
        ``cls``: hidden[b, 0], the first token (CLS, BOS or start token).
        ``last``: hidden[b, last_index[b]].

    Returns
    -------
    (B, D) float32 array
    """
    if method not in TOKEN_POOLINGS:
        raise ValueError(f"unknown token pooling {method!r}; choose one of {TOKEN_POOLINGS}")
    batch = hidden.shape[0]
    sample_mask = sample_mask.to(hidden.device)
    if method == "cls":
        pooled = hidden[:, 0]
    elif method == "last":
        rows = torch.arange(batch, device=hidden.device)
        pooled = hidden[rows, torch.as_tensor(list(last_index), device=hidden.device)]
    else:  # one batched matrix product with the (B, 1, T) weights mask / n_b
        weights = sample_mask.to(torch.float64)
        weights = weights / weights.sum(1, keepdim=True).clamp_min(1.0)
        values = hidden.to(torch.float64, copy=True).masked_fill_(~sample_mask.unsqueeze(-1), 0.0)
        pooled = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # NaN in padding stays out
    return pooled.detach().to(torch.float32).cpu().numpy()


def per_token_rows(hidden: torch.Tensor, sample_mask: torch.Tensor) -> list[np.ndarray]:
    """The unpooled rows of each sequence's own tokens.

    Parameters
    ----------
    hidden : (B, T, D) tensor
    sample_mask : (B, T) bool tensor

    Returns
    -------
    list of B (n_b, D) float32 arrays, n_b = sample_mask[b].sum()
    """
    sample_mask = sample_mask.to(hidden.device)
    return [
        hidden[b][sample_mask[b]].detach().to(torch.float32).cpu().numpy()
        for b in range(hidden.shape[0])
    ]


def pooled_hidden_output(
    hidden_states: Iterable[tuple[str, torch.Tensor]],
    sample_mask: torch.Tensor,
    last_index: Sequence[int],
    method: str,
    per_item: bool = False,
    mean_mask: torch.Tensor | None = None,
) -> EmbeddingOutput:
    """Pool every requested layer of a padded batch into an :class:`EmbeddingOutput`.

    Parameters
    ----------
    hidden_states : iterable of (layer name, (B, T, D) tensor)
        One pair per requested layer; a generator keeps one layer at a time in memory.
    sample_mask : (B, T) bool tensor
        The sample's own tokens: what ``mean`` averages and what the per-item rows hold.
    last_index : sequence of B int
        See :func:`pool_hidden_states`.
    method : {"mean", "cls", "last"}
    per_item : bool
        Also return each sequence's unpooled rows (:func:`per_token_rows`).
    mean_mask : (B, T) bool tensor, optional
        What ``mean`` averages instead of ``sample_mask`` (UniRep's ``h_avg`` includes the
        start token, which the per-item rows leave out).

    Returns
    -------
    EmbeddingOutput
        ``pooled[layer]`` (B, D) float32; ``per_item[layer]`` a list of B (n_b, D) arrays.
    """
    pool_mask = sample_mask if mean_mask is None or method != "mean" else mean_mask
    pooled: dict[str, np.ndarray] = {}
    rows: dict[str, list[np.ndarray]] = {}
    for layer, hidden in hidden_states:
        pooled[layer] = pool_hidden_states(hidden, pool_mask, last_index, method)
        if per_item:
            rows[layer] = per_token_rows(hidden, sample_mask)
    return EmbeddingOutput(pooled=pooled, per_item=rows if per_item else None)
