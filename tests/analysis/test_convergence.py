"""Convergence: alignment to the lowest-MAE model against MAE, with rank correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from matteralign.analysis.convergence import (
    alignment_intervals,
    convergence,
    rank_correlation,
    rank_correlation_rows,
)

MODELS = [f"m{i}" for i in range(6)]


def alignment_matrix(to_best: list[float]) -> pd.DataFrame:
    m = np.eye(len(MODELS))
    m[:, 0] = m[0, :] = [1.0, *to_best]
    return pd.DataFrame(m, index=MODELS, columns=MODELS)


def test_monotone_decreasing_alignment_gives_minus_one():
    mae = pd.Series([0.01, 0.02, 0.05, 0.1, 0.2, 0.4], index=MODELS)
    res = convergence(mae, alignment_matrix([0.9, 0.7, 0.5, 0.3, 0.1]), "cknna-k25",
                      n_bootstrap=500)
    assert res.reference == "m0"
    assert res.table.loc[res.table.model == "m3", "alignment"].item() == pytest.approx(0.5)
    by = {c.method: c for c in res.correlations}
    assert by["spearman"].value == pytest.approx(-1.0)
    assert by["kendall"].value == pytest.approx(-1.0)
    assert by["spearman"].n == 5
    assert by["spearman"].ci_low == pytest.approx(-1.0)
    assert by["spearman"].ci_high == pytest.approx(-1.0)


def test_too_few_models_gives_a_note_not_an_error():
    mae = pd.Series([0.01, 0.02, 0.05], index=MODELS[:3])
    res = convergence(mae, alignment_matrix([0.9, 0.7, 0.5, 0.3, 0.1]), "dcor")
    assert res.correlations == []
    assert "at least 3" in res.note


def test_batched_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, size=(30, 8)).astype(float)
    y = x + rng.normal(size=(30, 8))
    np.testing.assert_allclose(rank_correlation_rows(x, y, "spearman"),
                               [stats.spearmanr(a, b)[0] for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(rank_correlation_rows(x, y, "kendall"),
                               [stats.kendalltau(a, b)[0] for a, b in zip(x, y, strict=True)])


def test_interval_brackets_the_estimate_for_noisy_data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=25)
    res = rank_correlation(x, -x + 0.8 * rng.normal(size=25), "spearman", n_bootstrap=800)
    assert res.ci_low < res.value < res.ci_high < 0
    assert res.p_value < 0.01


def test_alignment_intervals_bracket_the_alignment_to_the_reference():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(80, 4))
    emb = {f"m{i}": base + s * rng.normal(size=(80, 4)) for i, s in enumerate([0.1, 0.5, 1, 2])}
    from matteralign.metrics import pairwise

    mat = pairwise(emb, "cka-linear").matrix
    mae = pd.Series([0.01, 0.02, 0.05, 0.1], index=list(emb))
    res = alignment_intervals(convergence(mae, mat, "cka-linear", n_bootstrap=50), emb, 30)
    others = res.table[~res.table.is_reference]
    assert (others.ci_low <= others.alignment).all() and (others.alignment <= others.ci_high).all()
    assert res.table[res.table.is_reference].ci_low.isna().all()
