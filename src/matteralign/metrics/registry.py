"""Registry of parameterised metric ids ("cknna-k25", "cka-linear-unbiased", "dcor-u", "ii-k50").

Every stored score carries a canonical id that says exactly which definition and parameters made it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .cka import cka
from .cknna import cknna
from .classical import linear_reconstruction, procrustes, rsa, svcca
from .dcor import distance_correlation
from .idcor import id_correlation
from .information_imbalance import information_imbalance
from .intrinsic_dimension import intrinsic_dimension
from .knn import mutual_knn

__all__ = ["MetricSpec", "get_metric", "list_metrics"]


@dataclass(frozen=True)
class MetricSpec:
    """What a metric id means.

    Attributes
    ----------
    id : str
        Canonical id, e.g. "cknna-k25".
    family : str
        "cknna", "mknn", "cka", "dcor", "ii", "id", "idcor", "svcca", "rsa", "procrustes", "linrec".
    function : callable
        The pure function, called as ``function(x, y, **params)`` (``function(x, **params)`` for
        a per-model measure).
    params : mapping
        Keyword arguments fixed by the id.
    per_model : bool
        True for intrinsic dimension (one value per model, not per pair).
    symmetric : bool
        False when score(a, b) != score(b, a); the engine's matrix[a, b] is then score(a -> b).
    higher_is_more_similar : bool
    """

    id: str
    family: str
    function: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    per_model: bool = False
    symmetric: bool = True
    higher_is_more_similar: bool = True

    def __call__(self, x: Any, y: Any = None, **kwargs: Any) -> Any:
        """Score one pair (or one model for per-model metrics) with this spec's parameters."""
        p = {**self.params, **kwargs}
        if self.per_model:
            return self.function(x, **p)
        out = self.function(x, y, **p)
        return out.value if self.family == "idcor" else out


def _num(s: str) -> str:
    return f"{float(s):g}"


@dataclass(frozen=True)
class _Family:
    name: str
    pattern: re.Pattern[str]
    parse: Callable[[re.Match[str]], dict[str, Any]]
    build: Callable[[dict[str, Any]], str]
    function: Callable[..., Any]
    per_model: bool = False
    symmetric: bool = True
    higher: bool = True
    defaults: dict[str, Any] = field(default_factory=dict)


def _k(m: re.Match[str], default: int) -> int:
    return int(m.group("k")) if m.group("k") else default


_FAMILIES = [
    _Family("cknna", re.compile(r"^cknna(?:-k(?P<k>\d+))?$"), lambda m: {"k": _k(m, 25)},
            lambda p: f"cknna-k{p['k']}", cknna, symmetric=False, defaults={"k": 25}),
    _Family("mknn", re.compile(r"^mknn(?:-k(?P<k>\d+))?$"), lambda m: {"k": _k(m, 10)},
            lambda p: f"mknn-k{p['k']}", mutual_knn, defaults={"k": 10}),
    _Family("cka", re.compile(r"^cka(?:-(?P<kernel>linear|rbf))?(?P<u>-unbiased)?$"),
            lambda m: {"kernel": m.group("kernel") or "linear", "unbiased": bool(m.group("u"))},
            lambda p: f"cka-{p['kernel']}" + ("-unbiased" if p["unbiased"] else ""), cka,
            defaults={"kernel": "linear", "unbiased": False}),
    _Family("dcor", re.compile(r"^dcor(?P<u>-u)?$"), lambda m: {"unbiased": bool(m.group("u"))},
            lambda p: "dcor-u" if p["unbiased"] else "dcor", distance_correlation,
            defaults={"unbiased": False}),
    _Family("ii", re.compile(r"^ii(?:-k(?P<k>\d+))?$"), lambda m: {"k": _k(m, 1)},
            lambda p: f"ii-k{p['k']}", information_imbalance, symmetric=False, higher=False,
            defaults={"k": 1}),
    _Family("id", re.compile(r"^id-(?P<method>twonn|mle|gride)(?:-k(?P<k>\d+))?$"),
            lambda m: {"method": m.group("method"),
                       "k": _k(m, {"twonn": 2, "mle": 50, "gride": 8}[m.group("method")])},
            lambda p: "id-twonn" if p["method"] == "twonn" else f"id-{p['method']}-k{p['k']}",
            intrinsic_dimension, per_model=True, higher=False,
            defaults={"method": "twonn", "k": 2}),
    _Family("idcor", re.compile(r"^idcor$"), lambda m: {"n_permutations": 0}, lambda p: "idcor",
            id_correlation),
    _Family("svcca", re.compile(r"^svcca(?:-v(?P<v>[0-9.]+))?$"),
            lambda m: {"variance": float(m.group("v") or 0.99)},
            lambda p: f"svcca-v{_num(p['variance'])}", svcca, defaults={"variance": 0.99}),
    _Family("rsa", re.compile(r"^rsa$"), lambda m: {}, lambda p: "rsa", rsa),
    _Family("procrustes", re.compile(r"^procrustes$"), lambda m: {}, lambda p: "procrustes",
            procrustes, higher=False),
    _Family("linrec", re.compile(r"^linrec(?:-a(?P<a>[0-9.e-]+))?$"),
            lambda m: {"alpha": float(m.group("a") or 1e-3)},
            lambda p: f"linrec-a{_num(p['alpha'])}", linear_reconstruction, symmetric=False,
            defaults={"alpha": 1e-3}),
]


def get_metric(metric_id: str | MetricSpec, **params: Any) -> MetricSpec:
    """Parse a metric id (optionally overriding parameters) into a :class:`MetricSpec`.

    Examples: "cknna" (= "cknna-k25"), "cknna-k10", "mknn-k10", "cka-linear-unbiased", "cka-rbf",
    "dcor", "dcor-u", "ii-k50", "id-twonn", "id-mle-k50", "id-gride-k8", "idcor", "svcca",
    "rsa", "procrustes", "linrec". ``get_metric("cknna", k=10).id == "cknna-k10"``.

    Raises
    ------
    KeyError
        Unknown id or parameter; the message lists the known ids.
    """
    if isinstance(metric_id, MetricSpec):
        if not params:
            return metric_id
        metric_id = metric_id.id
    mid = metric_id.strip().lower()
    for fam in _FAMILIES:
        m = fam.pattern.match(mid)
        if m is None:
            continue
        p = fam.parse(m)
        unknown = set(params) - set(p) - ({"k"} if fam.name == "id" else set())
        if unknown:
            raise KeyError(f"{metric_id!r} takes parameters {sorted(p)}, not {sorted(unknown)}.")
        p.update(params)
        if fam.name == "id" and p["method"] == "twonn":
            p["k"] = 2
        canonical = fam.build(p)
        return MetricSpec(
            id=canonical,
            family=fam.name,
            function=fam.function,
            params=MappingProxyType(dict(p)),
            per_model=fam.per_model,
            symmetric=fam.symmetric,
            higher_is_more_similar=fam.higher,
        )
    raise KeyError(f"unknown metric id {metric_id!r}; known ids: {', '.join(list_metrics())}.")


def list_metrics() -> list[str]:
    """Canonical ids of every metric at its default parameters."""
    return [
        "cknna-k25", "mknn-k10", "cka-linear", "cka-linear-unbiased", "cka-rbf", "cka-rbf-unbiased",
        "dcor", "dcor-u", "ii-k1", "id-twonn", "id-mle-k50", "id-gride-k8", "idcor", "svcca-v0.99",
        "rsa", "procrustes", "linrec-a0.001",
    ]
