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


def test_every_family_owns_its_behaviour():
    from matteralign.metrics import list_families

    ids = [mid for fam in list_families() for mid in fam.defaults]
    assert ids == list_metrics()  # derived from the registered families, no hand list
    ii, cknna_spec = get_metric("ii-k3"), get_metric("cknna-k7")
    assert not ii.higher_is_more_similar and ii.directed and ii.k == 3
    assert cknna_spec.higher_is_more_similar and not cknna_spec.directed
    assert cknna_spec.k == 7 and cknna_spec.min_samples == 4
    assert cknna_spec.with_k(3).id == "cknna-k3"
    assert get_metric("id-gride-k8").neighbours_needed == 16
    assert get_metric("dcor").k is None and get_metric("dcor").neighbours_needed is None


def test_unknown_ids_are_matteralign_errors_naming_the_families():
    from matteralign.errors import MatterAlignError, MetricError

    with pytest.raises(MetricError) as info:
        get_metric("cosine")
    assert isinstance(info.value, KeyError) and isinstance(info.value, MatterAlignError)
    assert "cknna (cknna-k25)" in str(info.value) and "ii (ii-k1)" in str(info.value)


def test_a_registered_family_is_scored_by_the_engine(monkeypatch):
    """The worked example of docs/metrics.md: one module, one registration."""
    import numpy as np

    from matteralign.errors import MetricError
    from matteralign.metrics import (
        MetricFamily,
        nearest_neighbours,
        pairwise,
        register_metric,
        registry,
    )
    from matteralign.metrics.engine import PairKernel

    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))

    def jaccard(a, b):
        k = a.shape[1]
        shared = np.array([np.intersect1d(r, s).size for r, s in zip(a, b, strict=True)])
        return float(np.mean(shared / (2 * k - shared)))

    def knn_jaccard(x, y, k=10):
        return jaccard(nearest_neighbours(x, k, "inner").indices,
                       nearest_neighbours(y, k, "inner").indices)

    class KnnJaccardKernel(PairKernel):
        def prepare(self, x, name, groups=None):
            return nearest_neighbours(x, self.p["k"], "inner", self.be, groups=groups,
                                      name=name, checked=True).indices

        def pair(self, a, b):
            return jaccard(a, b), {}

    family = MetricFamily(
        name="jaccard", pattern=r"jaccard(?:-k(?P<k>\d+))?",
        parse=lambda m: {"k": int(m.group("k") or 10)}, build=lambda p: f"jaccard-k{p['k']}",
        function=knn_jaccard, kernel=KnnJaccardKernel, defaults=("jaccard-k10",), k_param="k")
    register_metric(family)
    assert list_metrics()[-1] == "jaccard-k10"
    with pytest.raises(MetricError, match="already registered"):
        register_metric(family)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 6))
    emb = {"a": x, "b": x + 0.3 * rng.normal(size=(60, 6)), "c": rng.normal(size=(60, 3))}
    res = pairwise(emb, "jaccard", k=5)
    spec = get_metric("jaccard-k5")
    for a in emb:
        for b in emb:
            if a != b:
                assert res.matrix.loc[a, b] == spec(emb[a], emb[b])
    with pytest.raises(MetricError, match="not canonical"):
        register_metric(MetricFamily(
            name="bad", pattern=r"bad", parse=lambda m: {}, build=lambda p: "bad-1",
            function=knn_jaccard, kernel=None, defaults=("bad",)))
