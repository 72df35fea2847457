"""compare_embeddings: every measure on files of the same samples, raw and calibrated, checked
against the metrics' own functions; joined() refuses different samples."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.analysis.file_comparison import compare_embeddings, joined
from matteralign.errors import StoreError
from matteralign.metrics import get_metric, l2_normalise
from matteralign.metrics.calibration import calibrated_scores


@pytest.fixture
def embeddings():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(30, 6))
    return {"a": base, "b": base @ rng.normal(size=(6, 4)), "c": rng.normal(size=(30, 3))}


def test_raw_scores_equal_the_metric_functions(embeddings):
    result = compare_embeddings(embeddings, ["cka-linear", "dcor", "id-twonn"], n_permutations=0)
    for metric in ("cka-linear", "dcor"):
        rows = result.pairs[result.pairs.metric == metric]
        assert len(rows) == 3 and rows.calibrated.isna().all()
        for row in rows.itertuples():
            x, y = (l2_normalise(embeddings[m]) for m in (row.model_a, row.model_b))
            assert row.raw == pytest.approx(get_metric(metric)(x, y), rel=1e-9)
        assert result.matrices[metric].loc["a", "b"] == pytest.approx(
            rows[(rows.model_a == "a") & (rows.model_b == "b")].raw.item())
    assert list(result.per_model.model) == ["a", "b", "c"]
    assert result.n_samples == 30 and not result.skipped


def test_calibrated_scores_are_those_of_the_calibration_module(embeddings):
    result = compare_embeddings(embeddings, ["cknna-k10"], n_permutations=30, seed=4)
    reference = calibrated_scores(embeddings, "cknna-k10", 30, 4, preprocessing=["l2"],
                                  progress=False).rows
    np.testing.assert_allclose(result.pairs.calibrated, reference.calibrated)
    np.testing.assert_allclose(result.pairs.p_value, reference.p_value)
    assert "cknna-k10-calibrated" in result.matrices


def test_a_measure_that_cannot_score_is_listed_not_fatal(embeddings):
    result = compare_embeddings(embeddings, ["cknna-k25", "cknna-k50", "cka-linear"],
                                n_permutations=0)
    assert [what for what, _ in result.skipped] == ["cknna-k50"]
    assert set(result.pairs.metric) == {"cknna-k25", "cka-linear"}


def test_joined_orders_rows_by_the_first_file_and_refuses_other_samples():
    x = np.arange(6.0).reshape(3, 2)
    out = joined({"a": (["s0", "s1", "s2"], x), "b": (["s2", "s0", "s1"], x)})
    np.testing.assert_array_equal(out["b"], x[[1, 2, 0]])
    with pytest.raises(StoreError, match="b lacks 's2'"):
        joined({"a": (["s0", "s1", "s2"], x), "b": (["s0", "s1"], x[:2])})
