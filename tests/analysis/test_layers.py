"""Layer-wise alignment: best layer pair, last layers, matched relative depth."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.analysis.layers import layerwise_alignment, load_layers, summarise_layers
from matteralign.errors import StoreError
from matteralign.store.embedding_store import EmbeddingStore, ShardRecord


@pytest.fixture(scope="module")
def layers() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(120, 5))
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    return {
        # a's first layer is b's middle layer, rotated: the best pair is (a.l1, b.l2)
        "a": {"l1": z, "l2": rng.normal(size=(120, 4))},
        "b": {"l1": rng.normal(size=(120, 3)), "l2": z @ rotation, "l3": rng.normal(size=(120, 6))},
    }


def test_best_last_and_matched_depth(layers):
    rows = layerwise_alignment(layers, "cknna-k10", ["l2"])
    assert len(rows) == 2 * 3
    assert sorted(set(rows.depth_b)) == pytest.approx([1 / 3, 2 / 3, 1.0])
    summary = summarise_layers(rows).iloc[0]
    assert (summary.best_layer_a, summary.best_layer_b) == ("l1", "l2")
    assert summary.best == pytest.approx(1.0)
    last = rows[(rows.layer_a == "l2") & (rows.layer_b == "l3")].value.item()
    assert summary["last"] == pytest.approx(last)
    # matched: a.l1 (0.5) <-> b.l1 (1/3) or b.l2 (2/3)? nearest is b.l1 (gap 1/6 each, first kept)
    assert summary.matched_depth < summary.best
    assert summary.n_layers_a == 2 and summary.n_layers_b == 3


def test_load_layers_reads_shards_in_card_order(tmp_path):
    store = EmbeddingStore(tmp_path)
    for shard, ids in enumerate((["s0", "s1"], ["s2"])):
        n = len(ids)
        store.write_shard("d", "m", shard, ShardRecord(
            ids, {"zeta": np.full((n, 2), shard), "alpha": np.ones((n, 3))}, None, [], "h", {}))
    ids, values = load_layers(store, "d", "m", ["zeta", "alpha", "not-stored"])
    assert ids == ["s0", "s1", "s2"]
    assert list(values) == ["zeta", "alpha"]
    np.testing.assert_array_equal(values["zeta"][:, 0], [0, 0, 1])
    with pytest.raises(StoreError, match="'other'"):
        load_layers(store, "d", "other")
