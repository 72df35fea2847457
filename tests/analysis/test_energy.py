"""Energy regression MAE after the per-model compositional correction (paper §4.7)."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.analysis.energy import (
    composition_matrix,
    compositional_residuals,
    energy_regression_error,
)


def test_composition_matrix_counts_elements():
    counts, elements = composition_matrix([[1, 1, 8], [6, 1, 1, 1, 1], [8, 8]])
    assert elements == [1, 6, 8]
    np.testing.assert_array_equal(counts, [[2, 0, 1], [4, 1, 0], [0, 0, 2]])


def test_linear_composition_energies_leave_zero_residuals():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 6, size=(40, 3)).astype(float)
    fit = compositional_residuals(counts @ [-1.5, -7.0, -4.2] + 2.0, counts)
    np.testing.assert_allclose(fit.weights, [-1.5, -7.0, -4.2], atol=1e-9)
    assert fit.intercept == pytest.approx(2.0)
    np.testing.assert_allclose(fit.residuals, 0, atol=1e-9)


def test_mae_ignores_a_models_own_composition_scale_and_is_exact():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 6, size=(200, 3)).astype(float)
    signal = rng.normal(size=200)
    error = 0.05 * rng.normal(size=200)
    reference = counts @ [-13.6, -1030.0, -2040.0] + signal
    predicted = counts @ [-3.1, -8.0, -5.0] + 11.0 + signal + error   # another level of theory
    result = energy_regression_error(reference, predicted, counts)
    # the composition part of the error is removed by the fit; what is left is the error's
    # own residual after projecting out [counts, 1]
    design = np.hstack([counts, np.ones((200, 1))])
    expected = error - design @ np.linalg.lstsq(design, error, rcond=None)[0]
    assert result.mae == pytest.approx(np.mean(np.abs(expected)), rel=1e-9)
    np.testing.assert_allclose(result.errors, expected, atol=1e-8)
    perfect = energy_regression_error(reference, counts @ [1.0, 2.0, 3.0] + signal, counts)
    assert perfect.mae == pytest.approx(0.0, abs=1e-9)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ"):
        energy_regression_error(np.zeros(3), np.zeros(4), np.ones((3, 1)))


def test_exact_interpolation_is_refused():
    """89 structures of 89 elements (matpes-*-refs): no residual freedom, so no MAE."""
    from matteralign.analysis.energy import EnergyFitError

    rng = np.random.default_rng(2)
    counts = np.eye(89) * rng.integers(1, 4, size=89)
    energies = rng.normal(size=89)
    with pytest.raises(EnergyFitError, match="matpes-pbe-refs, model-x.*0 residual degrees"):
        energy_regression_error(energies, energies + 0.1 * rng.normal(size=89), counts,
                                name="matpes-pbe-refs, model-x")
    counts = rng.integers(0, 5, size=(14, 4)).astype(float)
    with pytest.raises(EnergyFitError, match="needs at least 10"):
        compositional_residuals(rng.normal(size=14), counts)   # 14 - 5 = 9 < 10
    assert compositional_residuals(rng.normal(size=15), rng.integers(0, 5, size=(15, 4))
                                   .astype(float)).dof == 10


def test_mae_interval_is_the_percentile_bootstrap():
    from matteralign.analysis.energy import mae_interval

    errors = np.random.default_rng(3).normal(scale=0.05, size=120)
    lo, hi = mae_interval(errors, n_bootstrap=500, seed=4)
    idx = np.random.default_rng(4).integers(0, 120, (500, 120))
    ref = np.quantile(np.abs(errors)[idx].mean(1), [0.025, 0.975])
    assert (lo, hi) == pytest.approx(tuple(ref), rel=1e-12)
    assert lo < np.mean(np.abs(errors)) < hi
