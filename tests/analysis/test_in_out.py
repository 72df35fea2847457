"""Per-(model, dataset) distribution labels and the matched in-versus-out comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matteralign.analysis.in_out import (
    distribution_label,
    duplicate_fraction,
    matched_in_out,
)


def test_labels_follow_training_domain_and_what_the_model_reads():
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(20, 4))
    copies = np.repeat(rng.normal(size=(10, 4)), 2, axis=0)   # two rattles, one SMILES each
    assert duplicate_fraction(copies) == 1.0 and duplicate_fraction(distinct) == 0.0
    assert distribution_label("rxnfp-bert-pretrained", "qm9-distorted", copies)[0] == "in"
    assert distribution_label("ani-1x", "qm9-distorted", distinct)[0] == "out"
    assert distribution_label("ani-1x", "qm9", distinct)[0] == "in"
    label, reason = distribution_label("chgnet-0.3.0", "qm9", distinct)
    assert label == "out" and "materials" in reason
    assert distribution_label("composition", "qm9", distinct)[0] == "baseline"
    assert distribution_label("no-such-model", "qm9", distinct)[0] == "unknown"


def test_matched_comparison_uses_common_models_and_the_smaller_n():
    rng = np.random.default_rng(1)
    lat_in, lat_out = rng.normal(size=(90, 3)), rng.normal(size=(50, 3))
    models = ["m1", "m2", "m3", "m4"]
    data = {
        "qm9": {m: lat_in + 0.3 * rng.normal(size=(90, 3)) for m in models},
        "qm9-distorted": {m: lat_out + s * rng.normal(size=(50, 3))
                          for m, s in zip(models, [0.3, 2, 2, 2], strict=True)},
    }
    data["qm9-distorted"]["extra"] = rng.normal(size=(50, 3))
    labels = pd.DataFrame(
        [{"dataset": "qm9", "model": m, "label": "in"} for m in models]
        + [{"dataset": "qm9-distorted", "model": m, "label": "out"} for m in models]
        + [{"dataset": "qm9-distorted", "model": "extra", "label": "baseline"}])
    table = matched_in_out(data, labels, "cka-linear", n_permutations=200, n_bootstrap=300)
    row = table.iloc[0]
    assert (row.dataset_in, row.dataset_out, row.n, row.n_models, row.n_pairs) == \
        ("qm9", "qm9-distorted", 50, 4, 6)
    assert row.median_out < row.median_in and row.mean_difference < 0
    assert row.ci_low <= row.mean_difference <= row.ci_high
    few = matched_in_out(data, labels[labels.model != "m4"].iloc[:5], "cka-linear",
                         n_permutations=20)
    assert "need 3" in few.reason.iloc[0]
