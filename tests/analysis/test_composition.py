"""Composition-controlled alignment (residualising on element fractions)."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.analysis.composition import (
    composition_controlled_alignment,
    composition_fractions,
    composition_r2,
    residualise,
)
from matteralign.metrics import pairwise


@pytest.fixture(scope="module")
def structures():
    rng = np.random.default_rng(0)
    numbers = [list(rng.choice([1, 6, 8, 42, 74], size=rng.integers(3, 12))) for _ in range(120)]
    return numbers, composition_fractions(numbers)


def test_fractions_sum_to_one(structures):
    numbers, f = structures
    np.testing.assert_allclose(f.sum(1), 1.0)
    assert f.shape == (120, len({z for zs in numbers for z in zs}))


def test_residual_equals_least_squares_residual(structures):
    _, f = structures
    x = np.random.default_rng(1).normal(size=(120, 7))
    design = np.hstack([f, np.ones((120, 1))])
    ref = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    np.testing.assert_allclose(residualise(x, f), ref, atol=1e-10)
    assert composition_r2(f @ np.random.default_rng(2).normal(size=(f.shape[1], 6)), f) == \
        pytest.approx(1.0)


def test_models_aligned_only_through_composition_lose_their_alignment(structures):
    """Two models = composition x their own weights + independent noise: high raw alignment,
    chance after the control; a pair sharing a non-composition signal keeps it."""
    _, f = structures
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(120, 3))
    values = {
        "comp-a": f @ rng.normal(size=(f.shape[1], 8)) * 5 + 0.3 * rng.normal(size=(120, 8)),
        "comp-b": f @ rng.normal(size=(f.shape[1], 8)) * 5 + 0.3 * rng.normal(size=(120, 8)),
        "geo-a": np.hstack([f * 5, shared + 0.2 * rng.normal(size=(120, 3))]),
        "geo-b": np.hstack([f * 5, shared + 0.2 * rng.normal(size=(120, 3))]),
        "composition": f,
    }
    raw = pairwise(values, "cka-linear").matrix
    pairs, models = composition_controlled_alignment(values, f, "cka-linear", raw,
                                                     n_permutations=200)
    assert models.set_index("model").left_out["composition"]
    p = pairs.set_index(["model_a", "model_b"])
    assert p.loc[("comp-a", "comp-b"), "raw"] > 0.5
    assert p.loc[("comp-a", "comp-b"), "controlled_calibrated"] == 0.0
    assert p.loc[("geo-a", "geo-b"), "controlled"] > 0.8
    assert p.loc[("geo-a", "geo-b"), "controlled_p"] < 0.01
