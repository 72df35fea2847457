"""Colours shared by every figure of a report, static and interactive, and metric directions.

One family keeps one colour across heatmaps, trees, maps and scatter plots of a report.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DATASET_COLOURS", "FAMILY_COLOURS", "direction", "family_palette", "higher_is_similar"]

# Okabe-Ito (colour-blind safe) followed by Tableau 10 and a few darker tones: 22 distinct colours.
FAMILY_COLOURS = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#B07AA1", "#76B7B2", "#EDC948", "#9C755F",
    "#FF9DA7", "#BAB0AC", "#1B5E20", "#4A148C", "#827717", "#880E4F",
)
DATASET_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                   "#7f7f7f", "#bcbd22", "#17becf")
BASELINE_COLOUR = "#9E9E9E"


def family_palette(families: Iterable[str]) -> dict[str, str]:
    """A hex colour per family, fixed by the sorted family names (not by figure or order).

    ``"baseline"`` and ``"random"`` are grey; the others take :data:`FAMILY_COLOURS` in
    alphabetical order, cycling beyond 22 families.

    Examples
    --------
    >>> family_palette(["mace", "baseline", "orb"])
    {'baseline': '#9E9E9E', 'mace': '#0072B2', 'orb': '#E69F00'}
    """
    out: dict[str, str] = {}
    coloured = 0
    for family in sorted(set(families)):
        if family in ("baseline", "random"):
            out[family] = BASELINE_COLOUR
        else:
            out[family] = FAMILY_COLOURS[coloured % len(FAMILY_COLOURS)]
            coloured += 1
    return out


def higher_is_similar(metric: str) -> bool:
    """Whether a higher score of ``metric`` means more similar (the metric registry's word)."""
    from matteralign.metrics import get_metric

    return get_metric(metric).higher_is_more_similar


def direction(metric: str) -> str:
    """One phrase for captions: which way ``metric`` is better."""
    if higher_is_similar(metric):
        return f"higher {metric} = more similar"
    return f"lower {metric} = more similar"
