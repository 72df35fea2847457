from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from matteralign.metrics import EmbeddingError, nearest_neighbours
from tests.metrics.conftest import make_pair


def brute(x, k, kind):
    s = x @ x.T if kind == "inner" else -cdist(x, x, "sqeuclidean")
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("kind", ["inner", "euclidean"])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_exact_lists(kind, precision):
    x, _ = make_pair(300, seed=2)
    g = nearest_neighbours(x, 7, kind, precision=precision)
    np.testing.assert_array_equal(g.indices, brute(x, 7, kind))
    if kind == "euclidean":
        d = np.take_along_axis(cdist(x, x), g.indices, 1)
        np.testing.assert_allclose(g.values, d, rtol=1e-12)


def test_ties_lowest_index_and_groups():
    x = np.repeat(np.arange(5.0)[:, None], 3, axis=0)  # each value 3 times
    g = nearest_neighbours(x, 2, "euclidean")
    assert g.indices[0].tolist() == [1, 2]
    assert g.indices[1].tolist() == [0, 2]
    g2 = nearest_neighbours(x, 2, "euclidean", groups=np.repeat(np.arange(5), 3))
    assert g2.indices[0].tolist() == [3, 4]
    assert 0 < g2.tied_fraction <= 1


def test_small_blocks_same_result():
    from matteralign.metrics._backend import Backend

    x, _ = make_pair(97, seed=6)
    be = Backend("cpu", block_bytes=97 * 8 * 3 * 5)  # 5-row blocks
    a = nearest_neighbours(x, 4, "inner", be)
    b = nearest_neighbours(x, 4, "inner")
    np.testing.assert_array_equal(a.indices, b.indices)


def test_n_le_k():
    with pytest.raises(EmbeddingError, match="N > 5"):
        nearest_neighbours(np.eye(5), 5)


def _tf32_backend():
    """CPU backend whose tiles see inputs truncated to 11 significant bits, as TF32 may do."""
    import torch

    from matteralign.metrics._backend import Backend

    class TF32Cpu(Backend):
        @property
        def gemm_input_roundoff(self) -> float:
            return (1.0 + 2.0**-24) * (1.0 + 2.0**-10) - 1.0

        def to_working(self, x64):
            w = x64.to(torch.float32).contiguous()
            return (w.view(torch.int32) & ~0x1FFF).view(torch.float32)  # drop 13 mantissa bits

    return TF32Cpu("cpu", "float32")


def _unit(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_tile_error_factor_bounds_truncated_tf32_gemm():
    from matteralign.metrics.neighbours import tile_error_factor

    be = _tf32_backend()
    x = _unit(400, 512, 3) * np.random.default_rng(4).uniform(0.5, 3.0, size=(400, 1))
    c = tile_error_factor(be, 512)
    assert 1.9e-3 < c < 2.1e-3
    import torch

    w = be.to_working(torch.as_tensor(x))
    err = np.abs((w @ w.T).double().numpy() - x @ x.T)
    nrm = np.linalg.norm(x, axis=1)
    ratio = err / np.outer(nrm, nrm)
    assert ratio.max() <= c
    assert ratio.max() > c / 20  # rigorous, not absurdly loose


@pytest.mark.parametrize("kind", ["inner", "euclidean"])
def test_float32_fallback_fraction_small_and_exact(kind):
    x = _unit(3000, 64, 5)
    g32 = nearest_neighbours(x, 10, kind, precision="float32")
    np.testing.assert_array_equal(g32.indices, brute(x, 10, kind))
    assert g32.fallback_fraction < 0.01
    gt = nearest_neighbours(x, 10, kind, _tf32_backend())
    np.testing.assert_array_equal(gt.indices, g32.indices)
    np.testing.assert_allclose(gt.values, g32.values, rtol=1e-12)
    assert gt.fallback_fraction < 0.05
    assert nearest_neighbours(x, 10, kind).fallback_fraction == 0.0


@pytest.mark.parametrize("kind", ["inner", "euclidean"])
def test_float32_tie_heavy_lattice(kind):
    rng = np.random.default_rng(8)
    x = rng.integers(-2, 3, size=(400, 4)).astype(float) + 100.0  # many exact ties, offset
    for be in ("float32", _tf32_backend()):
        g = (nearest_neighbours(x, 6, kind, precision=be) if isinstance(be, str)
             else nearest_neighbours(x, 6, kind, be))
        np.testing.assert_array_equal(g.indices, brute(x, 6, kind))
        assert g.tied_fraction > 0.5


@pytest.mark.parametrize("kind", ["inner", "euclidean"])
def test_approximate_lists_report_their_recall(kind):
    from matteralign.metrics._backend import Backend

    x, _ = make_pair(400, seed=8)
    exact = brute(x, 10, kind)
    g = nearest_neighbours(x, 10, kind, Backend("cpu", neighbours="approximate"))
    found = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(g.indices, exact, strict=True)])
    assert g.recall == pytest.approx(found, abs=1e-12)  # N < 1024: every row is sampled
    assert 0.99 <= g.recall <= 1.0 and g.fallback_fraction == 0.0
    scores = x @ x.T if kind == "inner" else -cdist(x, x, "sqeuclidean")
    listed = np.take_along_axis(scores, g.indices, 1)
    assert np.all(np.diff(listed, axis=1) <= 1e-12)  # each list ordered by its exact scores
    assert nearest_neighbours(x, 10, kind).recall == 1.0


def test_backend_rejects_unknown_neighbour_mode():
    from matteralign.metrics._backend import Backend

    with pytest.raises(ValueError, match="'exact' or 'approximate'"):
        Backend("cpu", neighbours="fast")


def test_pairwise_with_approximate_neighbours():
    from matteralign.metrics import pairwise

    x, y = make_pair(300, seed=9)
    models = {"a": x, "b": y, "c": x + 0.1 * np.roll(x, 1, axis=1)}
    exact = pairwise(models, "cknna-k10")
    approx = pairwise(models, "cknna-k10", neighbours="approximate")
    assert {"recall_a", "recall_b"} <= set(approx.rows.columns)
    assert "recall_a" not in exact.rows.columns
    assert approx.rows["recall_a"].between(0.99, 1.0).all()
    np.testing.assert_allclose(approx.matrix.to_numpy(), exact.matrix.to_numpy(), atol=0.02)


@pytest.mark.parametrize("n", [50, 1000, 4099])
def test_top_candidates_equals_topk(n):
    import torch

    from matteralign.metrics.neighbours import top_candidates

    rng = np.random.default_rng(n)
    s = torch.as_tensor(rng.normal(size=(7, n)))
    s[3] = torch.as_tensor(rng.integers(0, 5, size=n).astype(float))  # heavy ties
    s[4, : n - 20] = -torch.inf  # fewer finite entries than F
    for f in (1, 12, 30):
        vals, cols = top_candidates(s, f)
        ref = torch.topk(s, f, dim=1).values
        torch.testing.assert_close(vals, ref, rtol=0, atol=0)
        torch.testing.assert_close(s.gather(1, cols), vals, rtol=0, atol=0)
        assert all(len(set(r.tolist())) == f for r in cols)  # distinct columns
        assert int(cols.max()) < n
