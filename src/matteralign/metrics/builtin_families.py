"""The built-in metric families, one :func:`~.registry.register_metric` call each.

A family added elsewhere (a new module with its function and kernel) registers itself the same way;
``docs/metrics.md`` walks through one.
"""

from __future__ import annotations

from .cka import cka
from .cknna import cknna
from .classical import linear_reconstruction, procrustes, rsa, svcca
from .dcor import distance_correlation
from .engine import (
    CknnaKernel,
    DcorKernel,
    IdCorKernel,
    ImbalanceKernel,
    LinrecKernel,
    MutualKnnKernel,
    ProcrustesKernel,
    RsaKernel,
    SvccaKernel,
    cka_kernel,
)
from .idcor import id_correlation
from .information_imbalance import information_imbalance
from .intrinsic_dimension import intrinsic_dimension
from .knn import mutual_knn
from .registry import MetricFamily, register_metric

__all__: list[str] = []


def _num(s: str | float) -> str:
    return f"{float(s):g}"


def _k(m, default: int) -> int:
    return int(m.group("k")) if m.group("k") else default


register_metric(MetricFamily(
    "cknna", r"cknna(?:-k(?P<k>\d+))?", lambda m: {"k": _k(m, 25)},
    lambda p: f"cknna-k{p['k']}", cknna, CknnaKernel, ("cknna-k25",),
    min_samples=4, k_param="k", symmetric=False,
    description="centred kernel nearest-neighbour alignment (Huh et al. 2024)"))
register_metric(MetricFamily(
    "mknn", r"mknn(?:-k(?P<k>\d+))?", lambda m: {"k": _k(m, 10)},
    lambda p: f"mknn-k{p['k']}", mutual_knn, MutualKnnKernel, ("mknn-k10",),
    k_param="k", description="mutual k-nearest-neighbour overlap"))
register_metric(MetricFamily(
    "cka", r"cka(?:-(?P<kernel>linear|rbf))?(?P<u>-unbiased)?",
    lambda m: {"kernel": m.group("kernel") or "linear", "unbiased": bool(m.group("u"))},
    lambda p: f"cka-{p['kernel']}" + ("-unbiased" if p["unbiased"] else ""), cka, cka_kernel,
    ("cka-linear", "cka-linear-unbiased", "cka-rbf", "cka-rbf-unbiased"), min_samples=4,
    description="centred kernel alignment, linear or RBF kernel, biased or unbiased HSIC"))
register_metric(MetricFamily(
    "dcor", r"dcor(?P<u>-u)?", lambda m: {"unbiased": bool(m.group("u"))},
    lambda p: "dcor-u" if p["unbiased"] else "dcor", distance_correlation, DcorKernel,
    ("dcor", "dcor-u"), min_samples=4, description="distance correlation (biased or unbiased)"))
register_metric(MetricFamily(
    "ii", r"ii(?:-k(?P<k>\d+))?", lambda m: {"k": _k(m, 1)},
    lambda p: f"ii-k{p['k']}", information_imbalance, ImbalanceKernel, ("ii-k1",),
    k_param="k", symmetric=False, directed=True, higher_is_more_similar=False,
    description="information imbalance Delta(a -> b) (Glielmo et al. 2022); 0 = same information"))
register_metric(MetricFamily(
    "id", r"id-(?P<method>twonn|mle|gride)(?:-k(?P<k>\d+))?",
    lambda m: {"method": m.group("method"),
               "k": 2 if m.group("method") == "twonn"
               else _k(m, {"mle": 50, "gride": 8}[m.group("method")])},
    lambda p: "id-twonn" if p["method"] == "twonn" else f"id-{p['method']}-k{p['k']}",
    intrinsic_dimension, None, ("id-twonn", "id-mle-k50", "id-gride-k8"),
    k_param="k", neighbours=lambda p: 2 * p["k"] if p["method"] == "gride" else p["k"],
    per_model=True, higher_is_more_similar=False,
    description="intrinsic dimension of one model (TwoNN, MLE, GRIDE)"))
register_metric(MetricFamily(
    "idcor", r"idcor", lambda m: {"n_permutations": 0}, lambda p: "idcor", id_correlation,
    IdCorKernel, ("idcor",), value=lambda result: result.value,
    description="intrinsic-dimension correlation (Basile et al. 2025)"))
register_metric(MetricFamily(
    "svcca", r"svcca(?:-v(?P<v>[0-9.]+))?", lambda m: {"variance": float(m.group("v") or 0.99)},
    lambda p: f"svcca-v{_num(p['variance'])}", svcca, SvccaKernel, ("svcca-v0.99",),
    description="SVCCA: mean canonical correlation of the variance-cut SVD bases"))
register_metric(MetricFamily(
    "rsa", r"rsa", lambda m: {}, lambda p: "rsa", rsa, RsaKernel, ("rsa",),
    description="representational similarity analysis: Spearman correlation of distances"))
register_metric(MetricFamily(
    "procrustes", r"procrustes", lambda m: {}, lambda p: "procrustes", procrustes,
    ProcrustesKernel, ("procrustes",), higher_is_more_similar=False,
    description="orthogonal Procrustes distance of centred unit-norm features"))
register_metric(MetricFamily(
    "linrec", r"linrec(?:-a(?P<a>[0-9.e-]+))?", lambda m: {"alpha": float(m.group("a") or 1e-3)},
    lambda p: f"linrec-a{_num(p['alpha'])}", linear_reconstruction, LinrecKernel,
    ("linrec-a0.001",), symmetric=False, directed=True,
    description="ridge reconstruction R^2 of b from a"))
