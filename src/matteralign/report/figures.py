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

from matteralign.analysis.convergence import ConvergenceResult  # noqa: E402
from matteralign.analysis.embedding_map import EmbeddingMap  # noqa: E402
from matteralign.analysis.families import cluster_order  # noqa: E402
from matteralign.analysis.tree import TreeResult  # noqa: E402

__all__ = [
    "condensed_heatmap",
    "convergence_plot",
    "dimension_plot",
    "distribution_plot",
    "embedding_map_plot",
    "family_colours",
    "information_plane_plot",
    "k_sweep_plot",
    "layer_heatmaps",
    "leaderboard_plot",
    "matrix_heatmap",
    "tree_plot",
]

ID_COLOUR, OOD_COLOUR = "#3b75af", "#d1495b"


def family_colours(families: Sequence[str]) -> dict[str, tuple]:
    """A stable colour per family (tab10/tab20 in order of first appearance)."""
    unique = list(dict.fromkeys(families))
    cmap = plt.get_cmap("tab10" if len(unique) <= 10 else "tab20")
    return {f: cmap(i % cmap.N) for i, f in enumerate(unique)}


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def matrix_heatmap(
    matrix: pd.DataFrame,
    families: pd.Series,
    title: str,
    higher_is_more_similar: bool = True,
    cmap: str = "viridis",
) -> Figure:
    """Clustered heatmap (average linkage on 1 - score) with a family colour bar on both axes."""
    order = cluster_order(matrix, higher_is_more_similar)
    mat = matrix.loc[order, order]
    m = len(order)
    size = min(4 + 0.42 * m, 18)
    fig, ax = plt.subplots(figsize=(size + 1.6, size))
    image = ax.imshow(mat.to_numpy(dtype=float), cmap=cmap if higher_is_more_similar else
                      cmap + "_r", aspect="equal")
    fam = [families.get(o, "unknown") for o in order]
    colours = family_colours(list(families.reindex(order).fillna("unknown")))
    for i, f in enumerate(fam):
        ax.add_patch(plt.Rectangle((-1.5, i - 0.5), 0.8, 1, color=colours[f], clip_on=False))
        ax.add_patch(plt.Rectangle((i - 0.5, -1.5), 1, 0.8, color=colours[f], clip_on=False))
    ax.set_xticks(range(m), [_short(o) for o in order], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(m), [_short(o) for o in order], fontsize=8)
    ax.tick_params(axis="y", pad=14)
    ax.set_xlim(-1.6, m - 0.5)
    ax.set_ylim(m - 0.5, -1.6)
    if m <= 16:
        values = mat.to_numpy(dtype=float)
        for i in range(m):
            for j in range(m):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if (values[i, j] < np.nanmean(values)) ==
                            higher_is_more_similar else "black")
    fig.colorbar(image, ax=ax, shrink=0.7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, list(colours), title="family", fontsize=7, title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.25, 1.0), frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def condensed_heatmap(condensed: pd.DataFrame, title: str) -> Figure:
    """Block-averaged (family x family) matrix; diagonal blocks are below 1."""
    f = len(condensed)
    fig, ax = plt.subplots(figsize=(3 + 0.5 * f, 2.5 + 0.5 * f))
    values = condensed.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis", vmin=np.nanmin(values), vmax=1.0)
    ax.set_xticks(range(f), list(condensed.columns), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(f), list(condensed.index), fontsize=8)
    for i in range(f):
        for j in range(f):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if values[i, j] < np.nanmean(values) else "black")
    fig.colorbar(image, ax=ax, shrink=0.7)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def convergence_plot(res: ConvergenceResult, parameters: Mapping[str, float | None]) -> Figure:
    """Energy MAE (x, eV) against alignment to the best model (y); marker area ∝ parameters."""
    t = res.table
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    params = np.array([parameters.get(m) or np.nan for m in t.model], dtype=float)
    if np.isfinite(params).any():
        scale = np.nan_to_num(params, nan=np.nanmin(params))
        sizes = 30 + 270 * np.sqrt(scale / np.nanmax(scale))
    else:
        sizes = np.full(len(t), 60.0)
    ax.scatter(t.mae, t.alignment, s=sizes, c=np.where(t.is_reference, "#d1495b", "#3b75af"),
               alpha=0.75, edgecolor="k", linewidth=0.5)
    for row in t.itertuples():
        ax.annotate(_short(row.model), (row.mae, row.alignment), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel("energy regression MAE after compositional correction (eV)")
    ax.set_ylabel(f"{res.metric} to {res.reference}")
    lines = [f"reference (lowest MAE): {res.reference}"]
    for c in res.correlations:
        sym = "ρ" if c.method == "spearman" else "τ"
        lines.append(f"{c.method} {sym} = {c.value:.2f} [{c.ci_low:.2f}, {c.ci_high:.2f}], "
                     f"p = {c.p_value:.2g}, n = {c.n}")
    if res.note:
        lines.append(res.note)
    ax.text(0.02, 0.02, "\n".join(lines), transform=ax.transAxes, fontsize=7, va="bottom",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})
    ax.set_title("Convergence: alignment to the best model vs energy error")
    fig.tight_layout()
    return fig


def distribution_plot(pairs: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """Violins of each metric over model pairs, one per dataset, coloured in vs out of
    distribution."""
    metrics = [m for m in metrics if m in pairs]
    datasets = list(dict.fromkeys(pairs.dataset))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1, 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
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
        ax.set_xticks(pos, datasets, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.6) for c in (ID_COLOUR, OOD_COLOUR)]
    fig.legend(handles, ["in distribution", "out of distribution"], loc="upper right", fontsize=8)
    fig.suptitle("Alignment over model pairs per dataset", fontsize=11)
    fig.tight_layout()
    return fig


def information_plane_plot(plane: pd.DataFrame, colour_by: Sequence[str]) -> Figure:
    """Δ(a→b) against Δ(b→a) per dataset (columns), coloured by each symmetric metric (rows)."""
    datasets = list(dict.fromkeys(plane.dataset))
    colour_by = [c for c in colour_by if c in plane]
    fig, axes = plt.subplots(len(colour_by), len(datasets), squeeze=False,
                             figsize=(3.6 * len(datasets) + 0.8, 3.3 * len(colour_by)))
    for r, metric in enumerate(colour_by):
        vmin, vmax = plane[metric].min(), plane[metric].max()
        for c, d in enumerate(datasets):
            ax = axes[r, c]
            sub = plane[plane.dataset == d]
            sc = ax.scatter(sub.delta_ab, sub.delta_ba, c=sub[metric], cmap="viridis", vmin=vmin,
                            vmax=vmax, s=25, edgecolor="k", linewidth=0.3)
            top = max(1.05, float(np.nanmax(sub[["delta_ab", "delta_ba"]].to_numpy())) + 0.05)
            ax.plot([0, top], [0, top], color="0.7", lw=0.8, ls="--")
            ax.set_xlim(0, top)
            ax.set_ylim(0, top)
            ax.set_xlabel("Δ(a→b)", fontsize=8)
            ax.set_ylabel("Δ(b→a)", fontsize=8)
            ax.set_title(f"{d}{' (OOD)' if sub.ood.iloc[0] else ''}", fontsize=9)
            fig.colorbar(sc, ax=ax, label=metric, shrink=0.8)
    fig.suptitle("Information-imbalance plane (bottom left: same information; top right: "
                 "orthogonal)", fontsize=10)
    fig.tight_layout()
    return fig


def dimension_plot(dimensions: pd.DataFrame) -> Figure:
    """Intrinsic dimension per model (points) and dataset (columns), one colour per estimator."""
    datasets = list(dict.fromkeys(dimensions.dataset))
    methods = list(dict.fromkeys(dimensions.method))
    fig, axes = plt.subplots(1, len(datasets), squeeze=False,
                             figsize=(max(4.0, 0.5 * dimensions.model.nunique() + 2) *
                                      len(datasets), 4.0))
    colours = plt.get_cmap("Set1")
    for ax, d in zip(axes[0], datasets, strict=True):
        sub = dimensions[dimensions.dataset == d]
        models = list(dict.fromkeys(sub.model))
        for i, method in enumerate(methods):
            s = sub[sub.method == method].set_index("model").reindex(models)
            ax.scatter(np.arange(len(models)) + (i - (len(methods) - 1) / 2) * 0.15, s.value,
                       color=colours(i), label=method, s=30, edgecolor="k", linewidth=0.3)
        ax.set_xticks(range(len(models)), [_short(m) for m in models], rotation=60, ha="right",
                      fontsize=8)
        ax.set_ylabel("intrinsic dimension")
        ax.set_title(d, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def k_sweep_plot(sweep: pd.DataFrame, stability: pd.DataFrame) -> Figure:
    """CKNNA of each model pair against k (log axis), with Kendall τ between successive k."""
    datasets = list(dict.fromkeys(sweep.dataset))
    fig, axes = plt.subplots(1, len(datasets), squeeze=False, figsize=(5.2 * len(datasets), 4.0))
    for ax, d in zip(axes[0], datasets, strict=True):
        sub = sweep[sweep.dataset == d]
        for (a, b), grp in sub.groupby(["model_a", "model_b"], sort=False):
            ax.plot(grp.k, grp.value, marker="o", ms=3, lw=1, alpha=0.8,
                    label=f"{_short(a, 14)} · {_short(b, 14)}")
        ax.set_xscale("log")
        ax.set_xlabel("k")
        ax.set_ylabel("CKNNA")
        st = stability[stability.dataset == d] if not stability.empty else stability
        if len(st):
            text = "\n".join(f"τ({r.k_from}→{r.k_to}) = {r.kendall_tau:.2f}"
                             for r in st.itertuples())
            ax.text(0.98, 0.02, text, transform=ax.transAxes, fontsize=7, ha="right", va="bottom",
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})
        if sub.groupby(["model_a", "model_b"]).ngroups <= 10:
            ax.legend(fontsize=6, loc="upper left")
        ax.set_title(d, fontsize=10)
    fig.tight_layout()
    return fig


def tree_plot(tree: TreeResult, families: pd.Series, title: str) -> Figure:
    """The neighbour-joining tree, leaf labels coloured by family."""
    from Bio import Phylo

    n = len(tree.distances)
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.35 * n + 1.2)))
    colours = family_colours(list(families.reindex(tree.distances.index).fillna("unknown")))
    label_colours = {m: colours[families.get(m, "unknown")] for m in tree.distances.index}
    Phylo.draw(tree.tree, axes=ax, do_show=False, label_colors=label_colours,
               label_func=lambda c: c.name if c.is_terminal() else None)
    ax.set_title(title)
    ax.set_ylabel("")
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("branch length (Jensen–Shannon distance)")
    if tree.left_out:
        ax.text(0.99, 0.01, f"left out: {', '.join(tree.left_out)}", transform=ax.transAxes,
                ha="right", fontsize=7)
    fig.tight_layout()
    return fig


def embedding_map_plot(emap: EmbeddingMap) -> Figure:
    """Two panels: points coloured by dataset, and by the model's energy error."""
    p = emap.points
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colours = family_colours(list(p.dataset))
    for d, grp in p.groupby("dataset", sort=False):
        axes[0].scatter(grp.x, grp.y, s=8, alpha=0.7, color=colours[d], label=d)
    axes[0].legend(fontsize=8, markerscale=2)
    axes[0].set_title(f"{emap.model}: coloured by dataset", fontsize=10)
    known = p.energy_error.notna()
    axes[1].scatter(p.x[~known], p.y[~known], s=6, color="0.85", label="no energy label")
    if known.any():
        sc = axes[1].scatter(p.x[known], p.y[known], s=8, c=p.energy_error[known], cmap="magma_r")
        fig.colorbar(sc, ax=axes[1], label="|energy error| after compositional correction (eV)")
    axes[1].set_title(f"{emap.model}: coloured by energy error", fontsize=10)
    for ax in axes:
        ax.set_xlabel(f"{emap.method.upper()} 1")
        ax.set_ylabel(f"{emap.method.upper()} 2")
    fig.tight_layout()
    return fig


def layer_heatmaps(rows: pd.DataFrame, max_pairs: int = 6) -> Figure:
    """Layer x layer alignment of the first ``max_pairs`` model pairs (rows: layers of a)."""
    keys = list(dict.fromkeys(zip(rows.dataset, rows.model_a, rows.model_b, strict=True)))
    keys = keys[:max_pairs]
    cols = min(3, len(keys))
    nrows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(nrows, cols, squeeze=False, figsize=(4.4 * cols, 3.8 * nrows))
    for ax, (d, a, b) in zip(axes.flat, keys, strict=False):
        sub = rows[(rows.dataset == d) & (rows.model_a == a) & (rows.model_b == b)]
        grid = sub.pivot(index="layer_a", columns="layer_b", values="value")
        grid = grid.loc[list(dict.fromkeys(sub.layer_a)), list(dict.fromkeys(sub.layer_b))]
        image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [_short(c, 12) for c in grid.columns], rotation=60,
                      ha="right", fontsize=7)
        ax.set_yticks(range(grid.shape[0]), [_short(c, 12) for c in grid.index], fontsize=7)
        ax.set_xlabel(_short(b, 28), fontsize=8)
        ax.set_ylabel(_short(a, 28), fontsize=8)
        ax.set_title(d, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
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
