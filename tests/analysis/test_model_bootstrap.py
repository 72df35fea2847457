"""The model-resampled bootstrap of pair statistics, against draws whose pairs are enumerated."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
from scipy import stats

from matteralign.analysis.model_bootstrap import model_bootstrap_interval

# Pairs of five models, names out of sorted order, one pair given in both orders.
PAIRS = [("m3", "m1"), ("m1", "m4"), ("m0", "m2"), ("m2", "m3"), ("m4", "m0"), ("m3", "m4"),
         ("m1", "m2"), ("m4", "m1")]


def _enumerated_draws(statistic, n_bootstrap: int, seed: int, min_pairs: int) -> np.ndarray:
    """Each draw's statistic on its explicit list of pairs: every ordered pair of positions
    (i, j), i != j, of the drawn models whose (model i, model j) is a row of the table."""
    models = sorted({m for pair in PAIRS for m in pair})
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_bootstrap):
        drawn = [models[i] for i in rng.integers(0, len(models), len(models))]
        rows = [r for i, j in permutations(range(len(drawn)), 2)
                for r, pair in enumerate(PAIRS) if pair == (drawn[i], drawn[j])]
        if len(set(rows)) >= min_pairs:
            values.append(statistic(np.array(rows)))
    values = np.array(values, dtype=float)
    return values[np.isfinite(values)]


def test_weighted_mean_interval_equals_the_mean_over_enumerated_pairs():
    d = np.random.default_rng(1).normal(size=len(PAIRS))
    a, b = zip(*PAIRS, strict=True)
    got = model_bootstrap_interval(a, b, lambda w: w @ d / w.sum(), 300, level=0.9, seed=4)
    ref = np.quantile(_enumerated_draws(lambda rows: d[rows].mean(), 300, 4, 1), [0.05, 0.95])
    assert got == pytest.approx(tuple(ref), rel=1e-12)


def test_spearman_on_repeated_pairs_equals_spearman_over_enumerated_pairs():
    rng = np.random.default_rng(2)
    x = rng.random(len(PAIRS))
    y = x + rng.random(len(PAIRS))
    a, b = zip(*PAIRS, strict=True)
    got = model_bootstrap_interval(
        a, b, lambda w: stats.spearmanr(np.repeat(x, w), np.repeat(y, w))[0], 200, seed=0,
        min_pairs=3)
    with np.errstate(invalid="ignore"):
        draws = _enumerated_draws(lambda rows: stats.spearmanr(x[rows], y[rows])[0], 200, 0, 3)
    assert got == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])), rel=1e-12)


def test_interval_is_fixed_by_the_seed_and_needs_distinct_models():
    d = np.arange(len(PAIRS), dtype=float)
    a, b = zip(*PAIRS, strict=True)
    mean = lambda w: w @ d / w.sum()  # noqa: E731
    assert model_bootstrap_interval(a, b, mean, 100, seed=3) == \
        model_bootstrap_interval(a, b, mean, 100, seed=3)
    assert model_bootstrap_interval(a, b, mean, 100, seed=3) != \
        model_bootstrap_interval(a, b, mean, 100, seed=5)
    with pytest.raises(ValueError, match=r"pair \(m1, m1\) pairs a model with itself"):
        model_bootstrap_interval(["m0", "m1"], ["m2", "m1"], mean, 100)
