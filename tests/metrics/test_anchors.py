"""Anchor (relative) representations and their distortion on planted data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from matteralign.metrics import EmbeddingError
from matteralign.metrics.anchors import (
    anchor_distortion,
    direct_sampling,
    farthest_point_sampling,
    joint_anchors,
    pointwise_anchor_distortion,
    relative_representation,
    relative_representations,
)


def _fps_reference(x, k, start=0):
    """Direct transcription: recompute all min-distances to the chosen set at every step."""
    chosen = [start]
    for _ in range(k - 1):
        d = cdist(x, x[chosen]).min(axis=1)
        chosen.append(int(np.argmax(d)))
    return np.array(chosen)


def test_fps_matches_direct_computation():
    x = np.random.default_rng(0).normal(size=(200, 7))
    for start in (0, 13):
        np.testing.assert_array_equal(farthest_point_sampling(x, 25, start),
                                      _fps_reference(x, 25, start))


def test_fps_refuses_too_many_anchors():
    x = np.vstack([np.zeros((5, 2)), np.ones((5, 2))])
    with pytest.raises(EmbeddingError, match="distinct"):
        farthest_point_sampling(x, 3)
    with pytest.raises(EmbeddingError, match="anchors among"):
        farthest_point_sampling(x, 11)


def test_relative_representation_is_cosine_to_anchors():
    x = np.random.default_rng(1).normal(size=(30, 5))
    idx = np.array([3, 7, 11])
    expected = 1 - cdist(x, x[idx], metric="cosine")
    np.testing.assert_allclose(relative_representation(x, idx), expected, atol=1e-12)


def test_rotation_and_scale_of_other_width_give_zero_distortion():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 16))
    q, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    y = 3.0 * np.hstack([x, np.zeros((300, 8))]) @ q  # wider, rotated, scaled
    assert anchor_distortion(x, y, k=32) < 1e-12
    reps, idx = relative_representations({"a": x, "b": y}, 32)
    assert reps["a"].shape == reps["b"].shape == (300, 32) and len(set(idx)) == 32


def test_noise_gives_positive_distortion_that_grows():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 16))
    small = anchor_distortion(x, x + 0.05 * rng.normal(size=x.shape), k=32)
    large = anchor_distortion(x, x + 0.5 * rng.normal(size=x.shape), k=32)
    assert 0 < small < large


def test_per_structure_distortion_is_group_mean_in_first_appearance_order():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 6))
    y = x + 0.3 * rng.normal(size=x.shape)
    groups = np.array(["s9"] * 10 + ["s1"] * 20 + ["s5"] * 10)
    per_atom = pointwise_anchor_distortion(x, y, k=8)
    per_structure = pointwise_anchor_distortion(x, y, k=8, groups=groups)
    np.testing.assert_allclose(
        per_structure, [per_atom[:10].mean(), per_atom[10:30].mean(), per_atom[30:].mean()])


def test_joint_anchors_do_not_depend_on_model_order():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(50, 4)), 100 * rng.normal(size=(50, 9))
    np.testing.assert_array_equal(joint_anchors({"a": a, "b": b}, 10),
                                  joint_anchors({"b": b, "a": a}, 10))


def test_bad_input_is_named():
    x = np.random.default_rng(6).normal(size=(20, 3))
    with pytest.raises(EmbeddingError, match="zero vectors"):
        relative_representation(np.vstack([x, np.zeros((1, 3))]), [0, 1])
    with pytest.raises(EmbeddingError, match="row indices"):
        relative_representation(x, [0, 99])
    with pytest.raises(EmbeddingError, match="samples"):
        anchor_distortion(x, x[:-1], k=4)


def test_registered_family_matches_the_function():
    from matteralign.metrics import get_metric, pairwise

    rng = np.random.default_rng(7)
    emb = {"a": rng.normal(size=(60, 4)), "b": rng.normal(size=(60, 7))}
    spec = get_metric("anchordist-k8")
    assert spec.symmetric and not spec.higher_is_more_similar
    mat = pairwise(emb, spec).matrix
    assert mat.loc["a", "b"] == pytest.approx(anchor_distortion(emb["a"], emb["b"], k=8))
    assert mat.loc["b", "a"] == mat.loc["a", "b"]


def _planted_mixture(n_clusters: int, per_cluster: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Well separated Gaussian blobs in 12-D with unequal sizes; (rows, cluster of each row)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(n_clusters, 12))
    sizes = per_cluster + np.arange(n_clusters) * 7
    labels = np.repeat(np.arange(n_clusters), sizes)
    return centres[labels] + rng.normal(scale=0.3, size=(len(labels), 12)), labels


def test_direct_takes_one_anchor_from_each_planted_cluster_and_is_deterministic():
    x, labels = _planted_mixture(6, 40, seed=3)
    chosen = direct_sampling(x, 6)
    assert sorted(labels[chosen]) == list(range(6))  # one per cluster, every cluster covered
    np.testing.assert_array_equal(chosen, direct_sampling(x, 6))
    np.testing.assert_array_equal(chosen, direct_sampling(x.copy(), 6))


def test_joint_direct_anchors_do_not_depend_on_the_order_of_the_models():
    """The engine scores a symmetric measure once per unordered pair: (a, b) and (b, a) must pick
    the same anchors (column order changes PCA and BIRCH by rounding, enough to move one)."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=(120, 6))
    models = {"a": np.tanh(base @ rng.normal(size=(6, 16))), "b": base @ rng.normal(size=(6, 9)),
              "c": rng.normal(size=(120, 4))}
    forward = joint_anchors(models, 24, method="direct")
    for order in (("b", "a", "c"), ("c", "b", "a")):
        reordered = joint_anchors({m: models[m] for m in order}, 24, method="direct")
        np.testing.assert_array_equal(forward, reordered)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # maml's own Birch
def test_direct_matches_maml_direct_sampler():
    direct = pytest.importorskip("maml.sampling.direct")
    for seed, k in ((0, 5), (1, 12), (2, 30)):
        rng = np.random.default_rng(seed)
        x = np.vstack([_planted_mixture(4, 30, seed)[0][:, :8],
                       rng.normal(scale=3.0, size=(120, 8))])  # blobs and a diffuse background
        sampler = direct.DIRECTSampler(
            structure_encoder=False,
            clustering=direct.BirchClustering(n=k, threshold_init=0.5),
            select_k_from_clusters=direct.SelectKFromClusters(k=1))
        expected = sampler.fit_transform(x)["selected_indexes"]
        assert sorted(direct_sampling(x, k).tolist()) == sorted(int(i) for i in expected)


def test_direct_anchors_give_zero_distortion_for_a_rotated_wider_copy():
    x, _ = _planted_mixture(5, 30, seed=4)
    q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(20, 20)))
    y = 2.0 * np.hstack([x, np.zeros((len(x), 8))]) @ q
    assert anchor_distortion(x, y, k=10, method="direct") < 1e-12
    noisy = y + np.random.default_rng(6).normal(scale=3.0, size=y.shape)
    assert anchor_distortion(x, noisy, k=10, method="direct") > 0.01
    reps, idx = relative_representations({"a": x, "b": y}, 10, method="direct")
    np.testing.assert_array_equal(idx, joint_anchors({"a": x, "b": y}, 10, method="direct"))
    assert reps["a"].shape == (len(x), 10)


def test_direct_refuses_more_anchors_than_distinct_rows():
    x = np.repeat(np.eye(3), 4, axis=0)
    with pytest.raises(EmbeddingError, match="3 distinct"):
        direct_sampling(x, 4)
