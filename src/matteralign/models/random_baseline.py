"""Random baseline: a fixed Gaussian vector per sample, drawn from a hash of its id.

The vector depends on the sample id and the seed only, never on the batch it sits in or on
the structure's content, so it is the "no shared information" floor of every alignment metric.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from matteralign.data.sample import Sample
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter


def id_vector(sample_id: str, dim: int, seed: int = 0) -> np.ndarray:
    """Standard-normal vector of length ``dim`` seeded by SHA-256 of ``"<seed>:<sample_id>"``.

    Returns
    -------
    (dim,) float64 array, identical on every platform and call for the same arguments.
    """
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    generator = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))
    return generator.standard_normal(dim)


class RandomGaussianAdapter(ModelAdapter):
    """Per-sample random vectors (options ``dim``, ``seed``); ``pooling`` is ignored.

    Takes a sample of any modality: ``prepare`` keeps only its id.
    """

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self.device, self.dtype = device, dtype

    def prepare(self, sample: Sample) -> Any:
        return sample.id

    def embed(
        self,
        batch: Sequence[Any],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """(B, dim) float64 vectors, one per sample id in ``batch``."""
        self._check_layers(layers)
        dim, seed = int(self.options.get("dim", 256)), int(self.options.get("seed", 0))
        values = np.stack([id_vector(sample_id, dim, seed) for sample_id in batch])
        return EmbeddingOutput(
            pooled={layer: values for layer in layers},
            per_item={layer: [row[None] for row in values] for layer in layers}
            if per_item
            else None,
        )
