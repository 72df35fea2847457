"""Per-atom features of a batch of structures → the pooled :class:`EmbeddingOutput`.

Shared by the molecular interatomic-potential and descriptor adapters: every one of them ends
with per-atom rows for a whole batch, a segment index and the atomic numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from matteralign.models.adapter import EmbeddingOutput
from matteralign.models.pooling import pool_segments
from matteralign.threads import one_torch_thread


def segment_index(counts: Sequence[int]) -> torch.Tensor:
    """Index of the structure each atom belongs to.

    Parameters
    ----------
    counts : sequence of int
        Number of atoms n_b of each of the B structures, in batch order.

    Returns
    -------
    (Σ n_b,) int64 tensor, e.g. ``[0, 0, 0, 1, 1]`` for counts ``(3, 2)``.
    """
    return torch.repeat_interleave(
        torch.arange(len(counts), dtype=torch.int64), torch.as_tensor(list(counts))
    )


def pooled_output(
    features: Mapping[str, torch.Tensor],
    counts: Sequence[int],
    numbers: torch.Tensor,
    pooling: str,
    per_item: bool = False,
    energy: np.ndarray | None = None,
) -> EmbeddingOutput:
    """Pool per-atom features of a batch into one vector per structure and layer.

    Parameters
    ----------
    features : mapping of str to (Σ n_b, D_layer) tensor
        Per-atom features of every requested layer, atoms of structure 0 first.
    counts : sequence of int
        Atoms per structure n_b.
    numbers : (Σ n_b,) int tensor
        Atomic numbers, for ``per_element_mean``.
    pooling : {"mean", "sum", "per_element_mean"}
        See :func:`matteralign.models.pooling.pool_segments`.
    per_item : bool
        Also return the unpooled per-atom rows of each structure.
    energy : (B,) float array, optional
        Total energies in eV, passed through.

    Returns
    -------
    EmbeddingOutput
        ``pooled[layer]`` is a (B, D_layer) array in the features' dtype.

    Runs on one torch thread (:func:`~matteralign.threads.one_torch_thread`).
    """
    pooled: dict[str, np.ndarray] = {}
    items: dict[str, list[np.ndarray]] = {}
    with one_torch_thread():  # small CPU kernels (the segment index's repeat_interleave too)
        segment = segment_index(counts)
        for layer, values in features.items():
            values = values.detach().cpu()
            pooled[layer] = pool_segments(
                values, segment, len(counts), pooling, atomic_numbers=numbers.cpu()
            ).numpy()
            if per_item:
                items[layer] = [part.numpy() for part in torch.split(values, list(counts))]
    return EmbeddingOutput(pooled=pooled, energy=energy, per_item=items if per_item else None)


def pooled_structures_output(
    features: Mapping[str, torch.Tensor],
    batch: Sequence[Any],
    pooling: str,
    per_item: bool = False,
    energy: np.ndarray | None = None,
) -> EmbeddingOutput:
    """:func:`pooled_output` for a batch of ``ase.Atoms``, counts and numbers read off them.

    Parameters
    ----------
    features : mapping of str to (Σ n_b, D_layer) tensor
        Per-atom features, atoms in the order of ``batch`` and of each structure.
    batch : sequence of B ase.Atoms
    pooling, per_item, energy
        As in :func:`pooled_output`.
    """
    numbers = torch.as_tensor(np.concatenate([atoms.numbers for atoms in batch]))
    return pooled_output(
        features, [len(atoms) for atoms in batch], numbers, pooling, per_item=per_item,
        energy=energy,
    )
