from __future__ import annotations

import warnings

import numpy as np
import pytest

from matteralign.metrics import bootstrap_ci, get_metric, permutation_null
from tests.metrics.conftest import make_pair


@pytest.fixture(scope="module")
def models():
    x, y = make_pair(60, seed=21)
    return {"a": x, "b": y, "c": np.random.default_rng(5).normal(size=(60, 4))}


@pytest.mark.parametrize("mid", ["cknna-k5", "cka-linear-unbiased", "dcor", "ii-k1", "svcca",
                                 "linrec", "rsa"])
def test_permutation_null_equals_recompute(models, mid):
    n_perm = 19
    df = permutation_null(models, mid, n_permutations=n_perm, seed=3, progress=False)
    spec = get_metric(mid)
    rng = np.random.default_rng(3)
    perms = [rng.permutation(60) for _ in range(n_perm)]
    row = df.iloc[0]
    a, b = models[row.model_a], models[row.model_b]
    null = [spec(a, b[p]) for p in perms]
    assert row.null_mean == pytest.approx(np.mean(null), rel=1e-9, abs=1e-12)
    assert row.null_sd == pytest.approx(np.std(null, ddof=1), rel=1e-7, abs=1e-12)
    again = permutation_null(models, mid, n_permutations=n_perm, seed=3, progress=False)
    assert df.equals(again)


def test_related_pair_is_significant(models):
    df = permutation_null(models, "dcor", n_permutations=99, seed=0, progress=False)
    ab = df[(df.model_a == "a") & (df.model_b == "b")].iloc[0]
    assert ab.p_value == 0.01 and ab.calibrated > 0.5 and ab.z > 3 and ab.tau < ab.value


def test_too_few_rounds_cannot_calibrate(models):
    """With R + 1 < 1 / alpha, tau would be the largest of {observed, null}: refused."""
    with pytest.raises(ValueError, match="at least 19"):
        permutation_null(models, "dcor", n_permutations=9, seed=0, progress=False)


@pytest.mark.parametrize("mid", ["cknna-k5", "dcor", "cka-linear"])
def test_bootstrap_reproducible_and_brackets(models, mid):
    df = bootstrap_ci(models, mid, n_bootstrap=8, seed=1, progress=False)
    assert (df.ci_low <= df.ci_high).all()
    assert df.equals(bootstrap_ci(models, mid, n_bootstrap=8, seed=1, progress=False))


def test_subsample_interval_has_no_duplicates_and_brackets_value(models):
    df = bootstrap_ci(models, "cknna-k10", n_bootstrap=20, seed=0, progress=False)
    assert (df.method == "subsample").all() and (df.resample_size == 30).all()
    assert ((df.ci_low <= df.value) & (df.value <= df.ci_high)).mean() >= 2 / 3
    boot = bootstrap_ci(models, "cknna-k10", n_bootstrap=4, seed=0, method="bootstrap",
                        progress=False)
    assert (boot.resample_size == 60).all()


def test_per_model_rejected(models):
    with pytest.raises(ValueError):
        permutation_null(models, "id-twonn")


def test_bootstrap_of_an_unscorable_pair_is_nan_without_numpy_warnings(models):
    """Distinct one-hot rows (the composition of elemental solids: every neighbour tied) make
    CKNNA NaN in every round: those pairs get NaN statistics, without numpy warnings."""
    with_onehot = {**models, "onehot": np.eye(60)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        df = bootstrap_ci(with_onehot, "cknna-k5", n_bootstrap=4, seed=1, progress=False)
    stats = ["boot_mean", "boot_sd", "ci_low", "ci_high"]
    onehot = (df.model_a == "onehot") | (df.model_b == "onehot")
    assert onehot.sum() == 6
    assert df.loc[onehot, stats].isna().all().all()
    assert np.isfinite(df.loc[~onehot, stats].to_numpy()).all()
    plain = bootstrap_ci(models, "cknna-k5", n_bootstrap=4, seed=1, progress=False)
    np.testing.assert_allclose(df.loc[~onehot, stats].to_numpy(), plain[stats].to_numpy())
