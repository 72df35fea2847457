"""Pair-score tables, the information plane and the ID-vs-OOD comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.distribution import compare_in_out, information_plane, pair_scores


def matrices(offset: float) -> dict[str, pd.DataFrame]:
    names = ["a", "b", "c"]
    sym = np.array([[1, 0.5, 0.2], [0.5, 1, 0.4], [0.2, 0.4, 1]]) + offset
    ii = np.array([[0.0, 0.1, 0.9], [0.3, 0.0, 0.8], [0.7, 0.6, 0.0]])
    return {"cknna-k10": pd.DataFrame(sym, names, names), "ii-k1": pd.DataFrame(ii, names, names)}


def test_pair_scores_one_row_per_unordered_pair_with_both_ii_directions():
    pairs = pair_scores(matrices(0.0), "set", ood=False)
    assert len(pairs) == 3
    row = pairs[(pairs.model_a == "a") & (pairs.model_b == "c")].iloc[0]
    assert row["cknna-k10"] == pytest.approx(0.2)
    assert row["ii-k1:a->b"] == pytest.approx(0.9)
    assert row["ii-k1:b->a"] == pytest.approx(0.7)
    assert row["ii-k1"] == pytest.approx(0.8)
    plane = information_plane(pairs, "ii-k1")
    assert plane.loc[row.name, "delta_ab"] == pytest.approx(0.9)


def test_in_out_comparison_reports_medians_and_a_rank_test():
    pairs = pd.concat([pair_scores(matrices(0.0), "id", False),
                       pair_scores(matrices(-0.15), "ood", True)], ignore_index=True)
    table = compare_in_out(pairs, ["cknna-k10", "ii-k1"])
    test = table[(table.metric == "cknna-k10") & (table.dataset == "ID vs OOD")].iloc[0]
    assert test.median_id == pytest.approx(0.4)
    assert test.median_ood == pytest.approx(0.25)
    assert test.rank_biserial > 0
    per = table[(table.metric == "cknna-k10") & (table.dataset == "ood")].iloc[0]
    assert per.n_pairs == 3 and per["median"] == pytest.approx(0.25)
