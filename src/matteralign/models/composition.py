"""Element-composition baseline: how many atoms of each element Z = 1..94 a structure has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from matteralign.data.sample import Sample
from matteralign.errors import SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.atom_features import pooled_output

MAX_Z = 94


class CompositionAdapter(ModelAdapter):
    """One-hot element rows per atom (column Z − 1 for Z = 1..94), pooled per structure.

    ``sum`` pooling gives element counts, ``mean`` the atomic fractions, ``per_element_mean``
    the indicator of the elements present divided by their number. Geometry plays no part, so
    the vector is invariant to rotation, translation and atom order by construction.
    """

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self.device, self.dtype = device, dtype

    def prepare(self, sample: Sample) -> Any:
        atoms = super().prepare(sample)
        heavy = sorted(set(s for s, z in zip(atoms.get_chemical_symbols(), atoms.numbers,
                                             strict=True) if not 1 <= z <= MAX_Z))
        if heavy:
            raise SampleError(
                sample.id, f"element(s) {', '.join(heavy)} outside Z = 1..{MAX_Z} of {self.id}"
            )
        return atoms

    def cost(self, item: Any) -> int:
        return len(item)

    def embed(
        self,
        batch: Sequence[Any],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """(B, 94) float64 composition vectors, pooled as ``pooling`` says."""
        self._check_layers(layers)
        numbers = torch.as_tensor(np.concatenate([atoms.numbers for atoms in batch]))
        one_hot = torch.nn.functional.one_hot(numbers - 1, MAX_Z).to(torch.float64)
        return pooled_output(
            {layer: one_hot for layer in layers},
            [len(atoms) for atoms in batch],
            numbers,
            pooling,
            per_item=per_item,
        )
