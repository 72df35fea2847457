from __future__ import annotations

import pytest

from matteralign.metrics import cknna, get_metric, information_imbalance, list_metrics


def test_parse_and_canonical_ids():
    s = get_metric("cknna-k10")
    assert s.id == "cknna-k10" and s.params["k"] == 10 and s.function is cknna
    assert get_metric("cknna").id == "cknna-k25"
    assert get_metric("cknna", k=10).id == "cknna-k10"
    ii = get_metric("ii-k50")
    assert ii.function is information_imbalance and not ii.symmetric and ii.params["k"] == 50
    idm = get_metric("id-mle-k50")
    assert idm.per_model and idm.params == {"method": "mle", "k": 50}
    assert get_metric("id-twonn").id == "id-twonn"
    assert get_metric("cka-linear-unbiased").params == {"kernel": "linear", "unbiased": True}
    assert get_metric("dcor-u").params == {"unbiased": True}
    for mid in list_metrics():
        assert get_metric(mid).id == mid


def test_unknown():
    with pytest.raises(KeyError, match="known families"):
        get_metric("cosine")
    with pytest.raises(KeyError):
        get_metric("dcor", k=3)
