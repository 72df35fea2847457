"""The embedding store: atomic shards, checksums, manifest, locking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.errors import StoreError
from matteralign.store.embedding_store import EmbeddingStore, ShardRecord
from tests.store.lock_holder import held_elsewhere


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


def test_second_writer_is_refused_and_the_holder_may_nest(tmp_path):
    with held_elsewhere(tmp_path):
        with pytest.raises(StoreError, match="locked by another matteralign run"):
            with EmbeddingStore(tmp_path).lock():
                pass
    store = EmbeddingStore(tmp_path)
    with store.lock(), EmbeddingStore(tmp_path).lock():  # one command's stages nest
        pass
    with store.lock():  # and the lock is free again afterwards
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


def _rewrite_header(path, change) -> None:
    """Rewrite a shard's header metadata through ``change(metadata)`` without recomputing the
    checksum: what a swapped id or a flipped bit in the header does to a file."""
    import json
    import struct

    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    change(header["__metadata__"])
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length:])


def _swap_first_ids(metadata) -> None:
    import json

    ids = json.loads(metadata["ids"])
    ids[0], ids[1] = ids[1], ids[0]
    metadata["ids"] = json.dumps(ids)


@pytest.mark.parametrize("change", [
    _swap_first_ids,
    lambda m: m.update(ids=m["ids"].replace("s1", "s7")),  # a flipped bit: another id
    lambda m: m.update(failures="[]"),
    lambda m: m.update(config_hash="abd"),
    lambda m: m.update(provenance=m["provenance"].replace("float32", "float64")),
    lambda m: m.update(extra="added"),
], ids=["swapped-ids", "changed-id", "dropped-failure", "config-hash", "provenance", "new-field"])
def test_checksum_covers_ids_failures_and_every_header_field(tmp_path, change):
    store = EmbeddingStore(tmp_path)
    path = store.write_shard("d", "m", 0, record())
    _rewrite_header(path, change)
    assert store.read_header(path) is not None  # the header still parses: only the sum knows
    problem = store.shard_problem(path)
    assert problem == (f"shard {path} fails its checksum (its tensors, sample ids or header "
                       "changed since it was written); rerun `matteralign embed` to recompute it")
    with pytest.raises(StoreError, match="fails its checksum"):
        store.load("d", "m", "h")
    assert not store.shard_is_current("d", "m", 0, "abc")
    assert store.scan(verify=True).status.iloc[0] == f"corrupt: {problem}"


def test_tensor_dtype_shape_and_layer_name_are_covered(tmp_path):
    import json
    import struct

    store = EmbeddingStore(tmp_path)
    path = store.write_shard("d", "m", 0, record(4))  # layer h: (4, 3) float32
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    for old, new in ((b'"layer/h"', b'"layer/g"'), (b'"F32"', b'"I32"'), (b"[4,3]", b"[3,4]")):
        assert old in data[8:8 + length]
        path.write_bytes(data[:8] + data[8:8 + length].replace(old, new, 1) + data[8 + length:])
        assert "fails its checksum" in store.shard_problem(path), old
    path.write_bytes(data)
    assert store.shard_problem(path) is None
    assert json.loads(store.read_header(path)["ids"]) == ["s0", "s1", "s2", "s3"]


def test_a_shard_of_an_older_format_is_reported_and_never_current(tmp_path):
    store = EmbeddingStore(tmp_path)
    path = store.write_shard("d", "m", 0, record())
    _rewrite_header(path, lambda m: m.pop("format"))
    assert "written by an older matteralign" in store.shard_problem(path)
    assert not store.shard_is_current("d", "m", 0, "abc")


def test_foreign_files_are_never_read_or_deleted_and_stale_shards_go_by_index(tmp_path):
    store = EmbeddingStore(tmp_path)
    for shard in range(3):
        store.write_shard("d", "m", shard, record(2, offset=2 * shard))
    folder = store.model_dir("d", "m")
    backup = folder / "shard-00001.bak.safetensors"
    backup.write_bytes(store.shard_path("d", "m", 1).read_bytes())
    notes = [folder / "notes.txt", folder / "shard-1.safetensors", folder / ".my.tmp",
             tmp_path / "embeddings" / "d" / "README"]
    for path in notes:
        path.write_text("mine")
    assert list(store.shard_files("d", "m")) == [0, 1, 2]
    assert store.foreign_files() == sorted([backup, *notes])
    assert list(store.scan().shard) == [0, 1, 2]  # no ValueError from the stray name
    assert store.load("d", "m", "h", n_shards=3).ids == [f"s{i}" for i in range(6)]
    store.remove_shards_from("d", "m", 2)  # a smaller dataset now: only shard 2 goes
    assert sorted(p.name for p in store.shard_paths("d", "m")) == ["shard-00000.safetensors",
                                                                   "shard-00001.safetensors"]
    with store.lock():  # clearing a killed run's temporary files spares foreign ones
        pass
    assert all(path.exists() for path in [backup, *notes])


def test_load_refuses_a_shard_beyond_the_finished_count(tmp_path):
    store = EmbeddingStore(tmp_path)
    for shard in (0, 1, 2):
        store.write_shard("d", "m", shard, record(2, offset=2 * shard))
    store.mark_complete("d", "m", 2)
    with pytest.raises(StoreError, match="shard-00002.safetensors is beyond the 2 shards"):
        store.load_finished("d", "m", "h")


def test_scan_and_reading_never_write(tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    store.write_shard("d", "m", 0, record())
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").rglob("*")}
    (tmp_path / "store").chmod(0o555)
    try:
        reader = EmbeddingStore(tmp_path / "store", create=False)
        assert list(reader.scan(verify=True).status) == ["ok"]
        assert reader.failures() and reader.foreign_files() == []
    finally:
        (tmp_path / "store").chmod(0o755)
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "store").rglob("*")}
