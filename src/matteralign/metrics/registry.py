"""Registry of metric families and their parameterised ids ("cknna-k25", "cka-linear-unbiased").

Each :class:`MetricFamily` owns everything that the rest of the package needs to know about a
measure: how its ids parse, its pure function, its all-pairs engine kernel, the smallest N it
accepts, which parameter is its neighbour count k, and whether a higher score means more similar.
Every stored score carries a canonical id that says exactly which definition and parameters made it.
Adding a measure is one module plus one :func:`register_metric` call (``docs/metrics.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from matteralign.errors import MetricError

__all__ = [
    "MetricFamily",
    "MetricSpec",
    "get_metric",
    "list_families",
    "list_metrics",
    "register_metric",
]


@dataclass(frozen=True)
class MetricFamily:
    """One measure and everything the engine, the analyses and the report need to know about it.

    Attributes
    ----------
    name : str
        Family name, e.g. ``"cknna"``; ids of the family start with it.
    pattern : str
        Regular expression (full match, lower case) of the family's ids; named groups feed
        ``parse``.
    parse : callable(re.Match) -> dict
        Parameters of an id (defaults filled in).
    build : callable(dict) -> str
        The canonical id of a parameter set; ``parse(match(build(p))) == p``.
    function : callable
        The pure function, ``function(x, y, **params)`` (``function(x, **params)`` for a per-model
        measure).
    kernel : callable(MetricSpec, Backend) -> kernel, optional
        The all-pairs engine kernel (:mod:`matteralign.metrics.engine`); None for per-model
        measures, which the engine scores model by model with ``function``.
    defaults : tuple of str
        Canonical ids at default parameters; :func:`list_metrics` lists them.
    min_samples : int
        Smallest N the measure is defined for.
    k_param : str, optional
        Name of the neighbour-count parameter (None when the measure has none).
    neighbours : callable(dict) -> int, optional
        Neighbours besides self that a parameter set needs (default ``params[k_param]``); the
        engine refuses N <= this number.
    per_model : bool
        One value per model (intrinsic dimension), not per pair.
    symmetric : bool
        False when score(a, b) != score(b, a); the engine's matrix[a, b] is then score(a -> b).
    directed : bool
        The two orders answer different questions (how well a predicts b, and b predicts a), so
        analyses report both: information imbalance, ridge reconstruction. CKNNA is asymmetric
        only through its estimator and is not directed.
    higher_is_more_similar : bool
        Direction of the score: False for dissimilarities (information imbalance, Procrustes).
    value : callable, optional
        Turns the function's return into the float score (e.g. ``IdCorResult.value``).
    description : str
        One line for listings and error messages.
    """

    name: str
    pattern: str
    parse: Callable[[re.Match[str]], dict[str, Any]]
    build: Callable[[dict[str, Any]], str]
    function: Callable[..., Any]
    kernel: Callable[..., Any] | None
    defaults: tuple[str, ...]
    min_samples: int = 3
    k_param: str | None = None
    neighbours: Callable[[Mapping[str, Any]], int] | None = None
    per_model: bool = False
    symmetric: bool = True
    directed: bool = False
    higher_is_more_similar: bool = True
    value: Callable[[Any], float] | None = None
    description: str = ""

    def match(self, metric_id: str) -> re.Match[str] | None:
        return re.fullmatch(self.pattern, metric_id)


@dataclass(frozen=True)
class MetricSpec:
    """What a metric id means: its family and the parameters the id fixes.

    Attributes
    ----------
    id : str
        Canonical id, e.g. "cknna-k25".
    definition : MetricFamily
        The registered family that owns the measure's behaviour.
    params : mapping
        Keyword arguments fixed by the id.
    """

    id: str
    definition: MetricFamily
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """The family's name, e.g. "cknna"."""
        return self.definition.name

    @property
    def function(self) -> Callable[..., Any]:
        return self.definition.function

    @property
    def per_model(self) -> bool:
        return self.definition.per_model

    @property
    def symmetric(self) -> bool:
        return self.definition.symmetric

    @property
    def directed(self) -> bool:
        return self.definition.directed

    @property
    def higher_is_more_similar(self) -> bool:
        return self.definition.higher_is_more_similar

    @property
    def min_samples(self) -> int:
        return self.definition.min_samples

    @property
    def k(self) -> int | None:
        """The neighbour count of this spec, or None for a measure without one."""
        return None if self.definition.k_param is None else self.params[self.definition.k_param]

    @property
    def neighbours_needed(self) -> int | None:
        """Neighbours besides self the measure needs (N must exceed it); None without k."""
        if self.definition.neighbours is not None:
            return self.definition.neighbours(self.params)
        return self.k

    def with_k(self, k: int) -> MetricSpec:
        """The same measure with neighbour count ``k``."""
        if self.definition.k_param is None:
            raise MetricError(f"{self.id} has no neighbour count k.")
        return get_metric(self.id, **{self.definition.k_param: k})

    def kernel(self, backend: Any) -> Any:
        """The engine kernel that scores all pairs of this measure on ``backend``."""
        if self.definition.kernel is None:
            raise MetricError(f"{self.id} is a per-model metric; it has no pair kernel.")
        return self.definition.kernel(self, backend)

    def __call__(self, x: Any, y: Any = None, **kwargs: Any) -> Any:
        """Score one pair (or one model for per-model metrics) with this spec's parameters."""
        p = {**self.params, **kwargs}
        out = self.function(x, **p) if self.per_model else self.function(x, y, **p)
        return out if self.definition.value is None else self.definition.value(out)


_FAMILIES: dict[str, MetricFamily] = {}


def register_metric(family: MetricFamily, *, replace: bool = False) -> MetricFamily:
    """Make a metric family known to :func:`get_metric`, the engine, the analyses and the report.

    Parameters
    ----------
    family : MetricFamily
    replace : bool
        Allow replacing a family registered under the same name (tests, reloading).

    Returns
    -------
    MetricFamily
        ``family``, so a module can register and keep it in one line.

    Raises
    ------
    MetricError
        If the name is taken, or a default id does not parse back to itself.
    """
    if family.name in _FAMILIES and not replace:
        raise MetricError(f"a metric family named {family.name!r} is already registered.")
    for default in family.defaults:
        m = family.match(default)
        if m is None or family.build(family.parse(m)) != default:
            raise MetricError(f"family {family.name!r}: default id {default!r} is not canonical.")
    _FAMILIES[family.name] = family
    return family


def list_families() -> list[MetricFamily]:
    """Every registered family, in registration order."""
    return list(_FAMILIES.values())


def list_metrics() -> list[str]:
    """Canonical ids of every registered family at its default parameters."""
    return [mid for fam in _FAMILIES.values() for mid in fam.defaults]


def get_metric(metric_id: str | MetricSpec, **params: Any) -> MetricSpec:
    """Parse a metric id (optionally overriding parameters) into a :class:`MetricSpec`.

    Examples: "cknna" (= "cknna-k25"), "cknna-k10", "mknn-k10", "cka-linear-unbiased", "cka-rbf",
    "dcor", "dcor-u", "ii-k50", "id-twonn", "id-mle-k50", "id-gride-k8", "idcor", "svcca",
    "rsa", "procrustes", "linrec". ``get_metric("cknna", k=10).id == "cknna-k10"``.

    Raises
    ------
    MetricError
        Unknown id or parameter; the message lists the known families and their default ids.
        (A ``KeyError`` subclass, so ``except KeyError`` keeps working.)
    """
    if isinstance(metric_id, MetricSpec):
        if not params:
            return metric_id
        metric_id = metric_id.id
    mid = str(metric_id).strip().lower()
    for fam in _FAMILIES.values():
        m = fam.match(mid)
        if m is None:
            continue
        p = fam.parse(m)
        unknown = set(params) - set(p)
        if unknown:
            raise MetricError(f"{metric_id!r} takes parameters {sorted(p)}, not "
                              f"{sorted(unknown)}.")
        p.update(params)
        canonical = fam.build(p)
        p = fam.parse(fam.match(canonical))  # parameters the canonical id fixes
        return MetricSpec(id=canonical, definition=fam, params=MappingProxyType(p))
    known = "; ".join(f"{fam.name} ({', '.join(fam.defaults)})" for fam in _FAMILIES.values())
    raise MetricError(f"unknown metric id {metric_id!r}; known families (default ids): {known}.")
