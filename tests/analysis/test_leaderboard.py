"""Leaderboard: calibrated alignment to the strongest models, and scoring a candidate."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.leaderboard import leaderboard, score_candidate, strongest_models
from matteralign.store.embedding_store import EmbeddingStore, ShardRecord

N = 100


@pytest.fixture(scope="module")
def embeddings() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N, 5))
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    return {"ref-1": z, "ref-2": z @ rotation, "close": z + 0.3 * rng.normal(size=z.shape),
            "noise": rng.normal(size=(N, 5))}


def test_strongest_models_by_mae_else_consensus():
    names = ["a", "b", "c", "d"]
    m = pd.DataFrame([[1, .9, .8, .1], [.9, 1, .7, .1], [.8, .7, 1, .1], [.1, .1, .1, 1]],
                     names, names)
    refs, basis = strongest_models(m, pd.Series({"d": 0.01, "c": 0.02, "x": 0.0}), n=3)
    assert (refs, basis) == (["d", "c"], "lowest energy MAE")
    refs, basis = strongest_models(m, None, n=2)
    assert (refs, basis) == (["a", "b"], "consensus")


def test_rotated_copy_scores_one_and_noise_scores_chance(embeddings):
    table = leaderboard(embeddings, ["ref-1", "ref-2"], "cknna-k10", n_permutations=20,
                        n_bootstrap=10, preprocessing=["l2"]).set_index("model")
    assert table.loc["ref-1", "score"] == pytest.approx(1.0, abs=1e-9)
    assert table.loc["ref-1", "n_references"] == 1
    assert table.loc["noise", "n_references"] == 2
    assert abs(table.loc["noise", "score"]) < 0.1
    assert 0.2 < table.loc["close", "score"] < 1.0
    assert table.loc["close", "ci_low"] <= table.loc["close", "score"] <= \
        table.loc["close", "ci_high"]
    assert table.loc["close", "max_p"] <= 1 / 21 + 1e-12
    assert list(table.index[:2]) == ["ref-1", "ref-2"]


def test_candidate_is_joined_on_ids_and_missing_ids_are_reported(tmp_path, embeddings):
    store = EmbeddingStore(tmp_path)
    ids = [f"s{i:03d}" for i in range(N)]
    for model in ("ref-1", "ref-2"):
        store.write_shard("d", model, 0, ShardRecord(ids, {"last": embeddings[model]}, None, [],
                                                     "h", {}))
        store.mark_complete("d", model, 1)
    # the candidate is the rotated latent, shuffled, without 10 ids and with 2 unknown ones
    order = np.random.default_rng(1).permutation(N)[:90]
    cand_ids = [ids[i] for i in order] + ["extra-1", "extra-2"]
    cand = np.vstack([embeddings["ref-2"][order] * 3.0, np.ones((2, 5))])
    result = score_candidate(store, "d", "mine", cand_ids, cand, {"ref-1": "last", "ref-2": "last"},
                             "cknna-k10", n_permutations=30, n_bootstrap=5)
    assert result.n_shared == 90
    assert len(result.missing_from_candidate) == 10
    assert result.unknown_to_store == ["extra-1", "extra-2"]
    row = result.table.set_index("model").loc["mine"]
    assert row.score == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ValueError, match="also a reference"):
        score_candidate(store, "d", "ref-1", cand_ids, cand, {"ref-1": "last"})


def test_consensus_ranks_a_model_without_finite_scores_last_quietly():
    """A model the metric scores NaN against every other has no consensus mean: it ranks last,
    and no numpy 'Mean of empty slice' warning is raised."""
    names = ["a", "b", "c", "flat"]
    m = pd.DataFrame([[1, .9, .2, np.nan], [.9, 1, .3, np.nan], [.2, .3, 1, np.nan],
                      [np.nan] * 4], names, names)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        refs, basis = strongest_models(m, None, n=4)
    assert (refs, basis) == (["b", "a", "c", "flat"], "consensus")


def test_leaderboard_reuses_the_matrix_calibration(embeddings, monkeypatch):
    """Given the matrix's calibrated pairs (as the study computes them), the leaderboard draws no
    null of its own and its score, raw, null mean and p are the matrix cells' means over the
    references; without them it draws the same null (same rounds and seed) and agrees."""
    import matteralign.metrics.calibration as calibration
    from matteralign.analysis.significance import calibrate_matrices
    from matteralign.metrics import pairwise

    refs = ["ref-1", "close"]
    matrix = pairwise(embeddings, "cknna-k10", preprocessing=["l2"]).matrix
    rows = calibrate_matrices(embeddings, {"cknna-k10": matrix}, "toy", {"cknna-k10": 99},
                              seed=0, preprocessing=["l2"])
    own = leaderboard(embeddings, refs, "cknna-k10", n_permutations=99, n_bootstrap=5,
                      preprocessing=["l2"]).set_index("model")

    def no_null(*args, **kwargs):
        raise AssertionError("the leaderboard drew its own permutation null")

    monkeypatch.setattr(calibration, "calibrated_scores", no_null)
    table = leaderboard(embeddings, refs, "cknna-k10", n_bootstrap=5, preprocessing=["l2"],
                        calibration=rows).set_index("model")
    cell = {c: rows.set_index(["model_a", "model_b"])[c] for c in
            ("calibrated", "raw", "null_mean", "p_value")}
    for model in embeddings:
        others = [r for r in refs if r != model]
        assert table.loc[model, "score"] == pytest.approx(
            np.mean([cell["calibrated"][(model, r)] for r in others]), abs=1e-15)
        assert table.loc[model, "raw"] == pytest.approx(
            np.mean([matrix.loc[model, r] for r in others]), abs=1e-15)
        assert table.loc[model, "null_mean"] == pytest.approx(
            np.mean([cell["null_mean"][(model, r)] for r in others]), abs=1e-15)
        assert table.loc[model, "max_p"] == max(cell["p_value"][(model, r)] for r in others)
    pd.testing.assert_frame_equal(table, own)
