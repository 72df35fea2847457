"""Layer-wise alignment: best layer pair, last layers, matched relative depth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.layers import (
    calibrate_best_layers,
    layerwise_alignment,
    load_layers,
    summarise_layers,
)
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


def _noise_layers(n_models: int, n_layers: int, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {f"m{i}": {f"l{j}": rng.normal(size=(n, 6)) for j in range(n_layers)}
            for i in range(n_models)}


def test_best_of_many_noise_layer_pairs_is_not_significant():
    """Eight unrelated models of 8 noise layers: the naive p of each pair's best of 64 layer pairs
    is small (selection), the layer-aware p of the maximum is not."""
    layers = _noise_layers(8, 8, 60, seed=1)
    rows = layerwise_alignment(layers, "cknna-k6")
    best = calibrate_best_layers(layers, rows, "cknna-k6", n_permutations=199, seed=0)
    assert len(best) == 28
    assert (best.best_p_selected < 0.05).mean() >= 0.8
    assert (best.best_p < 0.05).mean() <= 0.15
    assert (best.best_p >= best.best_p_selected).all()
    assert best.best_calibrated.median() == 0.0


def test_planted_layer_pair_is_significant():
    rng = np.random.default_rng(2)
    layers = _noise_layers(2, 6, 80, seed=3)
    layers["m1"]["l4"] = layers["m0"]["l1"] @ np.linalg.qr(rng.normal(size=(6, 6)))[0] \
        + 0.05 * rng.normal(size=(80, 6))
    rows = layerwise_alignment(layers, "cknna-k8")
    summary = summarise_layers(rows)
    best = calibrate_best_layers(layers, rows, "cknna-k8", n_permutations=99, seed=0).iloc[0]
    assert (summary.best_layer_a.item(), summary.best_layer_b.item()) == ("l1", "l4")
    assert best.best_p == pytest.approx(1 / 100)
    assert best.best_calibrated > 0.5


def test_layer_aware_null_equals_brute_force():
    """tau, p and calibrated of the best layer pair against a loop over the same permutations with
    the pure metric function on every layer pair."""
    from matteralign.metrics import get_metric
    from matteralign.metrics.calibration import permutations

    layers = _noise_layers(2, 3, 40, seed=4)
    layers["m1"]["l2"] = layers["m0"]["l0"] + 0.8 * np.random.default_rng(5).normal(size=(40, 6))
    spec = get_metric("cknna-k5")
    rows = layerwise_alignment(layers, spec.id)
    best = calibrate_best_layers(layers, rows, spec.id, n_permutations=39, seed=7).iloc[0]
    a, b = list(layers["m0"].values()), list(layers["m1"].values())
    observed = max(spec(x, y) for x in a for y in b)
    null = np.array([max(spec(x, y[p]) for x in a for y in b)
                     for p in permutations(40, 39, seed=7)])
    p = (1 + np.sum(null >= observed)) / 40
    tau = np.sort(np.append(null, observed))[int(np.ceil(0.95 * 40)) - 1]
    assert best.best_p == pytest.approx(p)
    assert best.best_tau == pytest.approx(tau, abs=1e-10)
    assert best.best_calibrated == pytest.approx(max((observed - tau) / (1 - tau), 0.0), abs=1e-10)


def test_single_layer_pairs_reuse_the_matrix_calibration(monkeypatch):
    """Pairs of single-layer models have no layer choice: their best-layer calibration is the
    matrix's cell (no null drawn when every model has one layer), and it equals what the
    layer-aware null gives for them (same permutations)."""
    import matteralign.metrics.calibration as calibration
    from matteralign.analysis.significance import calibrate_matrices
    from matteralign.metrics import pairwise

    layers = _noise_layers(3, 1, 50, seed=6)
    layers["m1"]["l0"] = layers["m0"]["l0"] + 0.3 * np.random.default_rng(1).normal(size=(50, 6))
    flat = {m: ls["l0"] for m, ls in layers.items()}
    matrix = pairwise(flat, "cknna-k5").matrix
    cells = calibrate_matrices(flat, {"cknna-k5": matrix}, "toy", {"cknna-k5": 49})
    rows = layerwise_alignment(layers, "cknna-k5")
    drawn = calibrate_best_layers(layers, rows, "cknna-k5", n_permutations=49)

    def no_null(*args, **kwargs):
        raise AssertionError("a layer-aware null was drawn for single-layer models")

    monkeypatch.setattr(calibration, "calibrated_layer_scores", no_null)
    reused = calibrate_best_layers(layers, rows, "cknna-k5", n_permutations=49,
                                   calibrated=cells)
    at = cells.set_index(["model_a", "model_b"])
    for r in reused.itertuples():
        assert (r.best_calibrated, r.best_p) == (at.calibrated[(r.model_a, r.model_b)],
                                                 at.p_value[(r.model_a, r.model_b)])
    pd.testing.assert_frame_equal(reused, drawn, check_dtype=False)
    assert reused.best_p.iloc[0] == pytest.approx(1 / 50)


def test_an_unscorable_layer_pair_is_nan_not_an_error():
    """A constant-neighbourhood layer (one-hot rows: every neighbour tied) scores NaN: the best
    is taken over the scored layer pairs, and a pair with none scored is NaN with no p."""
    layers = _noise_layers(2, 2, 40, seed=8)
    layers["m1"]["l1"] = np.eye(40)
    layers["m2"] = {"l0": np.eye(40)}
    rows = layerwise_alignment(layers, "cknna-k4")
    best = calibrate_best_layers(layers, rows, "cknna-k4", n_permutations=19) \
        .set_index(["model_a", "model_b"])
    scored = rows[(rows.model_a == "m0") & (rows.model_b == "m1")].value
    assert scored.isna().sum() == 2 and np.isfinite(best.loc[("m0", "m1"), "best_p"])
    assert np.isnan(best.loc[("m1", "m2"), ["best_calibrated", "best_p", "best_tau"]]).all()
