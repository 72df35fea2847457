"""Matplotlib figures of the study analyses; each function takes analysis results, returns a Figure.

Presentation only: no scores are computed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from matteralign.analysis.atoms import AtomMap  # noqa: E402
from matteralign.analysis.convergence import ConvergenceResult  # noqa: E402
from matteralign.analysis.embedding_map import EmbeddingMap  # noqa: E402
from matteralign.analysis.families import cluster_order  # noqa: E402
from matteralign.analysis.tree import TreeResult  # noqa: E402
from matteralign.report.palette import DATASET_COLOURS, higher_is_similar  # noqa: E402

__all__ = [
    "atom_map_plot",
    "condensed_heatmap",
    "convergence_plot",
    "dimension_plot",
    "directed_heatmaps",
    "distribution_plot",
    "element_heatmap",
    "embedding_map_plot",
    "information_plane_plot",
    "k_sweep_plot",
    "layer_heatmaps",
    "leaderboard_plot",
    "matrix_heatmap",
    "tree_plot",
]

ID_COLOUR, OOD_COLOUR = "#3b75af", "#d1495b"
MAX_WIDTH_IN = 18.0  # with the report's 100 dpi: at most 1,800 px before the tight bounding box


def _width(inches: float) -> float:
    return min(inches, MAX_WIDTH_IN)


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(max_cols, max(n, 1))
    return int(np.ceil(max(n, 1) / cols)), cols


def _ink(rgba) -> str:
    """Black or white text, whichever reads better on ``rgba`` (relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _strip(ax, colours: Sequence[str], vertical: bool) -> None:
    """A thin family colour strip in its own axes."""
    from matplotlib.colors import to_rgba

    rgba = np.array([to_rgba(c) for c in colours])[:, None, :]
    ax.imshow(rgba if vertical else rgba.transpose(1, 0, 2), aspect="auto")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def matrix_heatmap(
    matrix: pd.DataFrame,
    families: pd.Series,
    palette: Mapping[str, str],
    title: str,
    metric: str,
    cmap: str = "viridis",
) -> Figure:
    """Clustered heatmap with family strips; the colour scale runs from least to most similar.

    The clustering and the scale follow the metric registry's ``higher_is_more_similar``; the
    colour bar says which direction is more similar. Cell values are printed when M <= 12.
    """
    similar = higher_is_similar(metric)
    order = cluster_order(matrix, similar)
    mat = matrix.loc[order, order]
    values = mat.to_numpy(dtype=float)
    m = len(order)
    side = min(2.5 + 0.34 * m, 14.0)
    fig = plt.figure(figsize=(_width(side + 2.2), side + 0.9))
    grid = fig.add_gridspec(2, 3, width_ratios=[0.18, side, 0.25], height_ratios=[0.18, side],
                            wspace=0.02, hspace=0.02)
    ax = fig.add_subplot(grid[1, 1])
    left, top, cax = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[0, 1]), \
        fig.add_subplot(grid[1, 2])
    scale = plt.get_cmap(cmap if similar else cmap + "_r")
    image = ax.imshow(values, cmap=scale, aspect="auto")
    fam = [str(families.get(o, "unknown")) for o in order]
    colours = [palette.get(f, "#cccccc") for f in fam]
    _strip(left, colours, vertical=True)
    _strip(top, colours, vertical=False)
    font = 9 if m <= 20 else 7
    ax.set_xticks(range(m), [_short(o) for o in order], rotation=60, ha="right",
                  rotation_mode="anchor", fontsize=font)
    ax.set_yticks([])
    left.set_yticks(range(m), [_short(o) for o in order], fontsize=font)
    if m <= 12:
        norm = image.norm
        for i in range(m):
            for j in range(m):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=9,
                            color=_ink(scale(norm(values[i, j]))))
    bar = fig.colorbar(image, cax=cax)
    bar.set_label(f"{metric} ({'higher' if similar else 'lower'} = more similar)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette.get(f, "#cccccc"))
               for f in dict.fromkeys(fam)]
    fig.legend(handles, list(dict.fromkeys(fam)), title="family", fontsize=8, title_fontsize=9,
               loc="upper left", bbox_to_anchor=(1.0, 0.9), ncol=1 + len(handles) // 25,
               frameon=False)
    top.set_title(title, fontsize=11)
    return fig


def condensed_heatmap(condensed: pd.DataFrame, title: str, metric: str) -> Figure:
    """Block-averaged (family x family) matrix; diagonal blocks fall below 1 when members differ."""
    f = len(condensed)
    similar = higher_is_similar(metric)
    fig, ax = plt.subplots(figsize=(_width(3.4 + 0.5 * f), 2.8 + 0.5 * f))
    values = condensed.to_numpy(dtype=float)
    scale = plt.get_cmap("viridis" if similar else "viridis_r")
    image = ax.imshow(values, cmap=scale)
    ax.set_xticks(range(f), list(condensed.columns), rotation=60, ha="right",
                  rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(f), list(condensed.index), fontsize=9)
    if f <= 12:
        for i in range(f):
            for j in range(f):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=9,
                            color=_ink(scale(image.norm(values[i, j]))))
    fig.colorbar(image, ax=ax, shrink=0.8,
                 label=f"mean {metric} ({'higher' if similar else 'lower'} = more similar)")
    ax.set_title(title, fontsize=11)
    return fig


def convergence_plot(res: ConvergenceResult, label: str,
                     parameters: Mapping[str, float | None], families: pd.Series,
                     palette: Mapping[str, str], energy: pd.DataFrame | None = None) -> Figure:
    """Energy MAE (x, eV) against alignment to the best model (y); marker area ∝ parameters.

    The statistics and the legend sit outside the axes, so they cover no point. Models without
    a finite alignment (the reference's calibrated self-score) are not drawn.
    """
    t = res.table[np.isfinite(res.table.alignment.astype(float))]
    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    params = np.array([parameters.get(m) or np.nan for m in t.model], dtype=float)
    if np.isfinite(params).any():
        scale = np.nan_to_num(params, nan=np.nanmin(params))
        sizes = 30 + 270 * np.sqrt(scale / np.nanmax(scale))
    else:
        sizes = np.full(len(t), 60.0)
    fam = [str(families.get(m, "unknown")) for m in t.model]
    xerr = yerr = None
    if energy is not None and {"mae_ci_low", "mae_ci_high"} <= set(energy.columns):
        e = energy.reindex(t.model)
        xerr = np.vstack([t.mae.to_numpy() - e.mae_ci_low.to_numpy(),
                          e.mae_ci_high.to_numpy() - t.mae.to_numpy()]).clip(min=0)
    if {"ci_low", "ci_high"} <= set(t.columns):
        yerr = np.vstack([t.alignment - t.ci_low, t.ci_high - t.alignment]).clip(min=0)
    if xerr is not None or yerr is not None:
        ax.errorbar(t.mae, t.alignment, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.5", lw=0.8,
                    zorder=1)
    ax.scatter(t.mae, t.alignment, s=sizes, c=[palette.get(f, "#ccc") for f in fam], alpha=0.8,
               edgecolor="k", linewidth=np.where(t.is_reference, 2.0, 0.5), zorder=2)
    for row in t.itertuples():
        ax.annotate(_short(row.model), (row.mae, row.alignment), fontsize=8,
                    xytext=(5, 4), textcoords="offset points")
    ax.set_xlabel("energy regression MAE after compositional correction (eV; lower = better)")
    ax.set_ylabel(f"{label} to {res.reference}")
    ax.margins(0.12)
    lines = [f"reference (lowest MAE, thick edge): {res.reference}"]
    for c in res.correlations:
        sym = "ρ" if c.method == "spearman" else "τ"
        lines.append(f"{c.method} {sym} = {c.value:.2f} [{c.ci_low:.2f}, {c.ci_high:.2f}], "
                     f"p = {c.p_value:.2g}, n = {c.n}")
    if res.note:
        lines.append(res.note)
    ax.text(0.0, -0.2, "\n".join(lines), transform=ax.transAxes, fontsize=8, va="top")
    handles = [plt.Line2D([], [], marker="o", ls="", color=palette.get(f, "#ccc"),
                          markeredgecolor="k", markersize=8) for f in dict.fromkeys(fam)]
    ax.legend(handles, list(dict.fromkeys(fam)), title="family", fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Alignment to the best model vs energy error", fontsize=11)
    return fig


def distribution_plot(pairs: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """Violins of each metric (one row each) over model pairs per dataset, in vs out of
    distribution; the legend names only the kinds present."""
    metrics = [m for m in metrics if m in pairs]
    datasets = list(dict.fromkeys(pairs.dataset))
    fig, axes = plt.subplots(len(metrics), 1, squeeze=False, sharex=True,
                             figsize=(_width(max(6.0, 0.55 * len(datasets) + 2.5)),
                                      2.6 * len(metrics) + 1.2))
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        data, colours = [], []
        for d in datasets:
            sub = pairs[pairs.dataset == d]
            data.append(sub[metric].dropna().to_numpy(dtype=float))
            colours.append(OOD_COLOUR if sub.ood.iloc[0] else ID_COLOUR)
        pos = np.arange(len(datasets))
        usable = [i for i, v in enumerate(data) if len(v) >= 2]
        if usable:
            parts = ax.violinplot([data[i] for i in usable], positions=pos[usable],
                                  showmedians=True)
            for body, i in zip(parts["bodies"], usable, strict=True):
                body.set_facecolor(colours[i])
                body.set_alpha(0.5)
        for i, v in enumerate(data):
            ax.scatter(np.full(len(v), pos[i]) + np.linspace(-0.08, 0.08, len(v)), v, s=10,
                       color=colours[i], edgecolor="k", linewidth=0.3, zorder=3)
        ax.set_xticks(pos, datasets, rotation=35, ha="right", rotation_mode="anchor", fontsize=9)
        ax.set_ylabel(f"{metric}\n({'higher' if higher_is_similar(metric) else 'lower'} = more "
                      "similar)", fontsize=9)
    kinds = sorted(set(pairs.ood.astype(bool)))
    handles = [plt.Rectangle((0, 0), 1, 1, color=OOD_COLOUR if k else ID_COLOUR, alpha=0.6)
               for k in kinds]
    labels = ["out of distribution" if k else "in distribution" for k in kinds]
    axes[0, 0].legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      frameon=False)
    axes[0, 0].set_title("Alignment over model pairs per dataset", fontsize=11)
    return fig


def information_plane_plot(plane: pd.DataFrame, colour_by: str) -> Figure:
    """Δ(a→b) against Δ(b→a), one panel per dataset (at most four per row), coloured by one
    symmetric metric; pairs are labelled when a panel has at most six."""
    datasets = list(dict.fromkeys(plane.dataset))
    rows, cols = _grid(len(datasets), 4)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(_width(3.4 * cols + 1.2),
                                                                  3.2 * rows))
    vmin, vmax = plane[colour_by].min(), plane[colour_by].max()
    sc = None
    for ax, d in zip(axes.flat, datasets, strict=False):
        sub = plane[plane.dataset == d]
        sc = ax.scatter(sub.delta_ab, sub.delta_ba, c=sub[colour_by], cmap="viridis", vmin=vmin,
                        vmax=vmax, s=28, edgecolor="k", linewidth=0.3)
        if len(sub) <= 6:
            for r in sub.itertuples():
                ax.annotate(f"{_short(r.model_a, 12)}→{_short(r.model_b, 12)}",
                            (r.delta_ab, r.delta_ba), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
        top = max(1.05, float(np.nanmax(sub[["delta_ab", "delta_ba"]].to_numpy())) + 0.05)
        ax.plot([0, top], [0, top], color="0.7", lw=0.8, ls="--")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("Δ(a→b)", fontsize=9)
        ax.set_ylabel("Δ(b→a)", fontsize=9)
        ax.set_title(f"{_short(d, 26)}{' (OOD)' if sub.ood.iloc[0] else ''}", fontsize=9)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0, 0.92, 0.95))
    if sc is not None:
        cax = fig.add_axes((0.935, 0.15, 0.015, 0.7))
        fig.colorbar(sc, cax=cax, label=f"{colour_by} (higher = more similar)")
    fig.suptitle("Information-imbalance plane: lower Δ = more information shared (bottom left: "
                 "the same information; top right: unrelated)", fontsize=10)
    return fig


def dimension_plot(dimensions: pd.DataFrame) -> Figure:
    """Intrinsic dimension as a model x dataset table of colours, one panel per estimator."""
    methods = list(dict.fromkeys(dimensions.method))
    models = list(dict.fromkeys(dimensions.model))
    datasets = list(dict.fromkeys(dimensions.dataset))
    height = 1.6 + 0.28 * len(models)
    fig, axes = plt.subplots(1, len(methods), squeeze=False, sharey=True, layout="constrained",
                             figsize=(_width(len(methods) * (2.6 + 0.45 * len(datasets)) + 2.0),
                                      height))
    for ax, method in zip(axes[0], methods, strict=True):
        grid = (dimensions[dimensions.method == method]
                .pivot_table(index="model", columns="dataset", values="value", aggfunc="first")
                .reindex(index=models, columns=datasets).to_numpy(dtype=float))
        shown = np.where(np.isfinite(grid), grid, np.nan)
        image = ax.imshow(shown, cmap="cividis", aspect="auto")
        ax.set_xticks(range(len(datasets)), [_short(d, 20) for d in datasets], rotation=50,
                      ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_yticks(range(len(models)), [_short(m, 24) for m in models], fontsize=8)
        ax.tick_params(axis="y", labelleft=ax is axes[0, 0])
        if len(models) * len(datasets) <= 150:
            for i in range(grid.shape[0]):
                for j in range(grid.shape[1]):
                    if np.isfinite(grid[i, j]):
                        ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7,
                                color=_ink(image.cmap(image.norm(grid[i, j]))))
        ax.set_title(method, fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.8, label="intrinsic dimension")
    return fig


def k_sweep_plot(sweep: pd.DataFrame, stability: pd.DataFrame) -> Figure:
    """CKNNA of each model pair against k (log axis with a tick at each swept k), at most three
    panels per row; pair legends below each panel when it has at most ten pairs."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    datasets = list(dict.fromkeys(sweep.dataset))
    rows, cols = _grid(len(datasets), 3)
    fig, axes = plt.subplots(rows, cols, squeeze=False,
                             figsize=(_width(5.4 * cols), 5.6 * rows))
    for ax, d in zip(axes.flat, datasets, strict=False):
        sub = sweep[sweep.dataset == d]
        pairs = sub.groupby(["model_a", "model_b"], sort=False)
        for (a, b), grp in pairs:
            ax.plot(grp.k, grp.value, marker="o", ms=3, lw=1, alpha=0.85,
                    label=f"{_short(a, 16)} · {_short(b, 16)}")
        ks = sorted({int(k) for k in sub.k})
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(ks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(ks, [str(k) for k in ks], fontsize=8, rotation=45 if len(ks) > 5 else 0)
        ax.set_xlabel("k (log axis)")
        ax.set_ylabel("CKNNA (higher = more similar)")
        st = stability[stability.dataset == d] if not stability.empty else stability
        title = _short(d, 30)
        if len(st):
            taus = ", ".join(f"{r.kendall_tau:.2f}" for r in st.itertuples())
            title += f"\nKendall τ between successive k: {taus}"
        ax.set_title(title, fontsize=9)
        if pairs.ngroups <= 10:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=2,
                      frameon=False)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def tree_plot(tree: TreeResult, families: pd.Series, palette: Mapping[str, str],
              title: str) -> Figure:
    """The neighbour-joining tree, leaf labels coloured by family."""
    from Bio import Phylo

    n = len(tree.distances)
    fig, ax = plt.subplots(figsize=(8.0, max(3.0, 0.35 * n + 1.2)))
    label_colours = {m: palette.get(str(families.get(m, "unknown")), "#333")
                     for m in tree.distances.index}
    Phylo.draw(tree.tree, axes=ax, do_show=False, label_colors=label_colours,
               label_func=lambda c: c.name if c.is_terminal() else None)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel("")
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("branch length (Jensen–Shannon distance)")
    if tree.left_out:
        ax.text(0.0, -0.16, f"left out: {', '.join(tree.left_out)}", transform=ax.transAxes,
                fontsize=8, va="top")
    return fig


def embedding_map_plot(emap: EmbeddingMap) -> Figure:
    """Two panels: points coloured by dataset, and by the model's energy error (when known)."""
    p = emap.points
    known = p.energy_error.notna()
    panels = 2 if known.any() else 1
    fig, axes = plt.subplots(1, panels, squeeze=False, figsize=(5.6 * panels + 1.5, 4.8),
                             layout="constrained")
    axes = axes[0]
    for i, (d, grp) in enumerate(p.groupby("dataset", sort=False)):
        axes[0].scatter(grp.x, grp.y, s=8, alpha=0.7, color=DATASET_COLOURS[i % 10], label=d)
    axes[0].legend(fontsize=8, markerscale=2, loc="upper left", bbox_to_anchor=(0.0, -0.14),
                   ncol=3, frameon=False)
    axes[0].set_title(f"{emap.model}: coloured by dataset", fontsize=10)
    if panels == 2:
        axes[1].scatter(p.x[~known], p.y[~known], s=6, color="0.85")
        sc = axes[1].scatter(p.x[known], p.y[known], s=8, c=p.energy_error[known],
                             cmap="magma_r")
        fig.colorbar(sc, ax=axes[1], label="|energy error| (eV; lower = better)")
        axes[1].set_title("coloured by |energy error| (grey: unknown)", fontsize=10)
    for ax in axes:
        ax.set_xlabel(f"{emap.method.upper()} 1")
        ax.set_ylabel(f"{emap.method.upper()} 2")
    return fig


def layer_heatmaps(rows: pd.DataFrame, metric: str, max_pairs: int = 6) -> Figure:
    """Layer x layer ``metric`` of the first ``max_pairs`` model pairs (rows: layers of a), on
    one colour scale shared by every panel."""
    keys = list(dict.fromkeys(zip(rows.dataset, rows.model_a, rows.model_b, strict=True)))
    keys = keys[:max_pairs]
    nrows, cols = _grid(len(keys), 3)
    fig, axes = plt.subplots(nrows, cols, squeeze=False, figsize=(4.2 * cols + 1.0, 3.6 * nrows),
                             layout="constrained")
    shown = rows[[k in set(keys) for k in zip(rows.dataset, rows.model_a, rows.model_b,
                                                strict=True)]].value.astype(float)
    similar = higher_is_similar(metric)
    scale = plt.get_cmap("viridis" if similar else "viridis_r")
    image = None
    for ax, (d, a, b) in zip(axes.flat, keys, strict=False):
        sub = rows[(rows.dataset == d) & (rows.model_a == a) & (rows.model_b == b)]
        grid = sub.pivot(index="layer_a", columns="layer_b", values="value")
        grid = grid.loc[list(dict.fromkeys(sub.layer_a)), list(dict.fromkeys(sub.layer_b))]
        image = ax.imshow(grid.to_numpy(dtype=float), cmap=scale, aspect="auto",
                          vmin=np.nanmin(shown), vmax=np.nanmax(shown))
        ax.set_xticks(range(grid.shape[1]), [_short(c, 12) for c in grid.columns], rotation=60,
                      ha="right", rotation_mode="anchor", fontsize=7)
        ax.set_yticks(range(grid.shape[0]), [_short(c, 12) for c in grid.index], fontsize=7)
        ax.set_xlabel(_short(b, 28), fontsize=8)
        ax.set_ylabel(_short(a, 28), fontsize=8)
        ax.set_title(d, fontsize=9)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6,
                     label=f"{metric} ({'higher' if similar else 'lower'} = more similar)")
    return fig


def leaderboard_plot(table: pd.DataFrame, references: Sequence[str], basis: str,
                     dataset: str) -> Figure:
    """Calibrated alignment to the references with intervals, best at the top."""
    t = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.32 * len(t)))
    y = np.arange(len(t))
    err = np.vstack([t.score - t.ci_low, t.ci_high - t.score]).clip(min=0)
    ax.barh(y, t.score, xerr=err, color=np.where(t.is_reference, "#d1495b", "#3b75af"),
            alpha=0.8, capsize=2)
    ax.set_yticks(y, [_short(m, 30) for m in t.model], fontsize=8)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel(f"calibrated {t.metric.iloc[0]} to references (0 = chance, 1 = identical)")
    ax.set_title(f"{dataset}: references ({basis}) = {', '.join(references)}", fontsize=9)
    fig.tight_layout()
    return fig


def _cells(ax, values: np.ndarray, image) -> None:
    """Print each finite cell's value in ink that reads on its colour."""
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color=_ink(image.cmap(image.norm(v))))


def directed_heatmaps(matrix: pd.DataFrame, metric: str, title: str) -> Figure:
    """A directed matrix (cell (a, b) = score(a → b)) beside its asymmetry
    score(a → b) − score(b → a) on a diverging scale centred on 0, in the matrix's model order."""
    models = [_short(str(m)) for m in matrix.index]
    raw = matrix.to_numpy(dtype=float)
    asym = raw - raw.T
    m = len(models)
    side = min(2.5 + 0.34 * m, 8.0)
    fig, axes = plt.subplots(1, 2, figsize=(_width(2 * side + 3.0), side + 1.0),
                             layout="constrained")
    similar = higher_is_similar(metric)
    bound = float(np.nanmax(np.abs(asym))) if np.isfinite(asym).any() else 1.0
    panels = ((raw, "viridis" if similar else "viridis_r", None,
               f"{metric}(a → b) ({'higher' if similar else 'lower'} = more similar)"),
              (asym, "RdBu_r", bound or 1.0, "asymmetry (a → b) − (b → a)"))
    for ax, (values, cmap, limit, label) in zip(axes, panels, strict=True):
        image = ax.imshow(values, cmap=cmap, aspect="equal",
                          **({} if limit is None else {"vmin": -limit, "vmax": limit}))
        fig.colorbar(image, ax=ax, shrink=0.8, label=label)
        ax.set_xticks(range(m), models, rotation=60, ha="right", rotation_mode="anchor",
                      fontsize=8)
        ax.set_yticks(range(m), models, fontsize=8)
        ax.set_xlabel("b (reconstructed)")
        ax.set_ylabel("a (source)")
        if m <= 12:
            _cells(ax, values, image)
    fig.suptitle(title, fontsize=11)
    return fig


def element_heatmap(table: pd.DataFrame, metric: str, title: str) -> Figure:
    """Per-element alignment: model pairs (rows) against atom views (all, then each element);
    a symmetric metric shows each unordered pair once, a directed one each ordered pair."""
    from matteralign.analysis.atoms import element_grid

    grid, _ = element_grid(table, metric)
    elements = list(grid.columns)
    values = grid.to_numpy(dtype=float)
    similar = higher_is_similar(metric)
    fig, ax = plt.subplots(figsize=(_width(3.0 + 0.45 * len(elements)),
                                    1.6 + 0.4 * len(grid)), layout="constrained")
    image = ax.imshow(values, cmap="viridis" if similar else "viridis_r", aspect="auto")
    fig.colorbar(image, ax=ax, label=f"{metric} ({'higher' if similar else 'lower'} = more "
                                     "similar)")
    ax.set_xticks(range(len(elements)), elements, fontsize=8)
    ax.set_yticks(range(len(grid)), [_short(p, 44) for p in grid.index], fontsize=8)
    ax.set_xlabel("atoms scored (all, or one element's)")
    if values.size <= 400:
        _cells(ax, values, image)
    ax.set_title(title, fontsize=10)
    return fig


def atom_map_plot(amap: AtomMap, title: str, max_cols: int = 4) -> Figure:
    """One panel per model: its atoms on the shared anchor-space PCA axes, coloured by element."""
    p = amap.points
    models = list(dict.fromkeys(p.model))
    elements = sorted(p.element.unique())
    cmap = plt.get_cmap("tab20")
    rows, cols = _grid(len(models), max_cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, sharex=True, sharey=True,
                             figsize=(_width(4.2 * cols + 1.5), 3.8 * rows), layout="constrained")
    for ax, model in zip(axes.flat, models, strict=False):
        for i, element in enumerate(elements):
            grp = p[(p.model == model) & (p.element == element)]
            ax.scatter(grp.x, grp.y, s=8, alpha=0.8, color=cmap(i % 20), label=element)
        ax.set_title(_short(model, 40), fontsize=10)
        ax.set_xlabel(f"PC 1 ({100 * amap.explained[0]:.0f} %)")
        ax.set_ylabel(f"PC 2 ({100 * amap.explained[1]:.0f} %)")
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, markerscale=1.5, ncol=max(1, len(elements) // 12),
                        loc="upper left", bbox_to_anchor=(0.0, -0.18), frameon=False)
    fig.suptitle(title, fontsize=11)
    return fig
