"""Intrinsic dimension per model."""

from __future__ import annotations

import numpy as np

from matteralign.analysis.dimension import intrinsic_dimensions


def test_a_plane_in_ten_dimensions_has_dimension_two_and_duplicates_give_a_reason():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 2)))
    plane = rng.uniform(size=(400, 2)) @ basis.T
    duplicated = np.vstack([plane[:50], plane[:50]])
    table = intrinsic_dimensions({"plane": plane, "dup": duplicated, "few": plane[:30]},
                                 methods=("id-twonn", "id-mle-k20", "id-mle-k50"))
    got = table.set_index(["model", "method"]).value
    assert abs(got[("plane", "id-twonn")] - 2.0) < 0.3
    assert abs(got[("plane", "id-mle-k20")] - 2.0) < 0.3
    # k = 50 is lowered to N - 1 = 29 for 30 samples
    assert ("few", "id-mle-k29") in got.index
    dup = table[table.model == "dup"]
    assert dup.value.isna().all() and dup.error.str.contains("duplicate").all()


def test_tied_distances_give_a_reason_naming_the_model_not_inf():
    """The composition baseline's fractions are equidistant: MLE was inf, TwoNN NaN."""
    table = intrinsic_dimensions({"composition": np.eye(40),
                                  "fine": np.random.default_rng(0).normal(size=(40, 3))},
                                 ("id-twonn", "id-mle-k10"))
    bad = table[table.model == "composition"]
    assert bad.value.isna().all()
    assert all(e.startswith("model 'composition'") for e in bad.error)
    assert np.isfinite(table[table.model == "fine"].value).all()
