"""Families, condensed matrices and the clustered order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.families import (
    architecture_family,
    cluster_order,
    condense_matrix,
    is_random_baseline,
    model_families,
)

MODELS = ["a-1", "a-2", "b-1", "b-2", "b-3"]


def block_matrix() -> pd.DataFrame:
    m = np.array([
        [1.0, 0.8, 0.1, 0.2, 0.3],
        [0.8, 1.0, 0.1, 0.2, 0.3],
        [0.1, 0.1, 1.0, 0.6, 0.6],
        [0.2, 0.2, 0.6, 1.0, 0.6],
        [0.3, 0.3, 0.6, 0.6, 1.0],
    ])
    return pd.DataFrame(m, index=MODELS, columns=MODELS)


def test_architecture_family_comes_from_the_card():
    ids = ("unirep-1900", "chgnet-0.3.0", "so3lr", "deepseek-r1-distill-llama-8b",
           "mace-off23-small-equivariant", "random-x")
    assert [architecture_family(m) for m in ids] == ["unirep", "chgnet", "so3krates", "llama",
                                                     "mace", "random"]


def test_every_card_names_its_architecture_and_families_have_several_members():
    from matteralign.models.registry import list_cards

    cards = list_cards()
    assert [c.id for c in cards if not c.architecture_family] == []
    families = model_families([c.id for c in cards])
    sizes = families.value_counts()
    for fam in ("mace", "orb", "chgnet", "sevennet", "m3gnet", "tensornet", "esm", "unirep"):
        assert sizes[fam] >= 2, fam
    assert families["so3lr"] == "so3krates" and families["ani-1x"] == "ani"


def test_random_baseline_needs_id_and_baseline_family():
    assert is_random_baseline("random-gauss", "baseline")
    assert is_random_baseline("random-gauss")
    assert not is_random_baseline("random-gauss", "mlip")
    assert not is_random_baseline("so3lr", "baseline")


def test_condensed_blocks_average_every_cell_and_diagonal_blocks_fall_below_one():
    cond = condense_matrix(block_matrix(), model_families(MODELS))
    assert list(cond.index) == ["a", "b"]
    assert cond.loc["a", "a"] == pytest.approx((2 * 1.0 + 2 * 0.8) / 4)
    assert cond.loc["b", "b"] == pytest.approx((3 * 1.0 + 6 * 0.6) / 9)
    assert cond.loc["a", "b"] == pytest.approx(np.mean([0.1, 0.2, 0.3] * 2))
    assert cond.loc["a", "b"] == cond.loc["b", "a"]


def test_condensed_without_self_pairs_uses_distinct_models_only():
    cond = condense_matrix(block_matrix(), model_families(MODELS), include_self=False)
    assert cond.loc["a", "a"] == pytest.approx(0.8)
    assert cond.loc["b", "b"] == pytest.approx(0.6)


def test_missing_family_is_an_error_naming_the_model():
    with pytest.raises(KeyError, match="b-3"):
        condense_matrix(block_matrix(), {m: "x" for m in MODELS[:-1]})


def test_cluster_order_keeps_blocks_contiguous():
    shuffled = ["b-2", "a-1", "b-3", "a-2", "b-1"]
    order = cluster_order(block_matrix().loc[shuffled, shuffled])
    positions = {m: order.index(m) for m in order}
    assert abs(positions["a-1"] - positions["a-2"]) == 1
    b = sorted(positions[m] for m in ("b-1", "b-2", "b-3"))
    assert b[-1] - b[0] == 2
