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

import numpy as np
import pandas as pd

from matteralign.analysis.study import ANALYSES, AnalysisOptions, StudyAnalysis, analyse_study
from matteralign.config import StudyConfig
from matteralign.report.html import ModelPicker, ReportFigure, ReportSection, render_html
from matteralign.report.palette import direction, family_palette, higher_is_similar
from matteralign.store.embedding_store import atomic_write_bytes

__all__ = ["build_report", "report_study"]

INTROS = {
    "matrices": "Every pair of models scored on the same samples (joined on sample ids), per "
    "dataset and metric, read from what `matteralign align` wrote (scored by its rules where it "
    "has not run), each cell calibrated against its permutation null; heatmaps are ordered by "
    "average-linkage clustering and carry a family colour bar. The condensed matrix averages "
    "each family block (paper §4.2), so diagonal blocks fall below 1 when a family's members "
    "differ.",
    "convergence": "Each model's energy regression MAE after a per-model linear compositional "
    "correction (paper §4.7; from its own predicted energies against the dataset's reference "
    "energies) against its alignment to the lowest-MAE model. Spearman ρ and Kendall τ over the "
    "non-reference models with percentile bootstrap intervals over models, which the paper does "
    "not report; a negative value means lower error goes with higher alignment.",
    "distribution": "Scores over model pairs per dataset (violins, split by the dataset's "
    "out-of-distribution flag, with a pooled Mann–Whitney test that is descriptive because pairs "
    "share models); each model's in/out label per dataset from its card's training domain and "
    "input; the matched comparison of calibrated scores between an in- and an "
    "out-of-distribution dataset on the same models at the same N; and the "
    "information-imbalance plane Δ(a→b) against Δ(b→a) (paper Fig. 2B–C).",
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
    "clip((s − τ)/(1 − τ), 0, 1), τ the 95 % quantile of the permutation null (the other "
    "model's rows shuffled), mean over references, with sample-bootstrap intervals. "
    "`matteralign score` places a new model on it.",
}


FEATURE_SPACE_INTROS = {
    "directed": ("Directed measures", "Measures whose score from model a to model b differs from "
                 "b to a: the feature reconstruction errors of Chorna et al. (GFRE, LFRE: the "
                 "error of predicting b's features linearly from a's, globally or from each test "
                 "point's neighbours; GFRD: the non-orthogonal part of that map) and the "
                 "information imbalance. Each matrix is drawn in the models' own order beside its "
                 "asymmetry (a → b) − (b → a): for an error, a positive cell means b is harder to "
                 "reach from a than a from b, i.e. b holds information that a lacks."),
    "atoms": ("Atom level", "Alignment of atomic environments (level: atoms): a seeded sample of "
              "atoms stratified by element and subset, scored like structures. The per-element "
              "views score only one element's atoms (the carbon environments only, and so on), "
              "read from what `matteralign align` wrote under alignment/<dataset>[<element>]/. "
              "The map puts every model's atoms into one space after Li & Walsh: cosine "
              "similarities to the same K anchor atoms (joint farthest-point sampling), one PCA "
              "of all models together, so an atom sits in the same place for models that agree "
              "up to rotation and scale."),
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


MAX_FIGURE_PX = 2000


def _png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")


class _Writer:
    """Writes figures and tables under the report folder and keeps them for the page."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "figures").mkdir(parents=True, exist_ok=True)
        (root / "tables").mkdir(parents=True, exist_ok=True)
        self.problems: list[str] = []

    def figure(self, section: ReportSection | None, fig_id: str, caption: str, fig=None,
               plot=None, wide: bool = False, static: str | None = None) -> None:
        """Add a figure to ``section`` (None: only write its files).

        ``fig``, a matplotlib Figure, is written as figures/<fig_id>.png (at most 2,000 px wide)
        and .svg; ``plot``, a plotly Figure, is drawn in the page instead of the PNG. ``static``
        names the files of another figure that export this one's content.
        """
        fig_id = _slug(fig_id)
        png = None
        if fig is not None:
            png = self._export(fig_id, fig)
            static = fig_id
        if section is not None:
            section.figures.append(ReportFigure(
                fig_id, caption, png=png if plot is None else None,
                plotly=None if plot is None else plot.to_json(), wide=wide, static=static))

    def _export(self, fig_id: str, fig) -> bytes:
        import matplotlib.pyplot as plt

        dpi = 100.0
        try:
            for _ in range(3):
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
                png = buffer.getvalue()
                if _png_width(png) <= MAX_FIGURE_PX:
                    break
                dpi *= 0.98 * MAX_FIGURE_PX / _png_width(png)
            svg = io.BytesIO()
            fig.savefig(svg, format="svg", bbox_inches="tight")
        finally:
            plt.close(fig)
        atomic_write_bytes(self.root / "figures" / f"{fig_id}.png", png)
        atomic_write_bytes(self.root / "figures" / f"{fig_id}.svg", svg.getvalue())
        return png

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


# Columns of StudyAnalysis.calibrated shown in a heatmap cell's hover, with their labels.
CELL_STATISTICS = {"calibrated": "calibrated", "p_value": "p", "p_fdr": "p (FDR-adjusted)",
                   "null_mean": "null mean"}


def _calibration_rows(result: StudyAnalysis, dataset: str, metric: str) -> pd.DataFrame:
    """The permutation-calibration rows of one matrix (empty when it has none)."""
    table = result.calibrated
    if table.empty:
        return table
    return table[(table.dataset == dataset) & (table.metric == metric)]


def _cell_statistics(result: StudyAnalysis, dataset: str, metric: str,
                     models: list[str]) -> dict[str, pd.DataFrame]:
    """Per-cell calibration statistics of ``metric`` on ``dataset`` as (M, M) frames: row a,
    column b from the row (a, b), else from (b, a) (a symmetric metric has each pair once)."""
    rows = _calibration_rows(result, dataset, metric)
    if rows.empty:
        return {}
    out = {}
    for column, label in CELL_STATISTICS.items():
        frame = pd.DataFrame(np.nan, index=models, columns=models)
        for a, b, v in zip(rows.model_a, rows.model_b, rows[column], strict=True):
            if a in frame.index and b in frame.index:
                frame.loc[a, b] = v
                if not np.isfinite(frame.loc[b, a]):
                    frame.loc[b, a] = v
        out[label] = frame
    return out


def _metric_k(metric: str) -> int | None:
    from matteralign.metrics import get_metric

    return get_metric(metric).k


def _matrix_caption(metric: str, dataset: str, n: int, k: int | None, stats: list[str],
                    calibrated: bool) -> str:
    from matteralign.metrics import get_metric

    spec = get_metric(metric)
    what = (f"{metric} between every pair of models on {dataset} (N = {n:,}"
            f"{f', k = {k}' if k is not None else ''}); raw: {direction(metric)}")
    if calibrated:
        what += ("; the colours show the calibrated score (obs − τ)/(best − τ), τ the (1 − α) "
                 "quantile of the pair's permutation null: higher = more similar, 0 = at the "
                 "null's threshold, 1 = the best attainable; the buttons switch to raw")
    if not spec.symmetric:
        what += "; cell (row a, column b) is the score a → b, the matrix is not symmetric"
    shown = ", ".join(["raw score", *stats, "N", *(["k"] if k is not None else [])])
    return (f"{what}. Rows and columns are ordered by average-linkage clustering of the raw "
            f"scores; the strips and the legend give each model's family. Hover a cell: the pair,"
            f" {shown}.")


def _sections(result: StudyAnalysis, out: Path, w: _Writer) -> list[ReportSection]:
    from matteralign.report import figures as F
    from matteralign.report import interactive as I

    s = {k: ReportSection(k, title, INTROS[k], notes=list(result.notes.get(k, [])))
         for k, title in ANALYSES.items()}
    fam = result.families
    palette = family_palette(list(fam.astype(str)) + ["unknown"])
    main = result.main_metric

    for dataset, mats in result.matrices.items():
        n = result.datasets[dataset].n_shared
        for metric, mat in mats.items():
            models = list(mat.index)
            stats = _cell_statistics(result, dataset, metric, models)
            k = _metric_k(metric)
            constants = {"N": f"{n:,}", **({"k": k} if k is not None else {})}
            calibrated = result.calibrated_matrices.get(dataset, {}).get(metric)
            caption = _matrix_caption(metric, dataset, n, k, list(stats), calibrated is not None)
            title = f"{metric} · {dataset}"
            _draw(s["matrices"], f"{metric} on {dataset}", lambda mat=mat, metric=metric,
                  title=title, caption=caption, stats=stats, constants=constants,
                  dataset=dataset, calibrated=calibrated: w.figure(
                      s["matrices"], f"matrix-{dataset}-{metric}", caption,
                      F.matrix_heatmap(mat, fam, palette, title, metric),
                      I.heatmap_figure(mat, metric, title, fam, palette, stats, constants,
                                       calibrated, result.card_families)))
            w.table(s["matrices"] if metric == result.metric_on(dataset) else None,
                    f"matrix-{dataset}-{metric}",
                    f"{metric} matrix on {dataset}", mat, index=True)
        if dataset in result.condensed:
            cond = result.condensed[dataset]
            if len(cond) < 2:
                s["matrices"].notes.append(f"{dataset}: one family only; no condensed matrix")
                continue
            families = pd.Series(list(cond.index), index=list(cond.index))
            title = f"{main} by family · {dataset}"
            caption = (f"Mean {main} over each block of two families on {dataset} (self-scores "
                       f"included, so a diagonal block is below 1 when its members differ); "
                       f"{direction(main)}.")
            _draw(s["matrices"], f"condensed {dataset}", lambda cond=cond, dataset=dataset,
                  title=title, caption=caption, families=families: w.figure(
                      s["matrices"], f"condensed-{dataset}-{main}", caption,
                      F.condensed_heatmap(cond, title, main),
                      I.heatmap_figure(cond, main, title, families, palette)))
            w.table(s["matrices"], f"condensed-{dataset}-{main}",
                    f"condensed {main} on {dataset}", cond, index=True)

    if not result.energy.empty:
        w.table(s["convergence"], "energy-mae", "energy regression MAE per model (eV)",
                result.energy)
    params = _parameters(result.families.index)
    corr_rows = []
    for (dataset, metric), raw in result.convergence.items():
        calibrated = result.convergence_calibrated.get((dataset, metric))
        for kind, res in (("raw", raw), ("calibrated", calibrated)):
            for c in (res.correlations if res is not None else []):
                corr_rows.append({"dataset": dataset, "metric": metric, "score": kind,
                                  "reference": res.reference, **vars(c)})
        res, kind = (calibrated, "calibrated") if calibrated is not None else (raw, "raw")
        if len(res.table) < 3:
            s["convergence"].notes.append(
                f"{dataset}, {metric}: {len(res.table)} model(s) with energies; a convergence "
                "plot needs at least 3")
            continue
        mae = (result.energy[result.energy.dataset == dataset].set_index("model")
               if not result.energy.empty else None)
        label = f"{kind} {metric}"
        caption = (f"{dataset}: each model's energy MAE after compositional correction (x, eV; "
                   f"lower = better; bars: bootstrap intervals where computed) against its "
                   f"{label} to the lowest-MAE model {res.reference} (y; "
                   f"{direction(metric)}{'; 0 = chance' if kind == 'calibrated' else ''}); marker "
                   "area ∝ parameters, thick edge = the reference. Convergence means points fall "
                   "to the upper left.")
        _draw(s["convergence"], f"convergence {dataset} {metric}", lambda res=res,
              dataset=dataset, metric=metric, caption=caption, label=label, mae=mae: w.figure(
                  s["convergence"], f"convergence-{dataset}-{metric}", caption,
                  F.convergence_plot(res, label, params, fam, palette, mae),
                  I.convergence_figure(res, f"{dataset}: {label} to {res.reference}", label,
                                       params, fam, palette, mae)))
    if corr_rows:
        w.table(s["convergence"], "convergence-correlations",
                "rank correlations of MAE and alignment to the best model (raw and calibrated "
                "scores)", pd.DataFrame(corr_rows))

    if not result.calibrated.empty:
        w.table(s["matrices"], "calibration", "every matrix cell's permutation null, calibrated "
                "score, p and FDR-adjusted p", result.calibrated)
    if not result.composition_pairs.empty:
        w.table(s["matrices"], "composition-controlled",
                "alignment with the composition signal projected out (each embedding residualised "
                "on composition fractions), beside the raw score", result.composition_pairs)
    if not result.composition_models.empty:
        w.table(s["matrices"], "composition-r2", "share of each embedding that composition "
                "fractions explain (R²)", result.composition_models)

    if not result.pairs.empty:
        _distribution_section(result, s["distribution"], w)

    if not result.dimensions.empty:
        finite = result.dimensions[np.isfinite(result.dimensions.value.astype(float))]
        if finite.empty:
            s["dimension"].notes.append("no finite intrinsic dimension estimate; no figure")
        else:
            caption = ("Intrinsic dimension of each model's embedding of each dataset (marker "
                       "symbol: estimator; colour: family). Neither direction is better: the "
                       "paper reports values in a narrow band per dataset (QM9 ≈ 5, OMat24 ≈ "
                       "10).")
            _draw(s["dimension"], "intrinsic dimension", lambda: w.figure(
                s["dimension"], "intrinsic-dimension", caption,
                F.dimension_plot(result.dimensions),
                I.dimension_figure(result.dimensions, fam, palette), wide=True))
        w.table(s["dimension"], "intrinsic-dimension", "intrinsic dimension", result.dimensions)

    if not result.k_sweep.empty:
        caption = ("CKNNA of each model pair against the neighbourhood size k (log axis; ticks at "
                   "the k swept, capped at N − 1); higher = more similar. Choose a dataset in the "
                   "menu; click a legend entry to hide a pair. Kendall τ between the pair "
                   "rankings at successive k is in the table: τ near 1 means the conclusions do "
                   "not depend on k.")
        _draw(s["k_sweep"], "k sweep", lambda: w.figure(
            s["k_sweep"], "k-sweep", caption, F.k_sweep_plot(result.k_sweep, result.k_stability),
            I.k_sweep_figure(result.k_sweep, result.options.ks), wide=True))
        w.table(s["k_sweep"], "k-stability", "Kendall τ of pair rankings at successive k",
                result.k_stability)
        w.table(None, "k-sweep", "CKNNA at each k", result.k_sweep)

    for dataset, tree in result.trees.items():
        caption = (f"Neighbour-joining tree of the models on {dataset}, from Jensen–Shannon "
                   f"distances between their {main} profiles: models joined by short branches "
                   "align with the same models. Leaf colour = family.")
        _draw(s["tree"], f"tree {dataset}", lambda tree=tree, dataset=dataset,
              caption=caption: w.figure(
                  s["tree"], f"tree-{dataset}", caption,
                  F.tree_plot(tree, fam, palette, f"{main} tree · {dataset}"),
                  I.tree_figure(tree, fam, palette, f"{main} tree · {dataset}")))
        atomic_write_bytes(w.root / "tables" / f"tree-{_slug(dataset)}.nwk",
                           (tree.newick + "\n").encode())
        s["tree"].notes.append(f"{dataset} Newick: {tree.newick}")
        w.table(None, f"tree-distances-{dataset}", "JSD distances", tree.distances, index=True)

    for emap in result.maps:
        descriptions = _sample_descriptions(out, emap, s["map"])
        caption = (f"{emap.method.upper()} projection of {emap.model}'s embeddings of "
                   f"{', '.join(dict.fromkeys(emap.points.dataset))}: nearby points are embedded "
                   "alike. The buttons colour the points by dataset or by |energy error| after "
                   "compositional correction (eV; lower = better; grey: no reference energy). "
                   "Hover a point: sample id, chemical formula (samples with atoms), reference "
                   "labels and |energy error|, from the store's sample table.")
        _draw(s["map"], "map", lambda emap=emap, caption=caption, descriptions=descriptions:
              w.figure(s["map"], f"map-{emap.model}", caption, F.embedding_map_plot(emap),
                       I.map_figure(emap, descriptions), wide=True))
        w.table(None, f"map-{emap.model}", "map coordinates", emap.points)

    if not result.layer_rows.empty:
        caption = (f"{main} between every stored layer of one model (rows) and of another "
                   f"(columns), for the first six pairs, on one colour scale; {direction(main)}. "
                   "The table gives every pair's best layer pair, last layers and matched "
                   "relative depth.")
        _draw(s["layers"], "layer heatmaps", lambda: w.figure(
            s["layers"], "layers", caption, F.layer_heatmaps(result.layer_rows, main),
            wide=True))
        w.table(s["layers"], "layer-summary", "best / last / matched-depth alignment per pair",
                result.layer_summary)
        w.table(None, "layer-pairs", "every layer pair", result.layer_rows)

    for dataset, (table, refs, basis) in result.leaderboards.items():
        if len(table) < 3:
            s["leaderboard"].notes.append(f"{dataset}: {len(table)} models; no leaderboard plot")
            continue
        caption = (f"{dataset}: each model's calibrated {table.metric.iloc[0]} to the "
                   f"references ({basis}: {', '.join(refs)}), 0 = chance, 1 = identical, higher "
                   "= more aligned; bars are sample-bootstrap intervals; thick edge = a "
                   "reference.")
        _draw(s["leaderboard"], f"leaderboard {dataset}", lambda table=table, refs=refs,
              basis=basis, dataset=dataset, caption=caption: w.figure(
                  s["leaderboard"], f"leaderboard-{dataset}", caption,
                  F.leaderboard_plot(table, refs, basis, dataset),
                  I.leaderboard_figure(table, refs, basis, dataset, fam, palette)))
        w.table(s["leaderboard"], f"leaderboard-{dataset}", f"leaderboard on {dataset}", table)
    return list(s.values())


def _directed_section(result: StudyAnalysis, w: _Writer) -> ReportSection:
    """Each directed matrix of the study beside its asymmetry."""
    from matteralign.metrics import get_metric
    from matteralign.report import figures as F
    from matteralign.report import interactive as I

    section = ReportSection("directed", *FEATURE_SPACE_INTROS["directed"])
    for dataset, mats in result.matrices.items():
        n = result.datasets[dataset].n_shared
        for metric, mat in mats.items():
            if not get_metric(metric).directed:
                continue
            k = _metric_k(metric)
            constants = {"N": f"{n:,}", **({"k": k} if k is not None else {})}
            title = f"{metric} and its asymmetry · {dataset}"
            caption = (f"Left: {metric}(a → b) on {dataset} (N = {n:,}"
                       f"{f', k = {k}' if k is not None else ''}), row a = source, column b = "
                       f"target; {direction(metric)}. Right: (a → b) − (b → a), antisymmetric, "
                       "red = the score from a to b is higher than back, blue = lower, white = "
                       "symmetric. Hover a cell: both directions and their difference.")
            _draw(section, f"{metric} asymmetry on {dataset}", lambda mat=mat, metric=metric,
                  title=title, caption=caption, constants=constants, dataset=dataset: w.figure(
                      section, f"directed-{dataset}-{metric}", caption,
                      F.directed_heatmaps(mat, metric, title),
                      I.directed_figure(mat, metric, title, constants), wide=True))
            values = mat.to_numpy(dtype=float)
            w.table(section, f"asymmetry-{dataset}-{metric}",
                    f"{metric} asymmetry (a → b) − (b → a) on {dataset}",
                    pd.DataFrame(values - values.T, index=mat.index, columns=mat.columns),
                    index=True)
    if not section.figures:
        section.notes.append("no directed metric among the study's matrices: add gfre, gfrd, "
                             "lfre-k<k> or ii-k<k> to its metrics to draw the directed heatmaps")
    return section


def _atoms_section(result: StudyAnalysis, config: StudyConfig, out: Path,
                   w: _Writer) -> ReportSection:
    """Per-element alignment (from alignment/) and the atom map of each atom-level dataset."""
    from matteralign.analysis.atoms import element_scores
    from matteralign.metrics import get_metric
    from matteralign.report import figures as F
    from matteralign.report import interactive as I

    section = ReportSection("atoms", *FEATURE_SPACE_INTROS["atoms"])
    if config.level != "atoms":
        section.notes.append("this study scores structures (level: structures); set level: atoms "
                             "for atom-level matrices, per-element views and the atom map")
        return section
    for selection in config.datasets:
        dataset = config.stored_dataset(selection.name)
        table = element_scores(out, dataset)
        table = table[table.metric.map(lambda m: not get_metric(m).per_model).astype(bool)]
        if table.empty:
            section.notes.append(f"{dataset}: `matteralign align` wrote no atom-level matrices; "
                                 "run it for the per-element views")
        else:
            w.table(section, f"elements-{dataset}", f"every pair's score on all atoms and on "
                    f"each element's atoms of {dataset}", table)
        for metric in dict.fromkeys(table.metric):
            rows = table[table.metric == metric]
            lacking = sorted(set(table.element) - set(rows.element))
            if lacking:
                section.notes.append(f"{dataset}, {metric}: not scored on the atoms of "
                                     f"{', '.join(lacking)} (too few atoms; see scores.json)")
            title = f"{metric} per element · {dataset}"
            pair = "a · b" if get_metric(metric).symmetric else "a → b"
            caption = (f"{metric} of each model pair ({pair}) "
                       f"on all sampled atoms of {dataset} and on each element's atoms alone "
                       f"(N in the hover); {direction(metric)}. A column far from 'all' is an "
                       "element whose environments the models see differently from the rest.")
            _draw(section, f"{metric} per element on {dataset}", lambda table=table,
                  metric=metric, title=title, caption=caption, dataset=dataset: w.figure(
                      section, f"elements-{dataset}-{metric}", caption,
                      F.element_heatmap(table, metric, title),
                      I.element_figure(table, metric, title), wide=True))
        data = result.datasets.get(dataset)
        if data is None or len(data.values) < 2:
            section.notes.append(f"{dataset}: fewer than two models with atom embeddings; no "
                                 "atom map")
            continue
        _draw(section, f"atom map of {dataset}", lambda data=data, dataset=dataset:
              _atom_map_figure(result, data, dataset, section, w))
    return section


def _atom_map_figure(result: StudyAnalysis, data, dataset: str, section: ReportSection,
                     w: _Writer) -> None:
    from matteralign.analysis.atoms import atom_map
    from matteralign.report import figures as F
    from matteralign.report import interactive as I

    stored = [data.stored[m] for m in data.values]
    amap = atom_map(stored, max_atoms=result.options.map_max_per_dataset or 2000,
                    seed=result.options.seed)
    title = f"atoms in the shared anchor space · {dataset}"
    caption = (f"{len(amap.points) // len(stored):,} atoms of {dataset}, each model's atoms as "
               f"cosine similarities to the same {len(amap.anchors)} anchor atoms (joint "
               "farthest-point sampling), on the first two principal axes of all models' anchored "
               "atoms together; colour = element, the buttons switch model. Neither direction of "
               "an axis is better: where models agree, each atom keeps its place from model to "
               "model. Hover a point: structure id and atom index.")
    w.figure(section, f"atom-map-{dataset}", caption, F.atom_map_plot(amap, title),
             I.atom_map_figure(amap, title), wide=True)
    w.table(None, f"atom-map-{dataset}", "atom map coordinates", amap.points)


def _distribution_section(result: StudyAnalysis, section: ReportSection, w: _Writer) -> None:
    from matteralign.analysis.distribution import information_plane
    from matteralign.report import figures as F
    from matteralign.report import interactive as I

    pairs = result.pairs
    symmetric = [c for c in pairs.columns if c not in ("dataset", "ood", "model_a", "model_b")
                 and ":" not in c]
    kinds = ("in and out of distribution" if pairs.ood.nunique() == 2 else
             "all out of distribution" if pairs.ood.all() else "all in distribution")
    _draw(section, "distributions", lambda: w.figure(
        None, "distribution-pairs", "", F.distribution_plot(pairs, symmetric)))
    static = "distribution-pairs" if (w.root / "figures" / "distribution-pairs.png").is_file() \
        else None
    for metric in symmetric:
        _draw(section, f"distribution {metric}", lambda metric=metric: w.figure(
            section, f"distribution-{metric}", f"{metric} over model pairs per dataset ({kinds}; "
            f"blue = in, red = out of distribution); {direction(metric)}. Hover a point for its "
            "pair; the static export shows every metric.",
            plot=I.distribution_figure(pairs, metric), static=static))
    from matteralign.metrics import get_metric

    ii = next((c.split(":")[0] for c in pairs.columns if c.endswith(":a->b")
               and get_metric(c.split(":")[0]).family == "ii"), None)
    colour = next((c for c in symmetric if higher_is_similar(c)), None)
    if ii is not None and colour is not None:
        plane = information_plane(pairs, ii)
        caption = (f"Information-imbalance plane of {ii}: Δ(a→b) (x) against Δ(b→a) (y), one "
                   f"point per model pair, coloured by {colour} ({direction(colour)}). Lower Δ = "
                   "more information shared: bottom left, the two models carry the same "
                   "information; top right, unrelated; off the diagonal, one contains the other.")
        _draw(section, "information plane", lambda: w.figure(
            section, "information-plane", caption, F.information_plane_plot(plane, colour),
            I.plane_figure(plane, colour), wide=True))
    w.table(section, "pair-scores", "every pair's scores", pairs)
    if not result.in_out.empty:
        w.table(section, "in-vs-out", "summaries and ID-vs-OOD test (pooled raw scores; pairs "
                "share models, so p is descriptive)", result.in_out)
    if not result.in_out_matched.empty:
        w.table(section, "in-vs-out-matched", "in vs out of distribution on matched datasets "
                "(same models, same N, baselines left out; calibrated scores)",
                result.in_out_matched)
    if not result.distribution_labels.empty:
        w.table(section, "distribution-labels", "in or out of distribution per model and "
                "dataset, with the reason", result.distribution_labels)


def _sample_descriptions(out: Path, emap, section: ReportSection) -> pd.DataFrame | None:
    """Formula and reference labels of the map's samples, from the store's sample tables.

    Returns
    -------
    DataFrame or None
        Indexed by (dataset, id), columns ``what`` (chemical formula, else the SMILES, else the
        first 30 residues of the sequence and its length; empty when the sample has none of
        these) and ``labels`` (text: the energy and up to two more reference labels); None when
        no dataset of the map has a sample table.
    """
    from matteralign.errors import MatterAlignError
    from matteralign.store.embedding_store import EmbeddingStore

    store = EmbeddingStore(Path(out) / "store", create=False)
    frames = []
    for name in dict.fromkeys(emap.points.dataset):
        try:
            table = store.read_samples(name)
        except MatterAlignError as error:
            section.notes.append(f"{name}: the map's hover lacks formulas and labels: {error}")
            continue
        if table is None:
            continue
        ids = [i for i in dict.fromkeys(emap.points.id[emap.points.dataset == name])
               if i in table.index]
        rows = table.loc[ids]
        labels = sorted((c for c in rows.columns if c.startswith("label:")),
                        key=lambda c: c != "label:energy")[:3]
        what = [_sample_what(z, smiles, sequence) for z, smiles, sequence in zip(
            rows.atomic_numbers, rows.get("smiles", [""] * len(rows)),
            rows.get("sequence", [""] * len(rows)), strict=True)]
        text = [", ".join(f"{c[6:]} {v:.6g}" for c, v in zip(labels, values, strict=True)
                          if np.isfinite(v))
                for values in rows[labels].to_numpy(dtype=float)]
        frames.append(pd.DataFrame({"dataset": name, "id": ids, "what": what, "labels": text}))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).set_index(["dataset", "id"])


def _sample_what(atomic_numbers, smiles: str, sequence: str) -> str:  # noqa: ANN001
    """What a sample is, for the map's hover: its formula, else SMILES, else its sequence."""
    from ase.data import chemical_symbols
    from ase.formula import Formula

    if len(atomic_numbers):
        symbols = [chemical_symbols[int(z)] for z in atomic_numbers]
        return f"formula {Formula.from_list(symbols):hill}"
    if smiles:
        return f"SMILES {smiles}"
    if sequence:
        shown = sequence if len(sequence) <= 30 else f"{sequence[:30]}…"
        return f"sequence {shown} ({len(sequence)} residues)"
    return ""


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


def _score_tables(result: StudyAnalysis) -> tuple[pd.DataFrame, str]:
    """Every unordered pair's main-metric score and what it is.

    The calibrated score where the analyses calibrated the main metric (the mean of the two
    orders of an asymmetric metric; ``p_fdr`` the larger of the two), else the raw score of the
    pair table (``p_fdr`` NaN).

    Returns
    -------
    DataFrame
        dataset, model_a, model_b, score, p_fdr.
    str
        "calibrated <metric>" or "<metric> (raw)".
    """
    main = result.main_metric
    scored = {dataset: result.metric_on(dataset) for dataset in result.datasets}
    table = result.calibrated
    rows = table[[scored.get(d) == m for d, m in zip(table.dataset, table.metric, strict=True)]
                 ] if not table.empty else table
    if len(rows):
        first = [min(a, b) for a, b in zip(rows.model_a, rows.model_b, strict=True)]
        second = [max(a, b) for a, b in zip(rows.model_a, rows.model_b, strict=True)]
        frame = (rows.assign(model_a=first, model_b=second)
                 .groupby(["dataset", "model_a", "model_b"], sort=False)
                 .agg(score=("calibrated", "mean"), p_fdr=("p_fdr", "max")).reset_index())
        return frame, f"calibrated {main}"
    pairs = result.pairs
    if pairs.empty or not any(scored.get(d) in pairs for d in set(pairs.dataset)):
        return pd.DataFrame(), main
    score = np.full(len(pairs), np.nan)
    for dataset, metric in scored.items():
        if metric in pairs:
            rows_of = (pairs.dataset == dataset).to_numpy()
            score[rows_of] = pairs.loc[rows_of, metric].to_numpy(dtype=float)
    frame = pairs[["dataset", "model_a", "model_b"]].assign(score=score, p_fdr=np.nan)
    return frame, f"{main} (raw)"


def _pair_text(row) -> str:
    p = f", p<sub>FDR</sub> = {row.p_fdr:.2g}" if np.isfinite(row.p_fdr) else ""
    return (f"<b>{html.escape(row.model_a)}</b> · <b>{html.escape(row.model_b)}</b> on "
            f"{html.escape(row.dataset)} ({row.score:.3f}{p})")


def _summary(result: StudyAnalysis) -> list[str]:
    """Bullet points (HTML) answering the study's question in numbers, with caveats."""
    from matteralign.analysis.families import is_random_baseline

    out: list[str] = []
    main = result.main_metric
    scores, label = _score_tables(result)
    caveats: list[str] = []
    if not scores.empty:
        base = [is_random_baseline(a, result.card_families.get(a)) or
                is_random_baseline(b, result.card_families.get(b))
                for a, b in zip(scores.model_a, scores.model_b, strict=True)]
        real = scores[~np.array(base, dtype=bool)].dropna(subset=["score"])
        calibrated = label.startswith("calibrated")
        similar = calibrated or higher_is_similar(main)
        ranked = real.sort_values("score", ascending=not similar)
        if len(ranked):
            way = "higher = more similar, 0 = chance" if calibrated else direction(main)
            out.append(f"Most aligned pairs ({html.escape(label)}; {way}): "
                       + "; ".join(_pair_text(r) for r in ranked.head(3).itertuples()) + ".")
            out.append("Least aligned pairs (random baselines left out): "
                       + "; ".join(_pair_text(r) for r in ranked.tail(3).iloc[::-1].itertuples())
                       + ".")
        rand = scores[np.array(base, dtype=bool)].dropna(subset=["score"])
        if len(rand) and not calibrated:  # calibrated scores put chance at 0 by construction
            worst = rand.loc[rand.score.abs().idxmax()]
            out.append(f"Chance level: the largest |{html.escape(label)}| of a random baseline is "
                       f"{abs(worst.score):.3f} ({html.escape(worst.model_a)} · "
                       f"{html.escape(worst.model_b)} on {html.escape(worst.dataset)}); scores "
                       "near it say nothing.")
            if abs(worst.score) > 0.2:
                caveats.append(f"a random baseline reaches {abs(worst.score):.2f} raw "
                               f"{html.escape(main)} on {html.escape(worst.dataset)}: raw scores "
                               "there sit on a high chance level")
    best, references = [], set()
    for dataset, (table, refs, basis) in result.leaderboards.items():
        others = table[~table.is_reference].dropna(subset=["score"])
        if len(others):
            top = others.iloc[0]
            best.append((dataset, f"<b>{html.escape(top.model)}</b> ({top.score:.3f} "
                                  f"[{top.ci_low:.3f}, {top.ci_high:.3f}])",
                         f"{', '.join(refs)}, {basis}"))
            references.add(f"{', '.join(refs)}, {basis}")
    if best:
        shared = len(references) == 1
        out.append("Best non-reference model per dataset by calibrated alignment to the "
                   "references" + (f" ({html.escape(references.pop())})" if shared else "")
                   + ": " + "; ".join(f"{html.escape(d)}: {text}" + (
                       "" if shared else f" (references {html.escape(refs)})")
                       for d, text, refs in best) + ".")
    out += _distribution_summary(result) + _composition_summary(result)
    if not result.pairs.empty and result.in_out_matched.empty:
        io = result.in_out
        if not io.empty and "mannwhitney_p" in io:
            test = io[(io.dataset == "ID vs OOD") & (io.metric == main)]
            for r in test.itertuples():
                out.append(f"Raw {html.escape(main)} median over pairs: {r.median_id:.3f} in vs "
                           f"{r.median_ood:.3f} out of distribution (rank-biserial r = "
                           f"{r.rank_biserial:.2f}, Mann–Whitney p = {r.mannwhitney_p:.2g}; "
                           "pairs share models, so p is descriptive).")
    for dataset, data in result.datasets.items():
        n = data.n_shared
        k = _metric_k(main)
        if n < 100:
            caveats.append(f"{html.escape(dataset)} has N = {n}: chance levels are high and "
                           "intervals wide")
        if k is not None and n and k / n >= 0.4:
            caveats.append(f"{html.escape(dataset)}: k/N = {k}/{n} = {k / n:.2f} ≥ 0.4, where "
                           "CKNNA can leave [−1, 1]")
    if not result.energy.empty:
        exact = result.energy[result.energy.mae < 1e-6]
        for model, grp in exact.groupby("model", sort=False):
            caveats.append(f"{html.escape(model)}'s energy MAE is an exact fit (below 1e-6 eV, "
                           f"not an accuracy) on {html.escape(', '.join(grp.dataset))}")
    correlations, few = [], []
    for (dataset, metric), raw in result.convergence.items():
        res = result.convergence_calibrated.get((dataset, metric), raw)
        kind = "calibrated " if res is not raw else ""
        for c in res.correlations if metric == main else []:
            if c.method == "spearman":
                correlations.append((kind, f"{html.escape(dataset)} {c.value:.2f} "
                                           f"[{c.ci_low:.2f}, {c.ci_high:.2f}], n = {c.n}, to "
                                           f"{html.escape(res.reference)}"))
                if c.n < 6:
                    few.append(f"{html.escape(dataset)} ({c.n})")
    for kind in dict.fromkeys(k for k, _ in correlations):
        out.append(f"Convergence, Spearman ρ between energy MAE and {kind}{html.escape(main)} to "
                   "the lowest-MAE model (negative: lower error, higher alignment): "
                   + "; ".join(text for k, text in correlations if k == kind) + ".")
    if few:
        caveats.append(f"convergence correlations over fewer than 6 models: {', '.join(few)}")
    calibration = result.calibrated
    if not calibration.empty:
        main_rows = calibration[calibration.metric == main]
        if len(main_rows):
            significant = int((main_rows.p_fdr < 0.05).sum())
            out.append(f"{significant} of {len(main_rows)} {html.escape(main)} scores differ from "
                       "their permutation null at a 5 % false-discovery rate (Benjamini–Hochberg "
                       "over each matrix).")
        filled = calibration[calibration.null_fills_range.astype(bool)]
        for (dataset, metric), grp in filled.groupby(["dataset", "metric"], sort=False):
            caveats.append(f"on {html.escape(dataset)} the {html.escape(metric)} null comes "
                           f"within 0.1 of the best score for {len(grp)} pairs: those scores "
                           "cannot be told from chance")
        rounds = int(calibration.n_permutations.min())
        caveats.append(f"{rounds} permutation rounds: no p below {1 / (rounds + 1):.2g}")
    else:
        caveats.append("no permutation calibration: scores are raw, and raw chance levels move "
                       "with N, k and width")
    if caveats:
        out.append("<div class='caveat'>Caveats: " + "; ".join(dict.fromkeys(caveats))
                   + ".</div>")
    return out


def _composition_summary(result: StudyAnalysis) -> list[str]:
    """How much of the alignment composition explains (Steier's projection), in one line."""
    pairs, models = result.composition_pairs, result.composition_models
    if pairs.empty or models.empty:
        return []
    top = models.loc[models.composition_r2.astype(float).idxmax()]
    return [f"Composition: element fractions explain R² = {models.composition_r2.min():.2f}–"
            f"{models.composition_r2.max():.2f} of the embeddings (most: "
            f"{html.escape(top.model)} on {html.escape(top.dataset)}); with composition projected "
            f"out, the median {html.escape(pairs.metric.iloc[0])} over pairs goes from "
            f"{pairs.raw.median():.3f} (raw) to {pairs.controlled.median():.3f}."]


def _distribution_summary(result: StudyAnalysis) -> list[str]:
    """What is in and out of each model's distribution, and the matched in-vs-out comparison."""
    out = []
    labels = result.distribution_labels
    parts = []
    if not labels.empty:
        for dataset, grp in labels.groupby("dataset", sort=False):
            away = list(grp[grp.label == "out"].model)
            inside = list(grp[grp.label == "in"].model)
            if away:
                parts.append(f"{html.escape(dataset)}: out for {html.escape(', '.join(away))}"
                             f" ({len(inside)} in)")
            elif inside:
                parts.append(f"{html.escape(dataset)}: in for all {len(inside)}")
    if parts:
        out.append("Out of distribution, per model (card training domain and input): "
                   + "; ".join(parts) + ".")
    elif not result.pairs.empty:
        ood = sorted(set(result.pairs[result.pairs.ood].dataset))
        ind = sorted(set(result.pairs[~result.pairs.ood].dataset))
        out.append(f"In distribution (dataset flags): {html.escape(', '.join(ind) or 'none')}. "
                   f"Out of distribution: {html.escape(', '.join(ood) or 'none')}.")
    matched = result.in_out_matched
    if not matched.empty and "median_in" in matched:
        for r in matched.dropna(subset=["median_in"]).itertuples():
            out.append(f"Matched in vs out ({html.escape(r.metric)}, calibrated, same "
                       f"{r.n_models} models at N = {r.n}): median {r.median_in:.3f} on "
                       f"{html.escape(r.dataset_in)} vs {r.median_out:.3f} on "
                       f"{html.escape(r.dataset_out)}; mean pair difference "
                       f"{r.mean_difference:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] (models "
                       "resampled).")
    return out


def _picker(result: StudyAnalysis) -> ModelPicker | None:
    scores, label = _score_tables(result)
    if scores.empty:
        return None
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for r in scores.dropna(subset=["score"]).itertuples():
        d = rows.setdefault(r.dataset, {})
        d.setdefault(r.model_a, {})[r.model_b] = round(float(r.score), 4)
        d.setdefault(r.model_b, {})[r.model_a] = round(float(r.score), 4)
    higher = label.startswith("calibrated") or higher_is_similar(result.main_metric)
    return ModelPicker(label, higher, rows)


def build_report(result: StudyAnalysis, config: StudyConfig, out: Path, report_dir: Path,
                 started: float | None = None) -> Path:
    """Write report.html, figures/ and tables/ of an analysed study into ``report_dir``."""
    from matteralign.report.paper_coverage import coverage_lines

    started = started or time.perf_counter()
    w = _Writer(report_dir)
    sections = _sections(result, out, w)
    sections[1:1] = [_directed_section(result, w), _atoms_section(result, config, out, w)]
    appendix = _appendix(result, config, out, w, time.perf_counter() - started)
    n_models = len({m for d in result.datasets.values() for m in d.values})
    header = [f"study {config.name!r} · {len(result.datasets)} dataset(s) · {n_models} model(s) "
              f"with embeddings · main metric {result.main_metric} · preprocessing "
              f"{','.join(config.preprocess) or 'none'} · {time.strftime('%Y-%m-%d %H:%M')}",
              *coverage_lines({d: len(v.ids) for d, v in result.datasets.items()},
                              list(dict.fromkeys(m for d in result.datasets.values()
                                                 for m in d.values)))]
    try:
        summary = _summary(result)
    except Exception as error:  # noqa: BLE001 - the page must survive a summary that fails
        summary = [html.escape(f"the summary could not be written: {type(error).__name__}: "
                               f"{error}")]
    page = render_html(f"matteralign report: {config.name}", header, sections, appendix,
                       summary, _picker(result))
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
