"""The reproduction document's generated blocks: every claim table, and the training ladder, as
Markdown.

``docs/reproduction.md`` holds each block between the markers of :func:`markers`;
``matteralign reproduce --doc`` rewrites them and the tests compare them with a fresh rendering of
the stored tables, so the prose around them carries no number the tables do not.
"""

from __future__ import annotations

import math

import pandas as pd

from matteralign.analysis.reproduction import ReproductionClaims

__all__ = ["claims_markdown", "generated_block", "ladder_markdown", "markers",
           "replace_generated_block"]


def markers(name: str) -> tuple[str, str]:
    """The begin and end comments of the generated block ``name`` ("claims", "ladder")."""
    return (f"<!-- matteralign reproduce: {name} (generated, do not edit) -->",
            f"<!-- matteralign reproduce: {name} end -->")


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.{digits}f}"
    return str(value)


def _p(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.2g}"


def _interval(low: float, high: float, digits: int = 3) -> str:
    if math.isnan(low) or math.isnan(high):
        return "—"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _modalities(t: pd.DataFrame) -> str:
    rows = [[r.dataset, str(r.n), str(r.n_models),
             *(f"{_fmt(getattr(r, f'{k}_calibrated'))} ({_fmt(getattr(r, f'{k}_raw'))}; "
               f"{getattr(r, f'{k}_pairs')})" if getattr(r, f"{k}_pairs") else "—"
               for k in ("within", "cross", "random")),
             f"{100 * r.share_fdr_05:.0f} %", _fmt(r.agrees)] for r in t.itertuples()]
    return _table(["dataset", "N", "models", "within: calibrated (raw; pairs)", "cross",
                   "random", "pairs with FDR-adjusted p < 0.05", "within > cross > random"], rows)


def _convergence(t: pd.DataFrame) -> str:
    rows = [[r.dataset, r.metric, r.scores, r.reference, f"{1000 * r.mae_reference:.1f}",
             str(r.n_models), _fmt(r.rho, 2), _interval(r.ci_low, r.ci_high, 2), _p(r.p_value),
             _fmt(r.agrees)] for r in t.itertuples()]
    return _table(["dataset", "metric", "scores", "reference (lowest MAE)",
                   "its MAE (meV)", "potentials", "Spearman ρ", "95 % interval (models)", "p",
                   "ρ < 0 (interval)"], rows)


def _in_out(t: pd.DataFrame) -> str:
    rows = [[r.dataset_in, r.dataset_out, r.metric, str(r.n), str(int(r.n_models)),
             _fmt(r.median_in), _fmt(r.median_out), _fmt(r.mean_difference),
             _interval(r.ci_low, r.ci_high), r.expected, _fmt(r.agrees)] for r in t.itertuples()]
    return _table(["in", "out", "measure", "N", "models", "median in", "median out",
                   "mean out − in", "95 % interval (models)", "paper", "agrees"], rows)


def _dimensions(t: pd.DataFrame) -> str:
    rows = [[r.dataset, r.method, str(r.n), str(r.n_models), _fmt(r.median, 1),
             f"{_fmt(r.low, 1)}–{_fmt(r.high, 1)}", _fmt(r.random, 1),
             f"{r.paper_dataset} ≈ {r.paper:g}" if r.paper_dataset else "—"]
            for r in t.itertuples()]
    return _table(["dataset", "estimator", "N", "models", "median", "range", "random baseline",
                   "paper (Fig. 1E)"], rows)


def _proteins(t: pd.DataFrame) -> str:
    rows = [[r.dataset, str(r.n), str(r.pairs), r.best_pair, _fmt(r.best_raw),
             _fmt(r.best_calibrated), _fmt(r.median_raw), _fmt(r.median_calibrated)]
            for r in t.itertuples()]
    text = _table(["dataset", "N", "cross-modality pairs", "best pair (raw CKNNA)", "best raw",
                   "best calibrated", "median raw", "median calibrated"], rows)
    if "ratio_best_raw" in t:
        text += (f"\n\nRatio protein / molecule of the best pairs: raw "
                 f"{_fmt(float(t.ratio_best_raw.iloc[0]), 2)}, calibrated "
                 f"{_fmt(float(t.ratio_best_calibrated.iloc[0]), 2)} (paper: about 2).")
    return text


def _cknna_dcor(t: pd.DataFrame) -> str:
    rows = [[r.dataset, str(r.n_models), str(r.pairs), _fmt(r.rho, 2),
             _interval(r.ci_low, r.ci_high, 2), _p(r.p_value)] for r in t.itertuples()]
    return _table(["dataset", "models", "pairs", "Spearman ρ (CKNNA, dCor)",
                   "95 % interval (models)", "p (pairs taken as independent)"], rows)


def claims_markdown(claims: ReproductionClaims) -> str:
    """The generated block (without its markers): one Markdown section per claim."""
    parts = [
        ("Claim 1 — within-modality > cross-modality > random (CKNNA k = 25)",
         _modalities(claims.modalities)),
        ("Claim 2 — alignment to the lowest-error potential vs energy error",
         _convergence(claims.convergence)),
        ("Claim 3 — in vs out of distribution", _in_out(claims.in_out)),
        ("Claim 4 — intrinsic dimension per dataset", _dimensions(claims.dimensions)),
        ("Claim 5 — protein sequence–structure vs small-molecule cross-modality (CKNNA k = 25)",
         _proteins(claims.proteins)),
        ("Claim 6 — CKNNA vs dCor across model pairs", _cknna_dcor(claims.cknna_dcor)),
    ]
    return "\n\n".join(f"#### {title}\n\n{body}" for title, body in parts) + "\n"


def ladder_markdown(result: dict) -> str:
    """The training ladder (``benchmarks/training_ladder.py``'s JSON) as Markdown: one row per
    model, then Spearman rho of held-out error against alignment to the best and to the others."""
    rows = [[r["model"], _fmt(r["fraction"], 4), str(r["n_train"]), str(r["epochs"]),
             f"{1000 * r['mae_ev_per_atom']:.1f}", _fmt(r["alignment_to_best"]),
             _fmt(r["mean_alignment_to_others"])] for r in result["runs"]]
    text = _table(["model", "fraction", "training structures", "epochs",
                   "held-out MAE (meV/atom)", "CKNNA to best", "mean CKNNA to the others"], rows)
    for key, what in (("spearman_mae_vs_alignment_to_best", "alignment to the best"),
                      ("spearman_mae_vs_mean_alignment_to_others", "mean alignment to the others")):
        rho = result[key]
        text += (f"\n\nSpearman ρ (held-out MAE, {what}) = {_fmt(rho['value'], 2)}, 95 % interval "
                 f"(models) {_interval(rho['ci_low'], rho['ci_high'], 2)}, p = "
                 f"{_p(rho['p_value'])}, {rho['n']} models.")
    return text + "\n"


def generated_block(text: str, name: str = "claims") -> str:
    """The generated block ``name`` of a document (between its markers), or raise ValueError."""
    begin, end = markers(name)
    if begin not in text or end not in text:
        raise ValueError(f"the document has no generated block {name!r} ({begin} ... {end})")
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n") + "\n"


def replace_generated_block(text: str, block: str, name: str = "claims") -> str:
    """``text`` with its generated block ``name`` replaced by ``block``."""
    generated_block(text, name)
    begin, end = markers(name)
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    return f"{head}{begin}\n{block.strip(chr(10))}\n{end}{tail}"
