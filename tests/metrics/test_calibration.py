from __future__ import annotations

import numpy as np
import pytest

from matteralign.metrics import get_metric
from matteralign.metrics._backend import resolve_backend
from matteralign.metrics.calibration import (
    benjamini_hochberg,
    calibrate,
    calibrate_layers,
    calibrated_scores,
    null_matrices,
    permutations,
)
from matteralign.metrics.engine import prepare_inputs


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(7)
    base = rng.normal(size=(70, 4))
    out = {f"m{i}": base @ rng.normal(size=(4, 9)) + 0.6 * rng.normal(size=(70, 9))
           for i in range(4)}
    out["noise"] = rng.normal(size=(70, 6))
    return out


@pytest.mark.parametrize("mid", ["cknna-k6", "mknn-k6"])
def test_knn_null_equals_recomputed_scores(models, mid):
    """The all-pairs relabelled-graph null equals the metric recomputed on y[pi]."""
    spec = get_metric(mid)
    be = resolve_backend("cpu")
    names, xs = prepare_inputs(models, spec, ())
    perms = permutations(70, 3, seed=2)
    null = null_matrices(spec, xs, names, be, perms)
    for r, p in enumerate(perms):
        for a in range(len(xs)):
            for b in range(len(xs)):
                if a != b:
                    assert null[r, a, b] == pytest.approx(spec(xs[a], xs[b][p]), abs=1e-12)
        assert np.isnan(np.diag(null[r])).all()


@pytest.mark.parametrize("mid", ["cka-linear-unbiased", "dcor-u", "ii-k2", "svcca"])
def test_generic_null_equals_recomputed_scores(models, mid):
    spec = get_metric(mid)
    be = resolve_backend("cpu")
    names, xs = prepare_inputs(models, spec, ())
    perms = permutations(70, 2, seed=4)
    null = null_matrices(spec, xs, names, be, perms)
    for r, p in enumerate(perms):
        assert null[r, 0, 4] == pytest.approx(spec(xs[0], xs[4][p]), rel=1e-9, abs=1e-12)
        assert null[r, 3, 1] == pytest.approx(spec(xs[3], xs[1][p]), rel=1e-9, abs=1e-12)


def test_restricted_permutations_stay_in_groups():
    groups = np.array(list("aabbbcdddd"))
    perms = permutations(10, 50, seed=0, groups=groups)
    assert (groups[perms] == groups[None, :]).all()
    assert (perms[:, 5] == 5).all()  # "c" is alone: a fixed point
    assert len({tuple(p) for p in perms}) > 10
    assert (np.sort(perms, axis=1) == np.arange(10)).all()


def _reference(obs, null, alpha, smax):
    """Gröger et al.'s formulas written out in float64 (independent of the package)."""
    k = len(null)
    comb = np.sort(np.append(null, obs))
    tau = comb[min(max(int(np.ceil((1 - alpha) * (k + 1))) - 1, 0), k)]
    p = (1 + np.sum(null >= obs)) / (k + 1)
    return float(np.clip((obs - tau) / max(smax - tau, 1e-12), 0, 1)), p, tau


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_calibrate_matches_formula(alpha):
    rng = np.random.default_rng(0)
    null = rng.normal(0.2, 0.05, size=(199, 3))
    obs = np.array([0.21, 0.35, 0.9])
    cal, p, tau = calibrate(obs, null, True, alpha)
    for j in range(3):
        ref = _reference(obs[j], null[:, j], alpha, 1.0)
        assert (cal[j], p[j], tau[j]) == pytest.approx(ref, abs=1e-15)
    # a dissimilarity is the mirrored similarity with best score 0
    dcal, dp, dtau = calibrate(1 - obs, 1 - null, False, alpha)
    mcal, mp, mtau = calibrate(-(1 - obs), -(1 - null), True, alpha, s_best=0.0)
    np.testing.assert_allclose(dcal, mcal, atol=1e-15)
    np.testing.assert_allclose(dp, mp)
    np.testing.assert_allclose(dtau, -mtau)


def test_benjamini_hochberg_matches_definition():
    rng = np.random.default_rng(1)
    p = np.append(rng.uniform(size=30) ** 3, np.nan)
    adj = benjamini_hochberg(p)
    finite = p[:-1]
    m = finite.size
    order = np.argsort(finite)
    raw = finite[order] * m / np.arange(1, m + 1)
    ref = np.empty(m)
    ref[order] = np.minimum(1, np.minimum.accumulate(raw[::-1])[::-1])
    np.testing.assert_allclose(adj[:-1], ref, rtol=1e-12)
    assert np.isnan(adj[-1])


def _fixed_perm_fn(perms):
    import torch

    it = iter(perms)
    return lambda n, device: torch.as_tensor(next(it), device=device)


@pytest.mark.parametrize("mid", ["cknna-k6", "dcor-u", "cka-linear"])
def test_calibrated_scores_match_calibrated_similarity(models, mid):
    """Our calibrated score, p and tau equal ``calibrated_similarity.calibrate`` given the same
    permutations and our metric as its ``sim`` (the package works in float32)."""
    cs = pytest.importorskip("calibrated_similarity")
    import torch

    spec = get_metric(mid)
    res = calibrated_scores(models, mid, n_permutations=99, seed=5, progress=False)
    perms = permutations(70, 99, seed=5)
    for a, b in [("m0", "m1"), ("m2", "noise")]:
        row = res.rows[(res.rows.model_a == a) & (res.rows.model_b == b)].iloc[0]

        def sim(x, y):
            return float(spec(x.double().numpy(), y.double().numpy()))

        cal, p, tau = cs.calibrate(torch.as_tensor(models[a]), torch.as_tensor(models[b]), sim,
                                   K=99, alpha=0.05, smax=1.0, perm_fn=_fixed_perm_fn(perms))
        assert row.p_value == pytest.approx(float(p), abs=1e-7)
        assert row.tau == pytest.approx(float(tau), abs=1e-6)
        assert row.calibrated == pytest.approx(float(cal), abs=1e-5)
    assert res.rows.loc[(res.rows.model_a == "m0") & (res.rows.model_b == "m1"),
                        "calibrated"].item() > 0.3
    assert (res.rows.p_fdr >= res.rows.p_value).all()


@pytest.mark.parametrize("agg", ["max", "mean"])
def test_calibrate_layers_matches_calibrated_similarity(models, agg):
    cs = pytest.importorskip("calibrated_similarity")
    import torch

    spec = get_metric("cka-linear")
    la = [models["m0"], models["m0"][:, :5]]
    lb = [models["m1"], models["noise"], models["m2"][:, 2:]]
    ours = calibrate_layers(la, lb, spec, agg=agg, n_permutations=49, seed=3)
    perms = permutations(70, 49, seed=3)

    def sim(x, y):
        return float(spec(x.double().numpy(), y.double().numpy()))

    cal, p, tau = cs.calibrate_layers([torch.as_tensor(x) for x in la],
                                      [torch.as_tensor(y) for y in lb], sim, agg=agg, K=49,
                                      perm_fn=_fixed_perm_fn(perms))
    assert ours["p_value"] == pytest.approx(float(p), abs=1e-7)
    assert ours["tau"] == pytest.approx(float(tau), abs=1e-6)
    assert ours["calibrated"] == pytest.approx(float(cal), abs=1e-5)


def test_observed_matrix_is_reused(models):
    from matteralign.metrics import pairwise

    mat = pairwise(models, "mknn-k6").matrix
    a = calibrated_scores(models, "mknn-k6", n_permutations=20, observed=mat).rows
    b = calibrated_scores(models, "mknn-k6", n_permutations=20).rows
    np.testing.assert_allclose(a.raw, b.raw)
    assert a.calibrated.equals(b.calibrated)


def test_null_fills_range_is_flagged():
    """Biased dCor of unrelated data at small N has a null near its top: flagged."""
    rng = np.random.default_rng(0)
    emb = {"a": rng.normal(size=(6, 30)), "b": rng.normal(size=(6, 30))}
    rows = calibrated_scores(emb, "dcor", n_permutations=200).rows
    assert rows.null_fills_range.all() and rows.tau.iloc[0] > 0.9


@pytest.mark.parametrize("mid", ["dcor", "dcor-u", "cka-rbf-unbiased", "ii-k3"])
def test_dense_nulls_equal_the_streamed_rounds(models, mid, monkeypatch):
    """Whole tiles / rank matrices kept across rounds give the streamed pass's null (II exactly,
    also on integer data with many tied distances)."""
    import matteralign.metrics.calibration as cal

    spec = get_metric(mid)
    be = resolve_backend("cpu")
    rng = np.random.default_rng(9)
    data = dict(models)
    data["grid"] = rng.integers(0, 3, size=(70, 2)).astype(float)
    names, xs = prepare_inputs(data, spec, ())
    perms = permutations(70, 3, seed=8)
    dense = null_matrices(spec, xs, names, be, perms)
    monkeypatch.setattr(cal, "DENSE_NULL_BYTES", 0)
    streamed = null_matrices(spec, xs, names, be, perms)
    if spec.family == "ii":
        np.testing.assert_array_equal(dense, streamed)
    else:
        np.testing.assert_allclose(dense, streamed, rtol=1e-10, atol=1e-13)


def test_knn_null_without_the_dense_key_table(models, monkeypatch):
    """Large N (N^2 above the dense limit) looks the relabelled edges up by binary search."""
    import matteralign.metrics.calibration as cal

    spec = get_metric("cknna-k6")
    be = resolve_backend("cpu")
    names, xs = prepare_inputs(models, spec, ())
    perms = permutations(70, 2, seed=6)
    dense = null_matrices(spec, xs, names, be, perms)
    monkeypatch.setattr(cal._KnnNull, "dense_limit", 0)
    np.testing.assert_array_equal(null_matrices(spec, xs, names, be, perms), dense)
