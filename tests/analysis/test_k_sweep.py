"""CKNNA k sweep and the rank stability of model pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from matteralign.analysis.k_sweep import cknna_k_sweep, rank_stability, sweep_ks


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 6))
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    embeddings = {"x": x, "rotated": x @ rotation, "noisy": x + 0.8 * rng.normal(size=x.shape),
                  "noise": rng.normal(size=(150, 6))}
    return cknna_k_sweep(embeddings, ks=(2, 10, 50, 1000), preprocessing=["l2"])


def test_ks_are_capped_at_n_minus_one():
    assert sweep_ks(150, (2, 25, 1000, 2500)) == [2, 25, 149]
    assert sweep_ks(20) == [2, 19]


def test_rotation_is_one_at_every_k_and_noise_near_zero(sweep):
    assert sorted(sweep.k.unique()) == [2, 10, 50, 149]
    assert len(sweep) == 4 * 6
    pair = sweep[(sweep.model_a == "x") & (sweep.model_b == "rotated")]
    np.testing.assert_allclose(pair.value, 1.0, atol=1e-9)
    noise = sweep[(sweep.model_a == "x") & (sweep.model_b == "noise")].set_index("k").value
    # near zero for small k and at k = N - 1 (global); mutual-neighbour selection biases
    # intermediate k (k / N = 1/3) upwards even for noise
    assert abs(noise[2]) < 0.1 and abs(noise[10]) < 0.1 and abs(noise[149]) < 0.1


def test_rank_of_pairs_is_stable_when_structure_is_clear(sweep):
    stability = rank_stability(sweep)
    assert list(stability.k_from) == [2, 10, 50]
    assert (stability.n_pairs == 6).all()
    assert stability.kendall_tau.iloc[1] > 0.5


def test_stability_p_value_permutes_models_not_pairs(sweep):
    """Mantel p: with 4 models there are only 4! = 24 relabellings, so p cannot fall below
    about 1/24 however many pairs agree (scipy's pair-level p would claim far more)."""
    from itertools import permutations

    stability = rank_stability(sweep, n_permutations=2000, seed=1)
    row = stability.iloc[1]
    assert row.n_models == 4
    wide = sweep.pivot_table(index=["model_a", "model_b"], columns="k", values="value")
    a, b = wide[row.k_from].to_numpy(), wide[row.k_to].to_numpy()
    models = sorted({m for pair in wide.index for m in pair})
    sym = {}
    for (ma, mb), v in zip(wide.index, b, strict=True):
        sym[(ma, mb)] = sym[(mb, ma)] = v
    taus = []
    for p in permutations(models):
        relabel = dict(zip(models, p, strict=True))
        taus.append(stats.kendalltau(a, [sym[(relabel[ma], relabel[mb])]
                                         for ma, mb in wide.index])[0])
    exact = np.mean(np.array(taus) >= row.kendall_tau - 1e-12)
    assert row.p_value == pytest.approx(exact, abs=0.03)
    assert row.p_value >= 1 / 24
