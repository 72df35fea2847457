"""Cheap deterministic adapters for executor tests; importable by Ray and pool workers.

Workers import this module by the card's ``adapter`` string ``"toy_models:<Class>"``, so its
folder must be on their ``PYTHONPATH``.
"""

from __future__ import annotations

import os

import numpy as np
from ase import Atoms

from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.errors import ModelNotFoundError, SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.card import LayerInfo, ModelCard


class PairDistanceAdapter(ModelAdapter):
    """Sorted-distance statistics of a structure, with a seeded random projection; refuses Xe."""

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        rng = np.random.default_rng(int(self.options.get("seed", 0)))
        self.projection = rng.normal(size=(4, 6))
        self.pid = os.getpid()

    def prepare(self, sample: Sample):
        atoms = super().prepare(sample)
        if "Xe" in atoms.get_chemical_symbols():
            raise SampleError(sample.id, "element Xe not covered")
        return atoms

    def cost(self, item) -> int:
        return len(item)

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        rows = []
        for atoms in batch:
            d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
            rows.append([d.mean(), d.min(), d.max(), d.std()])
        first = np.asarray(rows)
        last = np.tanh(first @ self.projection)
        pooled = {"first": first.astype(np.float32), "last": last.astype(np.float32)}
        return EmbeddingOutput(pooled={k: pooled[k] for k in layers},
                               energy=-first[:, 0].astype(np.float64))


class MissingWeightsAdapter(ModelAdapter):
    """A model whose weights are never there."""

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        raise ModelNotFoundError(f"weights of model {self.id} not found at /nowhere")

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        raise AssertionError("never loaded")


def toy_card(model_id: str = "toy-distance", adapter: str = "PairDistanceAdapter",
             **extra) -> ModelCard:
    return ModelCard(
        id=model_id, name=model_id, family="baseline", input="atoms", domain=["molecules"],
        adapter=f"toy_models:{adapter}", license="MIT", predicts_energy=True,
        layers=[LayerInfo(name="first"), LayerInfo(name="last")], **extra,
    )


def toy_dataset(n: int = 23, name: str = "toy", xe: tuple[int, ...] = (5,)) -> Dataset:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        symbols = ["Xe" if i in xe else "C", "H", "H", "O", "N"][: 3 + i % 3]
        atoms = Atoms(symbols, positions=rng.normal(size=(len(symbols), 3)) * 1.5)
        samples.append(Sample(id=f"mol-{i:03d}", atoms=atoms))
    card = DatasetCard(name=name, version="1", domain="molecules", description="toy",
                       provenance="test", license="CC0")
    return Dataset(card, samples)
