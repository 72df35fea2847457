"""The batched CKNNA / mutual-kNN pair kernel (on CPU torch) equals the per-pair CPU kernels."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.metrics import get_metric, nearest_neighbours, pairwise
from matteralign.metrics._backend import Backend
from matteralign.metrics.cknna import cknna_from_graphs, self_hsic
from matteralign.metrics.engine import kernel_for, score_matrix
from matteralign.metrics.knn import mutual_knn_from_graphs
from matteralign.metrics.knn_pairs import StackedGraphs, knn_pair_matrix, knn_pair_scores
from matteralign.metrics.neighbours import sorted_graph
from tests.metrics.conftest import make_pair

K = 6
PAIRS = [(0, 0), (0, 1), (1, 0), (1, 2), (2, 1), (3, 3), (3, 0), (2, 3)]


def _random_models() -> list[np.ndarray]:
    """Four independent Gaussian models of 90 samples."""
    rng = np.random.default_rng(5)
    return [rng.normal(size=(90, d)) for d in (7, 5, 11, 3)]


def _structured_models() -> list[np.ndarray]:
    """Shared-latent models, one on an integer lattice (many tied inner products)."""
    x, y = make_pair(90, seed=3)
    lattice = np.random.default_rng(4).integers(-2, 3, size=(90, 3)).astype(np.float64)
    return [x, y, np.tanh(x[:, :4]), lattice]


@pytest.fixture(scope="module", params=["random", "structured"])
def graphs(request):
    xs = _random_models() if request.param == "random" else _structured_models()
    return [nearest_neighbours(x, K, "inner") for x in xs]


def test_stacked_graphs_index_reverse_edges(graphs):
    stacked = StackedGraphs.build(graphs, Backend("cpu"))
    assert stacked.shape == (4, 90, K)
    idx, rev = stacked.idx.numpy(), stacked.rev.numpy()
    for a in range(4):
        edges = {(i, j) for i in range(90) for j in idx[a, i]}
        for flat in range(90 * K):
            i, j = divmod(flat, K)[0], idx[a, flat // K, flat % K]
            if (j, i) in edges:
                assert rev[a, flat] >= 0 and idx[a].reshape(-1)[rev[a, flat]] == i
                assert rev[a, flat] // K == j
            else:
                assert rev[a, flat] == -1


def test_batched_cknna_equals_cpu_pair_kernel(graphs):
    be = Backend("cpu")
    values, mutual = knn_pair_matrix(StackedGraphs.build(graphs, be), "cknna", be)
    sg = [sorted_graph(g) for g in graphs]
    hs = [self_hsic(s) for s in sg]
    for a, b in PAIRS:
        expected, n_mutual = cknna_from_graphs(sg[a], sg[b], hs[a], hs[b])
        assert values[a, b] == pytest.approx(expected, rel=0, abs=1e-12)
        assert mutual[a, b] == n_mutual
    assert np.allclose(np.diag(values), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.diag(mutual) == 90 * K)
    assert values[0, 1] != values[1, 0]  # asymmetric, kept as computed


def test_batched_mutual_knn_is_the_upper_triangle_of_the_cpu_kernel(graphs):
    be = Backend("cpu")
    values, _ = knn_pair_matrix(StackedGraphs.build(graphs, be), "mknn", be)
    sg = [sorted_graph(g) for g in graphs]
    for a, b in PAIRS:
        if b >= a:
            assert values[a, b] == mutual_knn_from_graphs(sg[a], sg[b])
        else:
            assert np.isnan(values[a, b])


def test_row_subsets_and_batches_give_the_same_scores(graphs):
    """Rows and batch sizes (memory budget) do not change a single score."""
    be = Backend("cpu")
    stacked = StackedGraphs.build(graphs, be)
    full, _ = knn_pair_matrix(stacked, "cknna", be)
    rows, _ = knn_pair_matrix(stacked, "cknna", be, rows=[2, 0])
    np.testing.assert_array_equal(rows, full[[2, 0]])
    tiny = Backend("cpu", block_bytes=1)  # one b per batch
    h_one, m_one = knn_pair_scores(stacked, 1, [3, 1, 0], tiny)
    h_all, m_all = knn_pair_scores(stacked, 1, [3, 1, 0], be)
    np.testing.assert_array_equal(m_one, m_all)
    np.testing.assert_allclose(h_one, h_all, rtol=0, atol=1e-15)


@pytest.mark.parametrize("metric", ["cknna-k6", "mknn-k6"])
@pytest.mark.parametrize("data", ["random", "structured"])
def test_engine_batched_path_equals_its_pair_loop(metric, data):
    """The engine's device path (here on CPU torch) equals its CPU pair loop, diagnostics too."""
    xs = _random_models() if data == "random" else _structured_models()
    names = [f"m{i}" for i in range(len(xs))]
    spec, be = get_metric(metric), Backend("cpu")
    ref, ref_diags = score_matrix(spec, xs, names, be, progress=False)
    got, got_diags = kernel_for(spec, be).batched_matrix(xs, names, progress=False)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert list(got_diags) == list(ref_diags)
    for key in ref_diags:
        np.testing.assert_array_equal(np.isnan(got_diags[key]), np.isnan(ref_diags[key]))
        np.testing.assert_allclose(got_diags[key], ref_diags[key], rtol=0, atol=0)
    if spec.symmetric:
        np.testing.assert_array_equal(got, got.T)


def test_engine_batched_path_with_groups():
    """Bootstrap groups (copies never neighbours) give the same matrix on both paths."""
    xs = [x[np.repeat(np.arange(45), 2)] for x in _structured_models()[:3]]
    groups = np.repeat(np.arange(45), 2)
    names = ["a", "b", "c"]
    spec, be = get_metric("cknna-k6"), Backend("cpu")
    ref, _ = score_matrix(spec, xs, names, be, progress=False, groups=groups)
    got, _ = kernel_for(spec, be).batched_matrix(xs, names, progress=False, groups=groups)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_pairwise_rows_unchanged_by_the_batched_kernel():
    """pairwise on CPU still uses the pair loop; its CKNNA rows match the batched matrix."""
    xs = _structured_models()
    emb = {f"m{i}": x for i, x in enumerate(xs)}
    res = pairwise(emb, "cknna-k6", progress=False)
    be = Backend("cpu")
    got, _ = kernel_for(get_metric("cknna-k6"), be).batched_matrix(xs, list(emb), False)
    np.testing.assert_allclose(res.matrix.to_numpy(), got, rtol=0, atol=1e-12)
