"""Calibrated matrices of a study and the k / N guard rails."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.significance import (
    calibrate_matrices,
    choose_k,
    k_flags,
    k_over_n,
    rounds_for,
    scored_metric,
    study_metric_id,
)
from matteralign.metrics import pairwise
from matteralign.metrics.calibration import calibrated_scores


def test_k_rule_and_limit():
    assert [choose_k(n) for n in (5000, 250, 60, 12)] == [25, 25, 6, 2]
    assert k_over_n("cknna-k25", 60) == pytest.approx(25 / 60)
    assert k_over_n("dcor-u", 60) is None
    assert rounds_for("cknna-k25", 1000, 100) == 1000
    assert rounds_for("dcor-u", 1000, 100) == 100
    assert rounds_for("ii-k1", 1000, 100) == 1000


def test_k_from_n_only_where_the_id_leaves_it_unset():
    assert [scored_metric("cknna", n).id for n in (5000, 250, 60, 12)] == \
        [f"cknna-k{choose_k(n)}" for n in (5000, 250, 60, 12)]
    assert (scored_metric("mknn", 60).id, scored_metric("mknn", 5000).id) == ("mknn-k6", "mknn-k10")
    assert scored_metric("cknna-k25", 60).id == "cknna-k25"          # set by the user: kept
    assert scored_metric("dcor-u", 60).id == "dcor-u"
    assert scored_metric("id-mle", 60).id == "id-mle-k50"            # per-model: its own k
    assert [study_metric_id(m) for m in ("CKNNA", "cknna-k25", "cka")] == \
        ["cknna", "cknna-k25", "cka-linear"]


def _clustered(n: int = 60, seed: int = 3) -> dict[str, np.ndarray]:
    """Three models of clustered samples; CKNNA-k25 of the first two exceeds 1 at N = 60."""
    rng = np.random.default_rng(seed)
    z = (3 * rng.normal(size=(6, 8)))[rng.integers(0, 6, n)] + 0.3 * rng.normal(size=(n, 8))
    return {"a": z, "b": z + 0.3 * rng.normal(size=z.shape), "c": rng.normal(size=(n, 5))}


def test_score_dataset_picks_k_from_n_records_it_and_flags_a_set_k(tmp_path):
    """An id without k is scored with choose_k(N) (k = 6 at N = 60), equal to the pure CKNNA at
    that k and inside [-1, 1]; an id that sets k = 25 keeps it, and its values above 1 are
    flagged. scores.json records the id and k scored and the flags, and reads them back."""
    import json

    from matteralign.analysis.matrices import (
        read_dataset_scores,
        score_dataset,
        write_dataset_scores,
    )
    from matteralign.metrics.cknna import cknna
    from matteralign.store.embedding_store import StoredEmbeddings

    values = _clustered()
    ids = [f"s{i}" for i in range(60)]
    stored = [StoredEmbeddings(m, "toy", "last", ids, x, None, []) for m, x in values.items()]
    scores = score_dataset(stored, "toy", ["cknna", "cknna-k25", "dcor-u"], preprocess=())
    assert scores.metric_ids == {"cknna": "cknna-k6", "cknna-k25": "cknna-k25",
                                 "dcor-u": "dcor-u"}
    chosen, fixed = scores.matrices["cknna-k6"], scores.matrices["cknna-k25"]
    for a in values:
        for b in values:
            if a != b:
                assert chosen.loc[a, b] == pytest.approx(cknna(values[a], values[b], k=6),
                                                         abs=1e-10)
                assert fixed.loc[a, b] == pytest.approx(cknna(values[a], values[b], k=25),
                                                        abs=1e-10)
    off = ~np.eye(3, dtype=bool)
    assert fixed.to_numpy()[off].max() > 1.0                 # the defect the flag is for
    assert np.abs(chosen.to_numpy()[off]).max() <= 1.0
    flagged = dict(scores.flags)
    assert set(flagged) == {"metric cknna-k25 on toy"}
    assert k_flags("cknna-k25", 60, fixed) == [why for what, why in scores.flags]
    assert "25 / 60 = 0.42 exceeds 0.1" in scores.flags[0][1]
    assert "outside [-1, 1]" in scores.flags[1][1]

    write_dataset_scores(tmp_path, scores)
    index = json.loads((tmp_path / "alignment" / "toy" / "scores.json").read_text())
    assert index["metric_ids"]["cknna"] == "cknna-k6"
    assert index["k"] == {"cknna-k6": 6, "cknna-k25": 25}
    back = read_dataset_scores(tmp_path, "toy")
    assert back.metric_ids == scores.metric_ids and back.flags == scores.flags


def test_calibrate_matrices_reuses_the_matrices_and_flags():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 3))
    values = {f"m{i}": base + 0.5 * rng.normal(size=(40, 3)) for i in range(3)}
    mats = {m: pairwise(values, m).matrix for m in ("cknna-k10", "dcor-u")}
    table = calibrate_matrices(values, mats, "toy", {"cknna-k10": 200, "dcor-u": 50}, seed=1)
    assert set(table.metric) == {"cknna-k10", "dcor-u"}
    assert len(table[table.metric == "cknna-k10"]) == 6   # asymmetric: both orders
    assert len(table[table.metric == "dcor-u"]) == 3
    assert table[table.metric == "cknna-k10"].k_over_n_exceeded.all()   # 10 / 40 > 0.1
    assert not table[table.metric == "dcor-u"].k_over_n_exceeded.any()
    direct = calibrated_scores(values, "cknna-k10", 200, 1).rows
    mine = table[table.metric == "cknna-k10"].reset_index(drop=True)
    pd.testing.assert_series_equal(mine.calibrated, direct.calibrated, check_names=False)
    assert (mine.p_value < 0.01).all() and (mine.p_fdr >= mine.p_value).all()


def test_study_has_a_calibrated_score_and_fdr_p_for_every_cell(tmp_path, monkeypatch):
    from matteralign.analysis.study import AnalysisOptions, analyse_study
    from matteralign.config import StudyConfig
    from matteralign.run import study as run_study
    from tests.reliability.faulty_models import patch_registry

    patch_registry(monkeypatch)
    config = StudyConfig(name="cal", datasets=[{"name": "toy"}],
                         models=[{"id": "toy-geometry"}, {"id": "toy-geometry-b",
                                                          "options": {"seed": 3}}],
                         layers="all", metrics=["cknna-k10", "dcor-u"], shard_size=10,
                         device="cpu")
    run_study.embed_study(config, tmp_path)
    run_study.align_study(config, tmp_path)
    options = AnalysisOptions(n_permutations=5, n_bootstrap=2, ks=(2, 5), n_calibration=200,
                              n_calibration_rescored=20)
    result = analyse_study(config, tmp_path, options)
    for metric, mat in result.matrices["toy"].items():
        cal = result.calibrated_matrices["toy"][metric]
        off = ~np.eye(len(mat), dtype=bool)
        assert np.isfinite(cal.to_numpy()[off]).all(), metric
        rows = result.calibrated[(result.calibrated.dataset == "toy")
                                 & (result.calibrated.metric == metric)]
        assert rows.p_fdr.notna().all() and (rows.n_permutations > 0).all()
        for r in rows.itertuples():
            assert r.raw == mat.loc[r.model_a, r.model_b]
    comp = result.composition_pairs   # molecules with atoms: the control sits beside the raw
    assert {"raw", "controlled", "controlled_calibrated"} <= set(comp) and len(comp) == 2
    assert set(result.composition_models.model) == {"toy-geometry", "toy-geometry-b"}


def test_within_group_null_adds_columns_for_neighbour_measures():
    """Two models that agree only on which composition group a sample is in: aligned under the
    free null, not under permutations within groups."""
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(10), 6)
    centres = rng.normal(size=(10, 3)) * 5
    values = {f"m{i}": centres[groups] + rng.normal(size=(60, 3)) for i in range(3)}
    mats = {"cknna-k5": pairwise(values, "cknna-k5").matrix,
            "dcor-u": pairwise(values, "dcor-u").matrix}
    table = calibrate_matrices(values, mats, "toy", {"cknna-k5": 300, "dcor-u": 20},
                               groups=groups)
    knn = table[table.metric == "cknna-k5"]
    assert (knn.p_value < 0.01).all() and (knn.p_within > 0.05).mean() > 0.5
    assert (knn.calibrated_within < knn.calibrated).all()
    assert table[table.metric == "dcor-u"].calibrated_within.isna().all()


def test_an_unscored_pair_has_no_p_and_stays_out_of_the_fdr():
    """A model scored NaN against every other (one-hot rows: all neighbours tied) used to get
    p = 1 / (R + 1), the smallest possible, and to enter the BH correction. Its pairs now have
    NaN p, tau and p_fdr, and BH runs over the scored pairs alone."""
    from scipy.stats import false_discovery_control

    rng = np.random.default_rng(3)
    z = rng.normal(size=(40, 4))
    values = {"a": z, "b": z + 0.5 * rng.normal(size=z.shape), "c": rng.normal(size=(40, 4)),
              "onehot": np.eye(40)}
    mats = {"cknna-k5": pairwise(values, "cknna-k5").matrix}
    table = calibrate_matrices(values, mats, "toy", {"cknna-k5": 99})
    unscored = (table.model_a == "onehot") | (table.model_b == "onehot")
    assert unscored.sum() == 6 and table[unscored].raw.isna().all()
    assert table[unscored][["p_value", "tau", "calibrated", "p_fdr"]].isna().all().all()
    scored = table[~unscored]
    np.testing.assert_allclose(scored.p_fdr, false_discovery_control(scored.p_value, method="bh"),
                               rtol=1e-12)
    assert scored.p_value.min() == pytest.approx(1 / 100)
