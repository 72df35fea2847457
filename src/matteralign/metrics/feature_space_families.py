"""Registered families of the feature-space measures: GFRE, GFRD, LFRE and the anchor distortion.

Their engine kernels keep one prepared state per model (split and scaled features; the model
itself for the anchor distortion) and score each ordered pair from two states.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .anchors import anchor_distortion
from .engine import PairKernel
from .reconstruction import (
    gfrd,
    gfre,
    lfre,
    pointwise_gfrd_from_states,
    pointwise_gfre_from_states,
    pointwise_lfre_from_states,
    reconstruction_state,
)
from .registry import MetricFamily, register_metric

__all__ = ["AnchorDistortionKernel", "ReconstructionKernel"]


class ReconstructionKernel(PairKernel):
    """GFRE / GFRD / LFRE: per model the scikit-matter split and scaling, per ordered pair the fit.

    LFRE's neighbour lists of each source model are cached in its state, so the M - 1 targets of
    one source share them.
    """

    def prepare(self, x, name, groups=None):
        return reconstruction_state(x, name)

    def pair(self, a, b):
        fam = self.spec.family
        if fam == "gfre":
            pointwise = pointwise_gfre_from_states(a, b, self.be)
        elif fam == "gfrd":
            pointwise = pointwise_gfrd_from_states(a, b, self.be)
        else:
            pointwise = pointwise_lfre_from_states(a, b, self.p["k"], self.be)
        return float(np.linalg.norm(pointwise) / np.sqrt(len(pointwise))), {}


class AnchorDistortionKernel(PairKernel):
    """Anchor distortion: the pair function on the two models' features (anchors per pair)."""

    def prepare(self, x, name, groups=None):
        return x

    def pair(self, a, b):
        return anchor_distortion(a, b, self.p["k"], method=self.p["method"]), {}


def _lfre_id(p: dict[str, Any]) -> str:
    return "lfre" if p["k"] is None else f"lfre-k{p['k']}"


register_metric(MetricFamily(
    "gfre", r"gfre", lambda m: {}, lambda p: "gfre", gfre, ReconstructionKernel, ("gfre",),
    min_samples=8, symmetric=False, directed=True, higher_is_more_similar=False,
    description="global feature reconstruction error of b from a (scikit-matter defaults)"))
register_metric(MetricFamily(
    "gfrd", r"gfrd", lambda m: {}, lambda p: "gfrd", gfrd, ReconstructionKernel, ("gfrd",),
    min_samples=8, symmetric=False, directed=True, higher_is_more_similar=False,
    description="global feature reconstruction distortion of b from a (scikit-matter defaults)"))
register_metric(MetricFamily(
    "lfre", r"lfre(?:-k(?P<k>\d+))?",
    lambda m: {"k": int(m.group("k")) if m.group("k") else None}, _lfre_id, lfre,
    ReconstructionKernel, ("lfre",), min_samples=8,
    neighbours=lambda p: None if p["k"] is None else 2 * p["k"] - 1,
    symmetric=False, directed=True, higher_is_more_similar=False,
    description="local feature reconstruction error of b from a; k local points "
    "(default min(D_a, D_b), Chorna et al.)"))
register_metric(MetricFamily(
    "anchordist", r"anchordist(?:-(?P<method>direct))?(?:-k(?P<k>\d+))?",
    lambda m: {"method": m.group("method") or "fps",
               "k": int(m.group("k")) if m.group("k") else 64},
    lambda p: f"anchordist{'-direct' if p['method'] == 'direct' else ''}-k{p['k']}",
    anchor_distortion, AnchorDistortionKernel, ("anchordist-k64", "anchordist-direct-k64"),
    neighbours=lambda p: p["k"] - 1, higher_is_more_similar=False,
    description="RMS change of cosine similarities to k shared anchors, chosen by FPS or "
    "(anchordist-direct-k<k>) DIRECT sampling (Li & Walsh)"))
