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
    if spec.family in ("cknna", "mknn", "ii"):
        spec = get_metric(mid, k=5)
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
