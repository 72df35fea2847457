"""What comes out of a model: NaN, inf, non-finite energies, out-of-memory batches and broken
shapes fail the sample (or the model) by name, and never reach the store as numbers."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from matteralign.data.sample import Dataset, Sample
from matteralign.errors import AdapterError
from matteralign.run.embed import embed_dataset
from matteralign.store.embedding_store import EmbeddingStore
from tests.reliability.faulty_models import (
    CARDS,
    GeometryAdapter,
    MemoryHungryAdapter,
    NonFiniteAdapter,
    WrongShapeAdapter,
    card,
    molecules,
)


def _loaded(adapter):
    adapter.load()
    return adapter


def _direct(samples, layer: str = "last", **options) -> np.ndarray:
    """One-by-one embeddings of an honest GeometryAdapter: the reference."""
    adapter = _loaded(GeometryAdapter(CARDS["toy-geometry-b"], **options))
    return np.concatenate([adapter.embed([adapter.prepare(s)], [layer], "mean").pooled[layer]
                           for s in samples])


def test_nan_inf_and_nan_energy_fail_their_sample_only(tmp_path):
    dataset = molecules(24)
    options = {"nan": ["mol-003"], "inf": ["mol-010"], "nan_energy": ["mol-020"]}
    adapter = NonFiniteAdapter(CARDS["toy-nonfinite"], **options)
    store = EmbeddingStore(tmp_path)
    summary = embed_dataset(adapter, dataset, store, shard_size=10, batch_budget=20)
    assert (summary.n_embedded, summary.n_failed) == (21, 3)
    stored = store.load("toy", "toy-nonfinite", "last", n_shards=3)
    assert dict(stored.failures) == {
        "mol-003": "non-finite embedding in layer(s) last",
        "mol-010": "non-finite embedding in layer(s) last",
        "mol-020": "non-finite predicted energy (nan)",
    }
    healthy = [s for s in dataset if s.id not in ("mol-003", "mol-010", "mol-020")]
    assert stored.ids == [s.id for s in healthy]
    np.testing.assert_array_equal(stored.values, _direct(healthy))
    assert np.isfinite(stored.energy).all() and len(stored.energy) == 21


def test_out_of_memory_splits_batches_and_an_enormous_sample_fails_alone(tmp_path):
    small = molecules(12)
    huge = Sample(id="huge", atoms=Atoms("C" * 40, positions=np.arange(120.0).reshape(40, 3)))
    dataset = Dataset(small.card, [*small.samples[:6], huge, *small.samples[6:]])
    adapter = MemoryHungryAdapter(card("toy-hungry", "MemoryHungryAdapter"), memory=14)
    MemoryHungryAdapter.batch_sizes = []
    store = EmbeddingStore(tmp_path)
    summary = embed_dataset(adapter, dataset, store, shard_size=13, batch_budget=64)
    assert (summary.n_embedded, summary.n_failed) == (12, 1)
    stored = store.load("toy", "toy-hungry", "last", n_shards=1)
    [(sample_id, reason)] = stored.failures
    assert sample_id == "huge" and reason.startswith("RuntimeError: CUDA out of memory")
    assert max(MemoryHungryAdapter.batch_sizes) > 4 > min(MemoryHungryAdapter.batch_sizes)
    # halved batches give exactly the numbers of one-by-one runs
    np.testing.assert_array_equal(stored.values, _direct(small.samples))


def test_wrong_shaped_output_is_an_adapter_error_naming_the_model(tmp_path):
    adapter = WrongShapeAdapter(CARDS["toy-broken"])
    store = EmbeddingStore(tmp_path)
    with pytest.raises(AdapterError, match=r"model toy-broken returned \(\d+, 8\) embedding for "
                                           r"layer 'last' on a batch of \d+; expected"):
        embed_dataset(adapter, molecules(6), store, layers="last", shard_size=3)
    assert store.shard_paths("toy", "toy-broken") == []  # nothing half-right was stored


DEGENERATE_METRICS = ["cknna-k10", "mknn-k10", "cka-linear", "cka-rbf", "dcor", "ii-k1",
                      "svcca-v0.99", "procrustes", "linrec-a0.001"]


@pytest.mark.parametrize("metric", DEGENERATE_METRICS)
def test_metrics_refuse_a_constant_embedding(metric):
    from matteralign import metrics

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    constant = np.tile(rng.normal(size=5), (40, 1))  # a collapsed model: one vector for all
    with pytest.raises(metrics.EmbeddingError):
        metrics.get_metric(metric)(x, constant)
