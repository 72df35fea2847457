from __future__ import annotations

import numpy as np
import pytest

from matteralign.metrics import EmbeddingError, get_metric, list_metrics, pairwise
from tests.metrics.conftest import make_pair


@pytest.fixture(scope="module")
def models():
    x, y = make_pair(80, seed=11)
    rng = np.random.default_rng(12)
    return {"a": x, "b": y, "c": np.tanh(x[:, :5]) + 0.2 * rng.normal(size=(80, 5))}


@pytest.mark.parametrize("mid", [m for m in list_metrics() if m not in ("mknn-k10",)] + ["mknn-k5"])
def test_engine_equals_functions(models, mid):
    spec = get_metric(mid)
    if spec.k is not None and not spec.per_model:
        spec = spec.with_k(5)
    res = pairwise(models, spec, progress=False)
    names = list(models)
    if spec.per_model:
        for nm in names:
            assert res.per_model[nm] == pytest.approx(spec(models[nm]), rel=1e-10)
        return
    for a in names:
        for b in names:
            if a == b:
                continue
            want = spec(models[a], models[b])
            assert res.matrix.loc[a, b] == pytest.approx(want, rel=1e-10, abs=1e-12), (a, b)
    n_rows = 3 if spec.symmetric else 6
    assert len(res.rows) == n_rows and set(res.rows.metric) == {spec.id}


def test_rows_and_diagnostics(models):
    res = pairwise(models, "cknna", k=4, preprocessing=("l2",), progress=False)
    assert res.metric.id == "cknna-k4" and res.preprocessing == ("l2",)
    assert {"tied_fraction_a", "tied_fraction_b", "n_mutual"} <= set(res.rows.columns)
    assert (res.rows.preprocessing == "l2").all()


def test_errors(models):
    bad = dict(models, d=models["a"][:50])
    with pytest.raises(EmbeddingError, match="different numbers of samples"):
        pairwise(bad, "dcor", progress=False)
    nan = dict(models, d=np.full((80, 3), np.nan))
    with pytest.raises(EmbeddingError, match="model 'd'"):
        pairwise(nan, "cka", progress=False)
    with pytest.raises(EmbeddingError, match="k=100"):
        pairwise(models, "cknna-k100", progress=False)


def test_progress_bar_runs(models):
    assert pairwise(models, "mknn-k3", progress=True).matrix.shape == (3, 3)


@pytest.fixture(scope="module")
def mixed_models():
    """Five models of 40 samples: widths 3 to 60 (one D > N), one of rank 4 in 20 columns."""
    rng = np.random.default_rng(31)
    z = rng.normal(size=(40, 4))
    out = {f"w{d}": np.tanh(z @ rng.normal(size=(4, d))) + 0.3 * rng.normal(size=(40, d))
           for d in (3, 7, 12)}
    out["wide60"] = z @ rng.normal(size=(4, 60)) + 0.5 * rng.normal(size=(40, 60))
    out["rank4"] = z @ rng.normal(size=(4, 20))
    return out


@pytest.mark.parametrize("mid", ["svcca", "procrustes", "linrec"])
def test_factored_engine_equals_pair_functions(mixed_models, mid):
    """One Gram of the stacked factors gives every pair's value of the pair function."""
    spec = get_metric(mid)
    res = pairwise(mixed_models, spec, progress=False)
    names = list(mixed_models)
    want = np.array([[spec(mixed_models[a], mixed_models[b]) for b in names] for a in names])
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(res.matrix.to_numpy()[off], want[off], rtol=1e-10, atol=1e-13)
    diag = np.diag(res.matrix.to_numpy())
    if mid == "linrec":  # R^2(a -> a) < 1 only through the ridge shrinkage
        np.testing.assert_allclose(diag, np.diag(want), rtol=1e-10)
        assert len(res.rows) == 20
    else:
        assert diag.tolist() == ([1.0] * 5 if mid == "svcca" else [0.0] * 5)
        assert len(res.rows) == 10
    if mid == "svcca":
        ranks = res.rows.set_index(["model_a", "model_b"])
        assert ranks.loc[("w3", "rank4"), "rank_b"] == 4.0
        assert ranks.loc[("w3", "wide60"), "rank_b"] <= 39.0  # centred: rank <= N - 1


@pytest.mark.parametrize("mid", ["svcca", "procrustes", "linrec"])
def test_factored_gram_in_column_groups_equals_one_gram(mixed_models, mid, monkeypatch):
    """A Gram budget too small for one block (several column groups) changes nothing."""
    from matteralign.metrics import engine

    ref = pairwise(mixed_models, mid, progress=False)
    monkeypatch.setattr(engine.FactoredKernel, "gram_bytes", 8)  # groups as wide as the widest
    got = pairwise(mixed_models, mid, progress=False)
    np.testing.assert_allclose(got.matrix.to_numpy(), ref.matrix.to_numpy(), rtol=1e-12,
                               atol=1e-14)
    assert got.rows.columns.tolist() == ref.rows.columns.tolist()


def test_factored_engine_refuses_when_memory_is_short(mixed_models, monkeypatch):
    from matteralign.metrics import engine

    monkeypatch.setattr(engine, "_available_bytes", lambda: 10_000)
    with pytest.raises(EmbeddingError, match=r"svcca-v0\.99: 5 models at N=40 need about"):
        pairwise(mixed_models, "svcca", progress=False)


def test_factored_pair_path_equals_batched(mixed_models):
    """The per-pair path (permutation nulls, Ray blocks) and the batched Gram agree."""
    from matteralign.metrics._backend import Backend
    from matteralign.metrics.engine import kernel_for

    names, xs = list(mixed_models), list(mixed_models.values())
    for mid in ("svcca", "procrustes", "linrec"):
        kern = kernel_for(get_metric(mid), Backend("cpu"))
        batched, _ = kern.batched_matrix(xs, names, False)
        states = [kern.prepare(x, nm) for x, nm in zip(xs, names, strict=True)]
        loop = np.array([[kern.pair(sa, sb)[0] for sb in states] for sa in states])
        np.testing.assert_allclose(batched, loop, rtol=1e-12, atol=1e-14)


def test_prepared_models_are_scored_once_for_every_metric(models):
    """One prepare_models (validate, preprocess, check) serves several metrics, equal to
    pairwise on the raw mapping."""
    from matteralign.metrics import prepare_models

    prepared = prepare_models(models, ("l2",))
    assert prepared.names == list(models) and prepared.n_samples == 80
    for metric in ("cknna-k5", "cka-linear", "ii-k2", "svcca"):
        a = pairwise(prepared, metric, progress=False).matrix
        b = pairwise(models, metric, preprocessing=("l2",), progress=False).matrix
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_degenerate_models_are_dropped_with_a_reason_or_named_in_the_error(models):
    from matteralign.metrics import prepare_models

    bad = dict(models, flat=np.ones((80, 3)), hole=np.vstack([np.zeros((1, 3)),
                                                               np.ones((79, 3))]))
    bad["nan"] = np.where(np.arange(80)[:, None] == 7, np.nan, models["a"])
    prepared = prepare_models(bad, ("l2",), drop_degenerate=True)
    assert prepared.names == ["a", "b", "c"]
    assert "constant" in prepared.dropped["flat"]
    assert prepared.dropped["hole"].startswith("preprocessing l2 failed: 1 row(s) are all zeros")
    assert "NaN or inf (first: row 7)" in prepared.dropped["nan"]
    with pytest.raises(EmbeddingError, match="model 'flat': all 80 rows are identical"):
        prepare_models(bad, ())
    # a row scale that l2 removes leaves a constant embedding: checked after preprocessing
    scaled = dict(models, ray=np.arange(1, 81)[:, None] * np.array([[1.0, 2.0]]))
    assert "constant" in prepare_models(scaled, ("l2",), drop_degenerate=True).dropped["ray"]


def test_a_metric_that_does_not_fit_n_is_refused_not_lowered(models):
    from matteralign.metrics import check_scorable

    with pytest.raises(EmbeddingError, match="k=80 neighbours need N > 80"):
        check_scorable(get_metric("cknna-k80"), 80, "a")
    with pytest.raises(EmbeddingError, match="k=16 neighbours need N > 16"):
        check_scorable(get_metric("id-gride-k8"), 16, "a")  # GRIDE needs 2k neighbours
    with pytest.raises(EmbeddingError, match="cknna-k2 needs at least 4"):
        check_scorable(get_metric("cknna-k2"), 3, "a")
