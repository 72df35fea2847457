"""The embedding loop: shards, resuming, per-sample failures, stale shards."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ase import Atoms

from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.errors import AdapterError, SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.card import LayerInfo, ModelCard
from matteralign.run.embed import embed_dataset, prepared_items, resolve_layers, shard_slices
from matteralign.store.embedding_store import EmbeddingStore


class DistanceAdapter(ModelAdapter):
    """Embeds a structure by sorted-distance statistics; refuses samples holding Xe."""

    calls = 0

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self.loaded = True

    def prepare(self, sample: Sample):
        atoms = super().prepare(sample)
        if "Xe" in atoms.get_chemical_symbols():
            raise SampleError(sample.id, "element Xe not covered")
        return atoms

    def cost(self, item) -> int:
        return len(item)

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        DistanceAdapter.calls += 1
        rows = []
        for atoms in batch:
            if "Rn" in atoms.get_chemical_symbols():
                raise RuntimeError("Rn breaks the model")
            d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
            rows.append([d.mean(), d.min(), d.max(), len(atoms)])
        values = np.asarray(rows, dtype=np.float32)
        pooled = {"first": values[:, :2].copy(), "last": values.copy()}
        for row, atoms in enumerate(batch):
            if "Ne" in atoms.get_chemical_symbols():
                pooled["last"][row, 0] = np.nan
        return EmbeddingOutput(pooled={k: pooled[k] for k in layers},
                               energy=values[:, 0].astype(np.float64) * -1.0)


CARD = ModelCard(
    id="distance-test", name="distance", family="baseline", input="atoms",
    domain=["molecules"], adapter="tests:unused", license="MIT", predicts_energy=True,
    layers=[LayerInfo(name="first"), LayerInfo(name="last")],
)


def make_dataset(n: int = 23, poison: dict[int, str] | None = None) -> Dataset:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        symbols = ["C", "H", "H", "O"]
        if poison and i in poison:
            symbols[0] = poison[i]
        atoms = Atoms(symbols, positions=rng.normal(size=(4, 3)) * 1.5)
        samples.append(Sample(id=f"mol-{i:03d}", atoms=atoms))
    card = DatasetCard(name="toy", version="1", domain="molecules", description="toy",
                       provenance="test", license="CC0")
    return Dataset(card, samples)


def test_shard_slices_cover_everything_once():
    slices = shard_slices(23, 10)
    assert [(s.start, s.stop) for s in slices] == [(0, 10), (10, 20), (20, 23)]


def test_resolve_layers_last_all_and_negative_index():
    adapter = DistanceAdapter(CARD)
    assert resolve_layers(adapter, "last") == ["last"]
    assert resolve_layers(adapter, "all") == ["first", "last"]
    assert resolve_layers(adapter, ["-2"]) == ["first"]
    with pytest.raises(ValueError, match="no layer 'middle'"):
        resolve_layers(adapter, ["middle"])


def test_embed_writes_shards_and_records_failures(tmp_path):
    dataset = make_dataset(poison={3: "Xe", 7: "Rn", 12: "Ne"})
    store = EmbeddingStore(tmp_path)
    summary = embed_dataset(DistanceAdapter(CARD), dataset, store, shard_size=10,
                            batch_budget=16)
    assert (summary.n_shards, summary.computed, summary.skipped) == (3, 3, 0)
    assert summary.n_embedded == 20 and summary.n_failed == 3
    stored = store.load("toy", "distance-test", "last", n_shards=3)
    assert stored.values.shape == (20, 4)
    reasons = dict(stored.failures)
    assert reasons["mol-003"] == "element Xe not covered"
    assert reasons["mol-007"] == "RuntimeError: Rn breaks the model"
    assert "non-finite" in reasons["mol-012"]
    # healthy neighbours of a failing sample are embedded exactly as on their own
    alone = DistanceAdapter(CARD).embed([dataset["mol-006"].atoms], ["last"], "mean")
    row = stored.ids.index("mol-006")
    np.testing.assert_array_equal(stored.values[row], alone.pooled["last"][0])
    np.testing.assert_allclose(stored.energy, -stored.values[:, 0].astype(np.float64))


def test_rerun_skips_finished_shards_and_recomputes_changed_ones(tmp_path):
    dataset = make_dataset()
    store = EmbeddingStore(tmp_path)
    embed_dataset(DistanceAdapter(CARD), dataset, store, shard_size=10)
    before = store.load("toy", "distance-test", "last").values
    again = embed_dataset(DistanceAdapter(CARD), dataset, store, shard_size=10)
    assert (again.computed, again.skipped) == (0, 3)
    # a different pooling is a different configuration: everything is recomputed
    changed = embed_dataset(DistanceAdapter(CARD), dataset, store, shard_size=10, pooling="sum")
    assert changed.computed == 3
    np.testing.assert_array_equal(store.load("toy", "distance-test", "last").values, before)


def test_corrupt_shard_is_detected_and_recomputed(tmp_path):
    dataset = make_dataset()
    store = EmbeddingStore(tmp_path)
    embed_dataset(DistanceAdapter(CARD), dataset, store, shard_size=10)
    reference = store.load("toy", "distance-test", "last").values
    path = store.shard_path("toy", "distance-test", 1)
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    rerun = embed_dataset(DistanceAdapter(CARD), dataset, store, shard_size=10)
    assert (rerun.computed, rerun.skipped) == (1, 2)
    np.testing.assert_array_equal(store.load("toy", "distance-test", "last").values, reference)


def test_shrunken_dataset_removes_stale_shards(tmp_path):
    store = EmbeddingStore(tmp_path)
    embed_dataset(DistanceAdapter(CARD), make_dataset(23), store, shard_size=10)
    embed_dataset(DistanceAdapter(CARD), make_dataset(15), store, shard_size=10)
    assert len(store.shard_paths("toy", "distance-test")) == 2
    assert len(store.load("toy", "distance-test", "last").ids) == 15


class HostDistanceAdapter(DistanceAdapter):
    """DistanceAdapter whose prepare may run in forked workers; records where it ran."""

    host_prepare = True

    def prepare(self, sample: Sample):
        import os

        atoms = super().prepare(sample)
        atoms.info["prepared_by"] = os.getpid()
        return atoms


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prepare workers fork (Linux)")
def test_prepare_workers_give_the_serial_result(tmp_path):
    import os

    poison = {3: "Xe", 8: "Rn", 12: "Ne", 21: "Xe"}
    dataset = make_dataset(poison=poison)
    adapter = HostDistanceAdapter(CARD)
    failures: dict[str, str] = {}
    items = list(prepared_items(adapter, dataset.samples, failures, workers=3))
    assert [i for i, _ in items] == [s.id for s in dataset.samples if s.id not in
                                     ("mol-003", "mol-021")]
    assert failures == {"mol-003": "element Xe not covered", "mol-021": "element Xe not covered"}
    assert {atoms.info["prepared_by"] for _, atoms in items} - {os.getpid()}  # in other processes
    serial, pooled = EmbeddingStore(tmp_path / "serial"), EmbeddingStore(tmp_path / "pooled")
    embed_dataset(adapter, dataset, serial, shard_size=10, batch_budget=12)
    embed_dataset(adapter, dataset, pooled, shard_size=10, batch_budget=12, prepare_workers=3)
    for layer in ("first", "last"):
        a, b = serial.load("toy", CARD.id, layer), pooled.load("toy", CARD.id, layer)
        assert a.ids == b.ids and a.failures == b.failures and len(a.failures) == 4
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.energy, b.energy)
    # an adapter that does not declare a host-only prepare keeps it in this process
    plain: dict[str, str] = {}
    adapter.host_prepare = False
    items = list(prepared_items(adapter, make_dataset(poison=poison).samples, plain, workers=3))
    assert len(items) == 21 and plain == failures
    assert {atoms.info["prepared_by"] for _, atoms in items} == {os.getpid()}


class ThreadRecordingAdapter(HostDistanceAdapter):
    """Records the thread each prepare ran in; raises an unexpected error on ``fail_on``."""

    fail_on: str | None = None

    def prepare(self, sample: Sample):
        import threading

        if sample.id == self.fail_on:
            raise KeyboardInterrupt
        atoms = super().prepare(sample)
        atoms.info["thread"] = threading.current_thread().name
        return atoms


def test_preparing_ahead_in_a_thread_gives_the_serial_items_and_raises_its_errors(tmp_path):
    """On a device, a host-only prepare runs in one background thread ahead of the model: the
    same items, in order, the same failures and stored bits as the serial path; an error in
    the thread reaches the caller, and a caller that stops early stops the thread."""
    import threading

    poison = {3: "Xe", 8: "Rn", 12: "Ne", 21: "Xe"}
    adapter = ThreadRecordingAdapter(CARD)
    serial_failures: dict[str, str] = {}
    serial = list(prepared_items(adapter, make_dataset(poison=poison).samples, serial_failures))
    ahead_failures: dict[str, str] = {}
    ahead = list(prepared_items(adapter, make_dataset(poison=poison).samples, ahead_failures,
                                ahead=True))
    assert [i for i, _ in ahead] == [i for i, _ in serial] and len(ahead) == 21
    assert ahead_failures == serial_failures and len(ahead_failures) == 2
    assert {atoms.info["thread"] for _, atoms in serial} == {"MainThread"}
    assert {atoms.info["thread"] for _, atoms in ahead} == {"matteralign-prepare"}
    for (_, a), (_, b) in zip(serial, ahead, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
    adapter.fail_on = "mol-010"
    with pytest.raises(KeyboardInterrupt):
        list(prepared_items(adapter, make_dataset().samples, {}, ahead=True))
    adapter.fail_on = None
    first = next(prepared_items(adapter, make_dataset(n=600).samples, {}, ahead=True))
    assert first[0] == "mol-000"
    assert not [t for t in threading.enumerate() if t.name == "matteralign-prepare"]
    # the stored bits of a run that prepares ahead equal those of the serial run
    stores = {}
    for ahead_flag in (False, True):
        from matteralign.run import embed as embed_module

        stores[ahead_flag] = EmbeddingStore(tmp_path / str(ahead_flag))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(embed_module, "prepared_items", lambda *a, ahead=False, f=ahead_flag,
                          original=embed_module.prepared_items: original(*a, ahead=f))
            embed_dataset(adapter, make_dataset(poison=poison), stores[ahead_flag],
                          shard_size=10, batch_budget=12)
    for layer in ("first", "last"):
        a, b = (stores[flag].load("toy", CARD.id, layer) for flag in (False, True))
        assert a.ids == b.ids and a.failures == b.failures
        np.testing.assert_array_equal(a.values, b.values)


class CrashingHostAdapter(HostDistanceAdapter):
    """Its prepare kills the worker process on the sample holding Ar."""

    def prepare(self, sample: Sample):
        import os

        if "Ar" in sample.atoms.get_chemical_symbols():
            os._exit(3)
        return super().prepare(sample)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prepare workers fork (Linux)")
def test_a_dying_prepare_worker_is_an_adapter_error_naming_the_model_and_sample():
    dataset = make_dataset(n=6, poison={4: "Ar"})
    with pytest.raises(AdapterError, match=r"distance-test: a prepare worker process died .* "
                       r"sample mol-00[0-4] or one after it"):
        list(prepared_items(CrashingHostAdapter(CARD), dataset.samples, {}, workers=2))


def test_atoms_models_batch_512_atoms_by_default_other_inputs_32(tmp_path):
    from matteralign.run.embed import default_batch_budget

    DistanceAdapter.calls = 0
    summary = embed_dataset(DistanceAdapter(CARD), make_dataset(300), EmbeddingStore(tmp_path),
                            shard_size=300)
    assert summary.n_embedded == 300
    assert DistanceAdapter.calls == 3  # 4-atom molecules: 128 + 128 + 44 (was 38 batches of 8)
    assert default_batch_budget(CARD.model_copy(update={"input": "smiles"})) == 32
