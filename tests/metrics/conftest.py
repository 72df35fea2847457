"""Shared data for the metric tests: random and structured (N, D) embeddings."""

from __future__ import annotations

import numpy as np
import pytest


def make_pair(n: int = 120, dx: int = 12, dy: int = 9, seed: int = 0, noise: float = 0.3):
    """Two related spaces: y is a nonlinear map of x's 4-d latent plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    x = z @ rng.normal(size=(4, dx)) + 0.1 * rng.normal(size=(n, dx))
    y = np.tanh(z @ rng.normal(size=(4, dy))) + noise * rng.normal(size=(n, dy))
    return x, y


@pytest.fixture(params=["random", "structured"])
def pair(request):
    """(x, y) pairs: independent Gaussians, and a shared-latent structured pair."""
    if request.param == "random":
        rng = np.random.default_rng(1)
        return rng.normal(size=(100, 7)), rng.normal(size=(100, 5))
    return make_pair()


def rel_close(a: float, b: float, rtol: float = 1e-9) -> bool:
    """|a - b| <= rtol * max(|a|, |b|, 1e-12)."""
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)
