"""Stage timings of a Backend (what the GPU benchmark prints), and the chunked sampled recall."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.metrics import pairwise
from matteralign.metrics._backend import Backend
from matteralign.metrics.neighbours import _sampled_recall, nearest_neighbours


def _models(m=3, n=120, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    return {f"m{i}": (z @ rng.normal(size=(4, 6 + i)) + 0.3 * rng.normal(size=(n, 6 + i))
                      ).astype(np.float32) for i in range(m)}


@pytest.mark.parametrize("metric", ["cknna-k5", "dcor", "cka-linear"])
def test_recorded_stages_leave_the_scores_unchanged(metric):
    emb = _models()
    stages: dict[str, float] = {}
    timed = pairwise(emb, metric, preprocessing=["l2"], device=Backend("cpu", stages=stages))
    plain = pairwise(emb, metric, preprocessing=["l2"])
    np.testing.assert_array_equal(timed.matrix.to_numpy(), plain.matrix.to_numpy())
    assert {"prepare: to float64 on the device", "prepare: checks and steps",
            "score: total (knn and pairs included)", "result table"} <= set(stages)
    assert all(v >= 0 for v in stages.values())
    if metric.startswith("cknna"):
        assert stages["knn: fallback rows"] == 0  # float64 tiles on the CPU: nothing to redo


def test_screened_search_counts_its_fallback_rows():
    x = np.random.default_rng(1).normal(size=(300, 5))
    stages: dict[str, float] = {}
    g = nearest_neighbours(x, 7, "inner", Backend("cpu", precision="float32", stages=stages))
    assert stages["knn: fallback rows"] == round(g.fallback_fraction * 300)
    assert "knn: screen and re-rank" in stages and "knn: graph to host" in stages


def test_sampled_recall_is_the_same_in_any_chunk_size():
    import torch

    x = torch.as_tensor(np.random.default_rng(2).normal(size=(1500, 4)))
    g = nearest_neighbours(x.numpy(), 6, "inner", Backend("cpu", neighbours="approximate"))
    idx = torch.as_tensor(g.indices).clone()
    idx[::3, 0] = (idx[::3, 0] + 1) % 1500  # some misses, so recall < 1
    whole = _sampled_recall(x, idx, 6, "inner", None, chunk=10**6)
    assert whole < 1
    for chunk in (1, 7, 1000):
        assert _sampled_recall(x, idx, 6, "inner", None, chunk=chunk) == whole
