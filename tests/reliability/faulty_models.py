"""Small deterministic adapters that misbehave on purpose, and toy datasets, for the fault tests.

Cards name their adapters as ``tests.reliability.faulty_models:<Class>``, so the runner (and a
``matteralign`` subprocess started by :mod:`tests.reliability.toy_cli`) imports them like any
registered model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.card import LayerInfo, ModelCard

MODULE = "tests.reliability.faulty_models"


def geometry_features(atoms: Any) -> np.ndarray:
    """(6,) float64: statistics of the interatomic distances and the atom count."""
    d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
    return np.array([d.mean(), d.min(), d.max(), d.std(), np.sqrt(len(atoms)), d.sum() / 10])


class GeometryAdapter(ModelAdapter):
    """An honest model: a seeded random tanh projection of distance statistics.

    Options: ``seed`` (projection), ``width`` (columns of layer ``last``), ``refuse`` (sample ids
    whose embedding fails with an error), ``delay`` (seconds slept per batch, so that a run
    takes long enough to be killed part-way).
    """

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        rng = np.random.default_rng(int(self.options.get("seed", 0)))
        self.projection = rng.normal(size=(6, int(self.options.get("width", 8))))

    def prepare(self, sample: Sample) -> Any:
        return sample.id, super().prepare(sample)

    def cost(self, item: Any) -> int:
        return len(item[1])

    def features(self, batch: Sequence[Any]) -> np.ndarray:
        time.sleep(float(self.options.get("delay", 0.0)))
        refused = set(self.options.get("refuse", []))
        for sample_id, _ in batch:
            if sample_id in refused:
                raise RuntimeError(f"the model cannot embed {sample_id}")
        return np.stack([geometry_features(atoms) for _, atoms in batch])

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        first = self.features(batch)
        pooled = {"first": first.astype(np.float32),
                  "last": np.tanh(first @ self.projection).astype(np.float32)}
        return EmbeddingOutput(pooled={k: pooled[k] for k in layers},
                               energy=-first[:, 0].astype(np.float64))


class ConstantAdapter(GeometryAdapter):
    """Gives every sample the same vector (a collapsed model)."""

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        rows = np.tile(np.arange(1.0, 9.0, dtype=np.float32), (len(batch), 1))
        return EmbeddingOutput(pooled={k: rows[:, : 6 if k == "first" else 8] for k in layers},
                               energy=np.zeros(len(batch)))


class NonFiniteAdapter(GeometryAdapter):
    """Like :class:`GeometryAdapter`, with NaN / inf / NaN-energy rows for the ids in the options
    ``nan``, ``inf`` and ``nan_energy``."""

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        out = super().embed(batch, layers, pooling, per_item)
        for row, (sample_id, _) in enumerate(batch):
            if sample_id in self.options.get("nan", []):
                out.pooled[layers[-1]][row, 1] = np.nan
            if sample_id in self.options.get("inf", []):
                out.pooled[layers[-1]][row, 1] = np.inf
            if sample_id in self.options.get("nan_energy", []):
                out.energy[row] = np.nan
        return out


class MemoryHungryAdapter(GeometryAdapter):
    """Runs out of memory (like CUDA does) on any batch of more than ``memory`` atoms."""

    batch_sizes: list[int] = []

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        MemoryHungryAdapter.batch_sizes.append(len(batch))
        atoms = sum(len(item[1]) for item in batch)
        if atoms > int(self.options["memory"]):
            raise RuntimeError(f"CUDA out of memory. Tried to allocate {atoms} GiB")
        return super().embed(batch, layers, pooling, per_item)


class WrongShapeAdapter(GeometryAdapter):
    """A broken adapter: returns one row too few."""

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        out = super().embed(batch, layers, pooling, per_item)
        return EmbeddingOutput({k: v[:-1] for k, v in out.pooled.items()}, out.energy)


class CrashingLoadAdapter(GeometryAdapter):
    """A model whose loading fails with an unexpected error (a bug, a broken install)."""

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        raise AttributeError("'CrashingLoadAdapter' object has no attribute '_weights'")


def card(model_id: str, adapter: str = "GeometryAdapter", **extra: Any) -> ModelCard:
    """A card for one of this module's adapters, with layers ``first`` and ``last``."""
    return ModelCard(
        id=model_id, name=model_id, family="baseline", input="atoms", domain=["molecules"],
        adapter=f"{MODULE}:{adapter}", license="MIT", predicts_energy=True,
        layers=[LayerInfo(name="first"), LayerInfo(name="last")], **extra,
    )


def molecules(n: int, name: str = "toy", seed: int = 0) -> Dataset:
    """``n`` random molecules of 3 to 6 C/H/O/N atoms (ids ``mol-000``, ...), no two atoms
    closer than 0.8 Å; sample 5 (if present) holds Xe."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        symbols = (["Xe"] if i == 5 else ["C"]) + ["H", "O", "N", "H", "H"][: 2 + i % 4]
        while True:
            positions = rng.normal(size=(len(symbols), 3)) * 1.6
            atoms = Atoms(symbols, positions=positions)
            if atoms.get_all_distances()[np.triu_indices(len(atoms), 1)].min() > 0.8:
                break
        samples.append(Sample(id=f"mol-{i:03d}", atoms=atoms))
    dataset_card = DatasetCard(name=name, version="1", domain="molecules", description="toy",
                               provenance="random, seeded", license="CC0")
    return Dataset(dataset_card, samples)


CARDS = {
    "toy-geometry": card("toy-geometry", elements=["H", "C", "N", "O"]),
    "toy-geometry-b": card("toy-geometry-b"),
    "toy-constant": card("toy-constant", "ConstantAdapter"),
    "toy-nonfinite": card("toy-nonfinite", "NonFiniteAdapter"),
    "toy-broken": card("toy-broken", "WrongShapeAdapter"),
    "toy-crashing": card("toy-crashing", "CrashingLoadAdapter"),
}
DATASETS = {"toy": lambda: molecules(40), "toy-small": lambda: molecules(8, "toy-small", 1)}


def patch_registry(target: Any) -> None:
    """Point ``target`` (the module :mod:`matteralign.run.study`, or a pytest ``monkeypatch``)
    at the toy cards and datasets instead of the registries."""
    from matteralign.errors import DatasetError, ModelNotFoundError
    from matteralign.run import study

    def get_card(model_id: str) -> ModelCard:
        if model_id not in CARDS:
            raise ModelNotFoundError(f"unknown model {model_id!r}")
        return CARDS[model_id]

    def get_dataset_spec(name: str) -> Any:
        if name not in DATASETS:
            raise DatasetError(f"unknown dataset {name!r}")
        return name

    def load_dataset(name: str, n: int | None = None, seed: int = 0, data_root: Any = None):
        return DATASETS[name]().subset(n, seed)

    def changed_file(name: str, stored_version: str) -> None:
        return None  # the toy datasets are built in code, from no file

    for name, value in (("get_card", get_card), ("get_dataset_spec", get_dataset_spec),
                        ("load_dataset", load_dataset), ("changed_file", changed_file)):
        if hasattr(target, "setattr"):
            target.setattr(study, name, value)
        else:
            setattr(study, name, value)
