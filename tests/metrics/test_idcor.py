from __future__ import annotations

import numpy as np

from matteralign.metrics import id_correlation
from tests.metrics.conftest import make_pair, rel_close
from tests.metrics.test_intrinsic_dimension import twonn_dense


def test_matches_dense_and_detects_dependence():
    x, y = make_pair(150, noise=0.05, seed=2)
    r = id_correlation(x, y, n_permutations=20, seed=1)
    ix, iy, ixy = twonn_dense(x), twonn_dense(y), twonn_dense(np.hstack([x, y]))
    assert rel_close(r.id_xy, ixy) and rel_close(r.id_x, ix) and rel_close(r.id_y, iy)
    assert rel_close(r.value, (ix + iy - ixy) / max(ix, iy))
    assert r.p_value == 1 / 21
    assert id_correlation(x, y, n_permutations=20, seed=1) == r  # seeded, bit-identical


def test_independent_not_significant():
    rng = np.random.default_rng(3)
    r = id_correlation(rng.normal(size=(150, 3)), rng.normal(size=(150, 3)), n_permutations=20)
    assert r.p_value > 0.05
    assert np.isnan(id_correlation(*make_pair(60), n_permutations=0).p_value)
