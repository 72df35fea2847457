"""The embedding store: atomic shards, checksums, manifest, locking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.errors import StoreError
from matteralign.store.embedding_store import EmbeddingStore, ShardRecord


def record(n: int = 5, offset: int = 0) -> ShardRecord:
    rng = np.random.default_rng(offset)
    return ShardRecord(
        ids=[f"s{offset + i}" for i in range(n)],
        layers={"h": rng.normal(size=(n, 3)).astype(np.float32)},
        energy=rng.normal(size=n),
        failures=[(f"bad{offset}", "unsupported element Xe")],
        config_hash="abc",
        provenance={"layers": ["h"], "dtype": "float32", "runtime_s": 0.1},
    )


def test_roundtrip_and_load_joins_shards_in_order(tmp_path):
    store = EmbeddingStore(tmp_path)
    first, second = record(5, 0), record(4, 5)
    store.write_shard("d", "m", 0, first)
    store.write_shard("d", "m", 1, second)
    loaded = store.load("d", "m", "h", n_shards=2)
    assert loaded.ids == first.ids + second.ids
    np.testing.assert_array_equal(loaded.values, np.concatenate([first.layers["h"],
                                                                  second.layers["h"]]))
    np.testing.assert_array_equal(loaded.energy, np.concatenate([first.energy, second.energy]))
    assert loaded.failures == [("bad0", "unsupported element Xe"),
                               ("bad5", "unsupported element Xe")]
    assert not list(tmp_path.rglob("*.tmp"))


def test_shard_is_current_checks_hash_and_checksum(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.write_shard("d", "m", 0, record())
    assert store.shard_is_current("d", "m", 0, "abc")
    assert not store.shard_is_current("d", "m", 0, "other")
    assert not store.shard_is_current("d", "m", 1, "abc")
    path = store.shard_path("d", "m", 0)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside a tensor: the header still parses
    path.write_bytes(bytes(data))
    assert not store.shard_is_current("d", "m", 0, "abc")
    with pytest.raises(StoreError, match="checksum"):
        store.load("d", "m", "h")


def test_missing_shards_and_layers_raise_clear_errors(tmp_path):
    store = EmbeddingStore(tmp_path)
    with pytest.raises(StoreError, match="run `matteralign embed` first"):
        store.load("d", "m", "h")
    store.write_shard("d", "m", 0, record())
    with pytest.raises(StoreError, match="1 of 2 shards"):
        store.load("d", "m", "h", n_shards=2)
    with pytest.raises(StoreError, match="no layer 'z'"):
        store.load("d", "m", "z")


def test_wrong_shapes_are_refused(tmp_path):
    bad = record()
    bad.layers["h"] = bad.layers["h"][:3]
    with pytest.raises(StoreError, match=r"expected \(5, D\)"):
        EmbeddingStore(tmp_path).write_shard("d", "m", 0, bad)


def test_manifest_lists_every_shard(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.write_shard("d", "m", 0, record(5, 0))
    store.write_shard("d", "m", 1, record(3, 5))
    manifest = pd.read_parquet(store.write_manifest())
    assert list(manifest["shard"]) == [0, 1]
    assert list(manifest["n_samples"]) == [5, 3]
    assert set(manifest["status"]) == {"ok"}
    assert store.failures()[0] == {"dataset": "d", "model": "m", "sample_id": "bad0",
                                   "reason": "unsupported element Xe"}


def test_second_writer_is_refused(tmp_path):
    store = EmbeddingStore(tmp_path)
    with store.lock():
        with pytest.raises(StoreError, match="locked by another matteralign run"):
            with EmbeddingStore(tmp_path).lock():
                pass


def test_load_finished_needs_the_completion_record(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.write_shard("d", "m", 0, record(4))
    store.write_shard("d", "m", 1, record(3, offset=4))
    with pytest.raises(StoreError, match="the embedding of model 'm' on 'd' did not finish"):
        store.load_finished("d", "m", "h")
    store.mark_complete("d", "m", 2)
    assert store.load_finished("d", "m", "h").ids == [f"s{i}" for i in range(7)]
    store.mark_complete("d", "m", 3)  # the record promises a shard that is not there
    with pytest.raises(StoreError, match="2 of 3 shards"):
        store.load_finished("d", "m", "h")
