"""Build the study report: run the analyses, draw the figures, write report.html, figures/, tables/.

``report_study(config, out)`` is what ``matteralign report`` and the end of ``run_study`` call.
"""

from __future__ import annotations

import html
import io
import json
import platform
import re
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

import pandas as pd

from matteralign.analysis.study import ANALYSES, AnalysisOptions, StudyAnalysis, analyse_study
from matteralign.config import StudyConfig
from matteralign.report.html import ReportFigure, ReportSection, render_html
from matteralign.store.embedding_store import atomic_write_bytes

__all__ = ["build_report", "report_study"]

INTROS = {
    "matrices": "Every pair of models scored on the same samples (joined on sample ids), per "
    "dataset and metric; heatmaps are ordered by average-linkage clustering on 1 − score and "
    "carry a family colour bar. The condensed matrix averages each family block (paper §4.2), so "
    "diagonal blocks fall below 1 when a family's members differ.",
    "convergence": "Each model's energy regression MAE after a per-model linear compositional "
    "correction (paper §4.7; from its own predicted energies against the dataset's reference "
    "energies) against its alignment to the lowest-MAE model. Spearman ρ and Kendall τ over the "
    "non-reference models with percentile bootstrap intervals over models, which the paper does "
    "not report; a negative value means lower error goes with higher alignment.",
    "distribution": "CKNNA, distance correlation and information imbalance over model pairs, per "
    "dataset, split by the dataset's out-of-distribution flag, with a Mann–Whitney test of ID "
    "against OOD pairs; and the information-imbalance plane Δ(a→b) against Δ(b→a) coloured by "
    "CKNNA and dCor (paper Fig. 2B–C).",
    "dimension": "Intrinsic dimension of each model's embedding of each dataset: TwoNN (Facco et "
    "al.) and the Levina–Bickel MLE at k = 50 (capped at N − 1), paper Fig. 1E / C7.",
    "k_sweep": "CKNNA of each model pair against the neighbourhood size k (2 up to 2,500, capped "
    "at N − 1; paper Fig. A1), with Kendall τ between the pair rankings at successive k: τ near 1 "
    "means the conclusions do not depend on k.",
    "tree": "Neighbour-joining tree (Bio.Phylo) from Jensen–Shannon distances between the models' "
    "CKNNA profiles (paper §4.9); random baselines are left out. Newick files are in tables/.",
    "map": "Two-dimensional map of several datasets embedded by one model (the one with the most "
    "datasets), coloured by dataset and by the model's per-structure energy error (paper "
    "Fig. 2A/D).",
    "layers": "Every stored layer of each model against every layer of each other model: the best "
    "layer pair, the last layers (the paper's choice) and layers at matched relative depth.",
    "leaderboard": "Each model's null-calibrated alignment to the strongest models (the three "
    "lowest energy MAEs where energies exist, else the consensus: highest mean alignment): "
    "(s − null mean)/(1 − null mean) with the other model's rows permuted, mean over references, "
    "with sample-bootstrap intervals. `matteralign score` places a new model on it.",
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


class _Writer:
    """Writes figures and tables under the report folder and keeps them for the page."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "figures").mkdir(parents=True, exist_ok=True)
        (root / "tables").mkdir(parents=True, exist_ok=True)
        self.problems: list[str] = []

    def figure(self, section: ReportSection, fig_id: str, caption: str, fig,
               wide: bool = False) -> None:
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        png = buffer.getvalue()
        fig_id = _slug(fig_id)
        atomic_write_bytes(self.root / "figures" / f"{fig_id}.png", png)
        section.figures.append(ReportFigure(fig_id, caption, png, wide))

    def table(self, section: ReportSection | None, table_id: str, caption: str,
              frame: pd.DataFrame, index: bool = False) -> None:
        table_id = _slug(table_id)
        frame = frame.reset_index() if index else frame.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        atomic_write_bytes(self.root / "tables" / f"{table_id}.csv",
                           frame.to_csv(index=False).encode())
        try:
            atomic_write_bytes(self.root / "tables" / f"{table_id}.parquet",
                               frame.to_parquet(index=False))
        except (ValueError, TypeError, ImportError) as error:  # pyarrow rejects mixed columns
            self.problems.append(f"tables/{table_id}.parquet not written: {error}")
        if section is not None:
            section.tables.append((table_id, caption, frame))


def _draw(section: ReportSection, what: str, action) -> None:
    """Draw one figure; a drawing error becomes a note on the section."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 - one broken figure must not lose the report
        section.notes.append(f"figure {what} could not be drawn: {type(error).__name__}: {error}")


def _parameters(models) -> dict[str, float | None]:
    from matteralign.errors import ModelNotFoundError
    from matteralign.models.registry import get_card

    out = {}
    for m in models:
        try:
            out[m] = get_card(m).parameters
        except ModelNotFoundError:
            out[m] = None
    return out


def _sections(result: StudyAnalysis, w: _Writer) -> list[ReportSection]:
    from matteralign.report import figures as F

    s = {k: ReportSection(k, title, INTROS[k], notes=list(result.notes.get(k, [])))
         for k, title in ANALYSES.items()}
    fam = result.families
    main = result.main_metric

    for dataset, mats in result.matrices.items():
        for metric, mat in mats.items():
            similar = not metric.startswith("ii")
            _draw(s["matrices"], f"{metric} on {dataset}", lambda mat=mat, metric=metric,
                  similar=similar, dataset=dataset: w.figure(
                      s["matrices"], f"matrix-{dataset}-{metric}",
                      f"{metric} on {dataset} (N = {len(result.datasets[dataset].ids)})",
                      F.matrix_heatmap(mat, fam, f"{metric} · {dataset}", similar)))
            w.table(s["matrices"] if metric == main else None, f"matrix-{dataset}-{metric}",
                    f"{metric} matrix on {dataset}", mat, index=True)
        if dataset in result.condensed:
            cond = result.condensed[dataset]
            _draw(s["matrices"], f"condensed {dataset}", lambda cond=cond, dataset=dataset:
                  w.figure(s["matrices"], f"condensed-{dataset}-{main}",
                           f"{main} averaged over families on {dataset}",
                           F.condensed_heatmap(cond, f"{main} by family · {dataset}")))
            w.table(s["matrices"], f"condensed-{dataset}-{main}",
                    f"condensed {main} on {dataset}", cond, index=True)

    if not result.energy.empty:
        w.table(s["convergence"], "energy-mae", "energy regression MAE per model (eV)",
                result.energy)
    params = _parameters(result.families.index)
    corr_rows = []
    for (dataset, metric), res in result.convergence.items():
        _draw(s["convergence"], f"convergence {dataset} {metric}", lambda res=res, dataset=dataset,
              metric=metric: w.figure(s["convergence"], f"convergence-{dataset}-{metric}",
                                      f"{dataset}: energy MAE vs {metric} to {res.reference}",
                                      F.convergence_plot(res, params)))
        for c in res.correlations:
            corr_rows.append({"dataset": dataset, "metric": metric, "reference": res.reference,
                              **vars(c)})
    if corr_rows:
        w.table(s["convergence"], "convergence-correlations",
                "rank correlations of MAE and alignment to the best model", pd.DataFrame(corr_rows))

    if not result.pairs.empty:
        symmetric = [c for c in result.pairs.columns if c not in
                     ("dataset", "ood", "model_a", "model_b") and ":" not in c]
        _draw(s["distribution"], "distributions", lambda: w.figure(
            s["distribution"], "distribution-pairs", "alignment over model pairs per dataset",
            F.distribution_plot(result.pairs, symmetric), wide=True))
        ii = next((c.split(":")[0] for c in result.pairs.columns if ":a->b" in c), None)
        if ii is not None:
            from matteralign.analysis.distribution import information_plane

            plane = information_plane(result.pairs, ii)
            colour = [c for c in symmetric if not c.startswith("ii")]
            _draw(s["distribution"], "information plane", lambda: w.figure(
                s["distribution"], "information-plane", f"{ii} plane coloured by {colour}",
                F.information_plane_plot(plane, colour), wide=True))
        w.table(s["distribution"], "pair-scores", "every pair's scores", result.pairs)
        if not result.in_out.empty:
            w.table(s["distribution"], "in-vs-out", "summaries and ID-vs-OOD test",
                    result.in_out)

    if not result.dimensions.empty:
        _draw(s["dimension"], "intrinsic dimension", lambda: w.figure(
            s["dimension"], "intrinsic-dimension", "intrinsic dimension per model and dataset",
            F.dimension_plot(result.dimensions), wide=True))
        w.table(s["dimension"], "intrinsic-dimension", "intrinsic dimension", result.dimensions)

    if not result.k_sweep.empty:
        _draw(s["k_sweep"], "k sweep", lambda: w.figure(
            s["k_sweep"], "k-sweep", "CKNNA against k",
            F.k_sweep_plot(result.k_sweep, result.k_stability), wide=True))
        w.table(s["k_sweep"], "k-stability", "Kendall τ of pair rankings at successive k",
                result.k_stability)
        w.table(None, "k-sweep", "CKNNA at each k", result.k_sweep)

    for dataset, tree in result.trees.items():
        _draw(s["tree"], f"tree {dataset}", lambda tree=tree, dataset=dataset: w.figure(
            s["tree"], f"tree-{dataset}", f"neighbour-joining tree of {main} on {dataset}",
            F.tree_plot(tree, fam, f"{main} tree · {dataset}")))
        atomic_write_bytes(w.root / "tables" / f"tree-{_slug(dataset)}.nwk",
                           (tree.newick + "\n").encode())
        s["tree"].notes.append(f"{dataset} Newick: {tree.newick}")
        w.table(None, f"tree-distances-{dataset}", "JSD distances", tree.distances, index=True)

    for emap in result.maps:
        _draw(s["map"], "map", lambda emap=emap: w.figure(
            s["map"], f"map-{emap.model}", f"{emap.method.upper()} of {emap.model}'s embeddings",
            F.embedding_map_plot(emap), wide=True))
        w.table(None, f"map-{emap.model}", "map coordinates", emap.points)

    if not result.layer_rows.empty:
        _draw(s["layers"], "layer heatmaps", lambda: w.figure(
            s["layers"], "layers", "layer × layer alignment (first pairs)",
            F.layer_heatmaps(result.layer_rows), wide=True))
        w.table(s["layers"], "layer-summary", "best / last / matched-depth alignment per pair",
                result.layer_summary)
        w.table(None, "layer-pairs", "every layer pair", result.layer_rows)

    for dataset, (table, refs, basis) in result.leaderboards.items():
        _draw(s["leaderboard"], f"leaderboard {dataset}", lambda table=table, refs=refs,
              basis=basis, dataset=dataset: w.figure(
                  s["leaderboard"], f"leaderboard-{dataset}", f"leaderboard on {dataset}",
                  F.leaderboard_plot(table, refs, basis, dataset)))
        w.table(s["leaderboard"], f"leaderboard-{dataset}", f"leaderboard on {dataset}", table)
    return list(s.values())


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("matteralign", "numpy", "scipy", "pandas", "torch", "matplotlib",
                    "biopython", "umap-learn", "scikit-learn"):
        try:
            out[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _hardware() -> dict[str, str]:
    import os

    info = {"platform": platform.platform(), "processor": platform.processor() or
            platform.machine(), "cpu_count": str(os.cpu_count())}
    try:
        import torch

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        info["cuda"] = "torch not installed"
    return info


def _kv(mapping: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in mapping.items())
    return f"<table>{rows}</table>"


def _appendix(result: StudyAnalysis, config: StudyConfig, out: Path, w: _Writer,
              seconds: float) -> list[tuple[str, str]]:
    from dataclasses import asdict

    blocks = [("Study configuration", f"<pre>{html.escape(config.to_yaml())}</pre>"),
              ("Analysis options", _kv(asdict(result.options))),
              ("Versions", _kv(_versions())), ("Hardware", _kv(_hardware()))]
    data_rows = [{"dataset": d.name, "ood": d.ood, "models": len(d.values),
                  "shared samples": d.n_shared, "analysed": len(d.ids)}
                 for d in result.datasets.values()]
    if data_rows:
        frame = pd.DataFrame(data_rows)
        w.table(None, "datasets", "datasets analysed", frame)
        blocks.append(("Datasets analysed", frame.to_html(index=False, border=0)))
    summary = out / "summary.json"
    if summary.is_file():
        skipped = json.loads(summary.read_text()).get("skipped", [])
        if skipped:
            blocks.append(("Skipped by the study run", _kv({s["what"]: s["why"] for s in skipped})))
    if len(result.failures):
        w.table(None, "failures", "per-sample failures", result.failures)
        counts = result.failures.groupby(["dataset", "model"]).size().rename("failed")
        blocks.append((f"Failed samples ({len(result.failures)}; all in tables/failures.csv)",
                       counts.reset_index().to_html(index=False, border=0)
                       + result.failures.head(50).to_html(index=False, border=0)))
    else:
        blocks.append(("Failed samples", "<p>none recorded in the store</p>"))
    timings = {k: f"{v:.2f} s" for k, v in result.timings.items()}
    timings["report total"] = f"{seconds:.2f} s"
    blocks.append(("Timings", _kv(timings)))
    if w.problems:
        blocks.append(("Output problems", "<br>".join(html.escape(p) for p in w.problems)))
    return blocks


def build_report(result: StudyAnalysis, config: StudyConfig, out: Path, report_dir: Path,
                 started: float | None = None) -> Path:
    """Write report.html, figures/ and tables/ of an analysed study into ``report_dir``."""
    started = started or time.perf_counter()
    w = _Writer(report_dir)
    sections = _sections(result, w)
    appendix = _appendix(result, config, out, w, time.perf_counter() - started)
    n_models = len(result.families)
    subtitle = (f"study {config.name!r} · {len(result.datasets)} dataset(s) · {n_models} model(s)"
                f" · main metric {result.main_metric} · preprocessing "
                f"{','.join(config.preprocess) or 'none'} · {time.strftime('%Y-%m-%d %H:%M')}")
    page = render_html(f"matteralign report: {config.name}", subtitle, sections, appendix)
    path = report_dir / "report.html"
    atomic_write_bytes(path, page.encode())
    return path


def report_study(
    config: StudyConfig,
    out: Path,
    report_dir: Path | None = None,
    options: AnalysisOptions | None = None,
) -> Path:
    """Analyse the study under ``out`` and write its report.

    Parameters
    ----------
    config : StudyConfig
    out : Path
        The study folder (holding ``store/``).
    report_dir : Path, optional
        Where report.html, figures/ and tables/ go; default ``out``.
    options : AnalysisOptions, optional

    Returns
    -------
    Path
        The report.html written.
    """
    started = time.perf_counter()
    out = Path(out)
    result = analyse_study(config, out, options)
    return build_report(result, config, out, Path(report_dir or out), started)
