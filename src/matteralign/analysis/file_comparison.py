"""Score embeddings of the same samples against each other with no study: every registered
measure, permutation-calibrated, as tables that :func:`write_comparison` saves.

The Python API behind ``matteralign compare A B [C ...]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from matteralign.errors import MatterAlignError, StoreError

__all__ = ["FileComparison", "compare_embeddings", "write_comparison"]


@dataclass
class FileComparison:
    """What :func:`compare_embeddings` found.

    Attributes
    ----------
    pairs : DataFrame
        One row per model pair and pairwise measure: metric, model_a, model_b, raw, calibrated,
        p_value, p_fdr, null_mean, tau (calibration columns NaN when ``n_permutations`` is 0),
        then the calibration's other columns (headroom, null_fills_range, ...) and the engine's
        diagnostics.
    per_model : DataFrame
        One row per model and per-model measure (intrinsic dimension): metric, model, value.
    matrices : dict of str to (M, M) DataFrame
        ``"<metric>"`` raw matrices and ``"<metric>-calibrated"`` calibrated ones.
    n_samples : int
    skipped : list of (str, str)
        (measure, why) for each measure that cannot score these embeddings.
    """

    pairs: pd.DataFrame
    per_model: pd.DataFrame
    matrices: dict[str, pd.DataFrame]
    n_samples: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def joined(files: Mapping[str, tuple[list[str], np.ndarray]]) -> dict[str, np.ndarray]:
    """The embeddings of each name in the sample order of the first, requiring one id set.

    Raises
    ------
    StoreError
        If two files hold different samples; the message names both and a differing id.
    """
    (first, (ids, _)), *_ = files.items()
    order = {sample_id: row for row, sample_id in enumerate(ids)}
    out = {}
    for name, (other_ids, values) in files.items():
        extra = [i for i in other_ids if i not in order]
        missing = set(order) - set(other_ids)
        if extra or missing:
            example = extra[0] if extra else sorted(missing)[0]
            where = f"has {example!r}, which {first} lacks" if extra else f"lacks {example!r}"
            raise StoreError(f"{name} and {first} embed different samples: {name} {where} "
                             f"({len(extra)} extra, {len(missing)} missing); compare files of "
                             "the same samples")
        index = {sample_id: row for row, sample_id in enumerate(other_ids)}
        out[name] = values[[index[sample_id] for sample_id in ids]]
    return out


def compare_embeddings(
    embeddings: Mapping[str, np.ndarray],
    metrics: Sequence[str] | None = None,
    n_permutations: int = 100,
    seed: int = 0,
    preprocessing: Sequence[str] = ("l2",),
) -> FileComparison:
    """Score every pair of ``embeddings`` with every measure (default: all registered).

    Pairwise measures are calibrated against a permutation null
    (:func:`matteralign.metrics.calibration.calibrated_scores`): calibrated =
    (raw - tau) / (s_best - tau), with tau the null's 95% quantile; per-model measures
    (intrinsic dimension) are reported per model.

    Parameters
    ----------
    embeddings : mapping of name -> (N, D_m) array
        Rows are the same N samples in the same order (:func:`joined`).
    metrics : sequence of str, optional
        Registry ids; default :func:`matteralign.metrics.list_metrics`.
    n_permutations : int
        Rounds of the null; 0 gives raw scores only.
    seed : int
    preprocessing : sequence of str
        Steps applied to every embedding first (as :func:`matteralign.metrics.pairwise`).

    Returns
    -------
    FileComparison
    """
    from matteralign import metrics as m
    from matteralign.metrics.calibration import calibrated_scores

    if len(embeddings) < 2:
        raise StoreError("compare needs at least two embedding files")
    n = next(iter(embeddings.values())).shape[0]
    pairs, per_model, matrices, skipped = [], [], {}, []
    for metric in metrics or m.list_metrics():
        try:
            spec = m.get_metric(metric)
            if spec.per_model or n_permutations == 0:
                result = m.pairwise(dict(embeddings), spec, preprocessing=preprocessing,
                                    progress=False)
                if result.per_model is not None:
                    per_model += [{"metric": spec.id, "model": name, "value": float(value)}
                                  for name, value in result.per_model.items()]
                    continue
                rows = result.rows.rename(columns={"value": "raw"})
                matrices[spec.id] = result.matrix
            else:
                calibrated = calibrated_scores(dict(embeddings), spec, n_permutations, seed,
                                               preprocessing=preprocessing, progress=False)
                rows = calibrated.rows
                matrices[spec.id] = calibrated.matrix("raw")
                matrices[f"{spec.id}-calibrated"] = calibrated.matrix("calibrated")
        except (MatterAlignError, ValueError) as error:
            skipped.append((metric, str(error)))
            continue
        pairs.append(rows)
    columns = ["metric", "model_a", "model_b", "raw", "calibrated", "p_value", "p_fdr",
               "null_mean", "tau"]
    table = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(columns=columns)
    table = table.reindex(columns=columns + [c for c in table.columns if c not in columns])
    return FileComparison(table, pd.DataFrame(per_model, columns=["metric", "model", "value"]),
                          matrices, n, skipped)


def write_comparison(result: FileComparison, out: Path, sources: Mapping[str, Path]) -> Path:
    """Write ``pairs.csv``, ``per_model.csv``, ``matrices/<name>.csv`` and ``compare.md`` (a
    short report: files, samples, the pair table, what was skipped) under ``out``, each file
    atomically. Returns the report's path."""
    from matteralign.store.embedding_store import atomic_write_bytes

    atomic_write_bytes(out / "pairs.csv", result.pairs.to_csv(index=False).encode())
    atomic_write_bytes(out / "per_model.csv", result.per_model.to_csv(index=False).encode())
    for name, matrix in result.matrices.items():
        atomic_write_bytes(out / "matrices" / f"{name}.csv", matrix.to_csv().encode())
    lines = ["# Embedding comparison", "", f"{result.n_samples} samples, {len(sources)} files:", ""]
    lines += [f"- `{name}`: {path}" for name, path in sources.items()]
    lines += ["", "| metric | a | b | raw | calibrated | p |", "|---|---|---|---|---|---|"]
    for row in result.pairs.itertuples():
        lines.append(f"| {row.metric} | {row.model_a} | {row.model_b} | {row.raw:.4f} | "
                     f"{row.calibrated:.4f} | {row.p_value:.3g} |")
    if len(result.per_model):
        lines += ["", "| metric | model | value |", "|---|---|---|"]
        lines += [f"| {r.metric} | {r.model} | {r.value:.4f} |"
                  for r in result.per_model.itertuples()]
    if result.skipped:
        lines += ["", "Not scored:", ""] + [f"- {what}: {why}" for what, why in result.skipped]
    report = out / "compare.md"
    atomic_write_bytes(report, ("\n".join(lines) + "\n").encode())
    return report
