"""The metric engine split into blocks (in process and on Ray) equals the single-process engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.metrics import nearest_neighbours, pairwise
from matteralign.metrics._backend import Backend
from matteralign.metrics.cknna import hsic_unbiased_sparse
from matteralign.metrics.knn_pairs import StackedGraphs, knn_pair_scores
from matteralign.metrics.neighbours import sorted_graph
from matteralign.run.ray_metrics import InProcessRunner, pairwise_blocks, ray_pairwise

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def embeddings() -> dict[str, np.ndarray]:
    """Four related models of 70 samples, widths 6 to 12, sharing a 5-d latent."""
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(70, 5))
    return {f"m{i}": np.tanh(latent @ rng.normal(size=(5, d)) + 0.3 * rng.normal(size=(70, d)))
            for i, d in enumerate([8, 12, 6, 10])}


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _assert_equal_results(ref, got, tol: float = 1e-12) -> None:
    if ref.matrix is None:
        np.testing.assert_allclose(got.per_model.values, ref.per_model.values, rtol=0, atol=tol)
        return
    a, b = ref.matrix.to_numpy(), got.matrix.to_numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=0, atol=tol)
    assert list(got.matrix.index) == list(ref.matrix.index)
    assert list(got.rows.columns) == list(ref.rows.columns)
    pd.testing.assert_frame_equal(got.rows.select_dtypes(exclude="number"),
                                  ref.rows.select_dtypes(exclude="number"))
    np.testing.assert_allclose(got.rows.select_dtypes("number").to_numpy(),
                               ref.rows.select_dtypes("number").to_numpy(), rtol=0, atol=tol)


METRICS = ["cknna-k5", "mknn-k5", "cka-linear", "cka-linear-unbiased", "cka-rbf-unbiased",
           "dcor", "dcor-u", "ii-k3", "idcor", "id-twonn", "svcca", "rsa", "procrustes", "linrec"]


@pytest.mark.parametrize("metric", METRICS)
def test_blocks_in_process_equal_the_engine(embeddings, metric):
    ref = pairwise(embeddings, metric, preprocessing=["l2"])
    got = pairwise_blocks(embeddings, metric, runner=InProcessRunner(), preprocessing=["l2"],
                          n_row_blocks=3, pairs_per_block=5)
    _assert_equal_results(ref, got)


def test_batched_knn_pair_scores_equal_sparse_hsic_reference(embeddings):
    """The device-batched mutual-edge HSIC equals the engine's CPU sparse HSIC, pair by pair."""
    be = Backend("cpu")
    xs = list(embeddings.values())
    graphs = [nearest_neighbours(x, 7, "inner") for x in xs]
    stacked = StackedGraphs.build(graphs, be)
    hsic, mutual = knn_pair_scores(stacked, 1, [0, 1, 2, 3], be)
    sa = sorted_graph(graphs[1])
    for r, b in enumerate([0, 1, 2, 3]):
        sb = sorted_graph(graphs[b])
        pos = np.searchsorted(sb.keys, sa.keys)
        hit = sb.keys[np.minimum(pos, sb.keys.size - 1)] == sa.keys
        expected = hsic_unbiased_sparse(70, sa.rows[hit], sa.cols[hit], sa.values[hit],
                                        sb.values[pos[hit]], sa.keys[hit])
        assert mutual[r] == hit.sum()
        assert hsic[r] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert mutual[1] == 70 * 7  # a graph is fully mutual with itself


@pytest.mark.parametrize("metric", ["cknna-k5", "cka-linear", "dcor-u", "ii-k3"])
def test_ray_equals_the_engine(embeddings, metric, ray_cluster):
    ref = pairwise(embeddings, metric, preprocessing=["l2"])
    got = ray_pairwise(embeddings, metric, preprocessing=["l2"], n_row_blocks=2,
                       pairs_per_block=8)
    _assert_equal_results(ref, got)
    assert got.n_samples == 70
