"""Interactive (plotly) figures of the study analyses: each function returns a ``go.Figure``.

Presentation only: no scores are computed here. Hover text carries the numbers a reader needs
(model pair, raw score and, where the analysis provides them, calibrated score, p, FDR-adjusted p,
N and k). Family colours come from :func:`matteralign.report.palette.family_palette`, so a family
looks the same in every figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from matteralign.analysis.atoms import AtomMap, element_grid
from matteralign.analysis.convergence import ConvergenceResult
from matteralign.analysis.embedding_map import EmbeddingMap
from matteralign.analysis.families import cluster_order
from matteralign.analysis.tree import TreeResult
from matteralign.metrics import get_metric
from matteralign.report.palette import DATASET_COLOURS, higher_is_similar

__all__ = [
    "atom_map_figure",
    "convergence_figure",
    "dataset_picker",
    "dimension_figure",
    "directed_figure",
    "distribution_figure",
    "element_figure",
    "heatmap_figure",
    "k_sweep_figure",
    "leaderboard_figure",
    "map_figure",
    "plane_figure",
    "tree_figure",
]

FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12}
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "triangle-down",
           "pentagon", "hexagon", "star")


def _layout(fig: go.Figure, title: str, width: int | None, height: int, **extra) -> go.Figure:
    fig.update_layout(template="none",  # plotly.js defaults; the default template is 7 kB a figure
                      title={"text": title, "font": {"size": 14}, "x": 0.01}, font=FONT,
                      height=height, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      plot_bgcolor="white", paper_bgcolor="white",
                      hoverlabel={"font_size": 12, "align": "left"}, **extra)
    if width is not None:
        fig.update_layout(width=width)
    fig.update_xaxes(automargin=True, gridcolor="#eee", zerolinecolor="#ccc")
    fig.update_yaxes(automargin=True, gridcolor="#eee", zerolinecolor="#ccc")
    return fig


def _fmt(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value)


def _nested(values: np.ndarray) -> list[list[float | None]]:
    """A matrix as nested lists (None where not finite), for plotly's button arguments."""
    return [[float(v) if np.isfinite(v) else None for v in row] for row in values]


def heatmap_figure(
    matrix: pd.DataFrame,
    metric: str,
    title: str,
    families: pd.Series,
    palette: Mapping[str, str],
    statistics: Mapping[str, pd.DataFrame] | None = None,
    constants: Mapping[str, object] | None = None,
    calibrated: pd.DataFrame | None = None,
    kinds: pd.Series | None = None,
) -> go.Figure:
    """Clustered heatmap of an (M, M) matrix with family strips and a hover per cell.

    Parameters
    ----------
    matrix : (M, M) DataFrame
        Raw scores, row model a, column model b (score(a -> b) for an asymmetric metric).
    metric : str
        Metric id; its registry direction orders the clustering and the colour scale (the scale
        always runs from least similar, dark, to most similar, bright).
    families : Series
        Family per model id (missing: ``"unknown"``).
    palette : mapping of family to hex colour
    statistics : mapping of name to (M, M) DataFrame, optional
        Further per-cell numbers shown in the hover (calibrated score, p, p_fdr, ...).
    constants : mapping, optional
        Numbers shared by every cell (N, k), shown in the hover.
    calibrated : (M, M) DataFrame, optional
        Calibrated scores (higher = more similar whatever the metric's direction); when given
        they are the colours, and buttons switch between calibrated and raw.
    kinds : Series, optional
        A second label per model for the hover (the card's modality family), after the family.
    """
    similar = higher_is_similar(metric)
    order = cluster_order(matrix, similar)
    mat = matrix.loc[order, order]
    m = len(order)
    fam = [str(families.get(o, "unknown")) for o in order]
    label = [f if kinds is None or str(kinds.get(o, f)) in (f, "unknown") else
             f"{f} · {kinds.get(o)}" for f, o in zip(fam, order, strict=True)]
    stats = {k: v.reindex(index=order, columns=order) for k, v in (statistics or {}).items()}
    raw = mat.to_numpy(dtype=float)
    custom = np.empty((m, m, 3 + len(stats)), dtype=object)
    for i in range(m):
        for j in range(m):
            custom[i, j, 0], custom[i, j, 1] = label[i], label[j]
            custom[i, j, 2] = _fmt(float(raw[i, j]))
            for s, frame in enumerate(stats.values()):
                custom[i, j, 3 + s] = _fmt(float(frame.iat[i, j]))
    extra = "".join(f"<br>{name}: %{{customdata[{3 + s}]}}" for s, name in enumerate(stats))
    shared = "".join(f"<br>{k} = {v}" for k, v in (constants or {}).items())
    arrow = "·" if get_metric(metric).symmetric else "→"
    hover = (f"<b>%{{y}}</b> ({'%{customdata[0]}'}) {arrow} <b>%{{x}}</b> ({'%{customdata[1]}'})"
             f"<br>{metric} (raw): %{{customdata[2]}}{extra}{shared}<extra></extra>")
    raw_view = {"z": raw, "colorscale": "Viridis" if similar else "Viridis_r",
                "title": f"{metric} (raw)<br>({'higher' if similar else 'lower'} = more similar)"}
    views = [raw_view]
    if calibrated is not None:
        views.insert(0, {"z": calibrated.reindex(index=order, columns=order).to_numpy(float),
                         "colorscale": "Viridis",
                         "title": f"calibrated {metric}<br>(higher = more similar;<br>0 = null "
                                  "threshold τ)"})
    first = views[0]
    fig = go.Figure(go.Heatmap(
        z=first["z"], x=order, y=order, customdata=custom, hovertemplate=hover,
        colorscale=first["colorscale"], xgap=1, ygap=1,
        colorbar={"title": {"text": first["title"], "side": "right"}, "thickness": 14},
    ))
    if len(views) == 2:
        fig.update_layout(updatemenus=[{
            "type": "buttons", "direction": "right", "x": 0.45, "xanchor": "left", "y": 1.08,
            "yanchor": "bottom", "showactive": True, "buttons": [
                {"label": label, "method": "restyle",
                 "args": [{"z": [_nested(v["z"])], "colorscale": [v["colorscale"]],
                           "colorbar.title.text": v["title"]}, [0]]}
                for label, v in zip(("calibrated", "raw"), views, strict=True)]}])
    if m <= 12:
        fig.update_traces(texttemplate="%{z:.2f}", textfont={"size": 11})
    cell = max(14, min(36, 640 // max(m, 1)))
    # family strips: a quarter-cell band left of each row and above each column, inside the axes
    edge, width = -0.5 - 0.08, 0.3
    shapes = []
    for i, f in enumerate(fam):
        band = {"type": "rect", "xref": "x", "yref": "y", "line": {"width": 0},
                "fillcolor": palette.get(f, "#cccccc")}
        shapes.append({**band, "x0": edge - width, "x1": edge, "y0": i - 0.5, "y1": i + 0.5})
        shapes.append({**band, "y0": edge - width, "y1": edge, "x0": i - 0.5, "x1": i + 0.5})
    fig.update_layout(shapes=shapes)
    for f in dict.fromkeys(fam):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f, showlegend=True,
                                 marker={"size": 10, "symbol": "square",
                                         "color": palette.get(f, "#cccccc")}))
    span = [edge - width - 0.02, m - 0.5]
    fig.update_xaxes(tickangle=-50, showgrid=False, zeroline=False, range=span,
                     constrain="domain")
    fig.update_yaxes(showgrid=False, zeroline=False, range=span[::-1], scaleanchor="x")
    fig.update_traces(selector={"type": "heatmap"},
                      colorbar={"len": 0.55, "y": 1, "yanchor": "top"})
    return _layout(fig, title, None, 280 + cell * m,
                   legend={"title": {"text": "family"}, "x": 1.02, "y": 0, "yanchor": "bottom",
                           "font": {"size": 11}})


def tree_figure(tree: TreeResult, families: pd.Series, palette: Mapping[str, str],
                title: str) -> go.Figure:
    """The neighbour-joining tree drawn as a rectangular cladogram; leaves hover their family."""
    depths = tree.tree.depths()
    if not max(depths.values(), default=0):
        depths = tree.tree.depths(unit_branch_lengths=True)
    leaves = tree.tree.get_terminals()
    y = {leaf: i for i, leaf in enumerate(leaves)}

    def place(clade) -> float:
        if clade not in y:
            y[clade] = float(np.mean([place(c) for c in clade.clades]))
        return y[clade]

    place(tree.tree.root)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for clade in tree.tree.find_clades(order="preorder"):
        for child in clade.clades:
            xs += [depths[clade], depths[clade], depths[child], None]
            ys += [y[clade], y[child], y[child], None]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#555", "width": 1.2},
                               hoverinfo="skip", showlegend=False))
    for f in dict.fromkeys(str(families.get(leaf.name, "unknown")) for leaf in leaves):
        chosen = [leaf for leaf in leaves if str(families.get(leaf.name, "unknown")) == f]
        fig.add_trace(go.Scatter(
            x=[depths[c] for c in chosen], y=[y[c] for c in chosen], mode="markers+text",
            text=[c.name for c in chosen], textposition="middle right", name=f,
            marker={"size": 10, "color": palette.get(f, "#cccccc"),
                    "line": {"width": 0.5, "color": "#333"}},
            hovertemplate="<b>%{text}</b><br>family " + f +
                          "<br>distance from root %{x:.3f}<extra></extra>"))
    top = max(depths.values()) if depths else 1.0
    fig.update_xaxes(title="branch length (Jensen–Shannon distance)", range=[-0.02 * top,
                     top * 1.45], showgrid=False)
    fig.update_yaxes(visible=False, range=[len(leaves) - 0.5, -0.7])
    if tree.left_out:
        title += f" (left out: {', '.join(tree.left_out)})"
    return _layout(fig, title, None, 140 + 26 * len(leaves), legend={"title": {"text": "family"}})


def map_figure(emap: EmbeddingMap, descriptions: pd.DataFrame | None) -> go.Figure:
    """The embedding map, coloured by dataset or (menu) by energy error, with a hover per sample.

    Parameters
    ----------
    emap : EmbeddingMap
        Points with id, dataset, x, y, energy_error (eV).
    descriptions : DataFrame, optional
        Indexed by (dataset, id) with a ``what`` column (e.g. the chemical formula) and a
        ``labels`` column (text), shown in the hover.
    """
    p = emap.points.copy()
    if descriptions is not None and len(descriptions):
        joined = descriptions.reindex(pd.MultiIndex.from_frame(p[["dataset", "id"]]))
        p["what"] = joined["what"].fillna("").to_numpy()
        p["labels"] = joined["labels"].fillna("").to_numpy()
    else:
        p["what"], p["labels"] = "", ""
    error = p.energy_error.astype(float)
    p["err"] = error.map(lambda v: "–" if not np.isfinite(v) else f"{v:.3g} eV")
    axis = emap.method.upper()
    fig = go.Figure()
    known = np.isfinite(error).any()
    by_dataset, by_error = [], []
    for i, (d, grp) in enumerate(p.groupby("dataset", sort=False)):
        colour = DATASET_COLOURS[i % len(DATASET_COLOURS)]
        fig.add_trace(go.Scatter(
            x=grp.x.to_numpy(np.float32), y=grp.y.to_numpy(np.float32), mode="markers", name=d,
            customdata=grp[["id", "what", "labels", "err"]].to_numpy(dtype=object),
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>%{customdata[2]}"
                          "<br>|energy error| %{customdata[3]}<extra>" + d + "</extra>",
            marker={"size": 5, "opacity": 0.8, "color": colour}))
        by_dataset.append(colour)
        by_error.append(np.where(np.isfinite(grp.energy_error), grp.energy_error, np.nan))
    fig.update_xaxes(title=f"{axis} 1")
    fig.update_yaxes(title=f"{axis} 2")
    _layout(fig, f"{emap.model}: {axis} map", None, 540, legend={"title": {"text": "dataset"}})
    if known:
        lo, hi = float(np.nanmin(error)), float(np.nanmax(error))
        fig.update_layout(
            coloraxis={"colorscale": "Magma_r", "cmin": lo, "cmax": hi, "showscale": False,
                       "colorbar": {"title": {"text": "|energy error| (eV)<br>lower = better"}}},
            updatemenus=[{"type": "buttons", "direction": "right", "x": 0.4, "xanchor": "left",
                          "y": 1.08, "yanchor": "bottom", "showactive": True, "buttons": [
                {"label": "colour by dataset", "method": "update",
                 "args": [{"marker.color": by_dataset, "marker.coloraxis": None},
                          {"coloraxis.showscale": False, "showlegend": True}]},
                {"label": "colour by |energy error|", "method": "update",
                 "args": [{"marker.color": by_error, "marker.coloraxis": "coloraxis"},
                          {"coloraxis.showscale": True, "showlegend": False}]},
            ]}])
    return fig


def convergence_figure(res: ConvergenceResult, title: str, label: str,
                       parameters: Mapping[str, float | None], families: pd.Series,
                       palette: Mapping[str, str], energy: pd.DataFrame | None = None
                       ) -> go.Figure:
    """Energy MAE (x, eV) against alignment to the reference; marker area ∝ parameters.

    Intervals are drawn where given: ``res.table`` columns ``ci_low``/``ci_high`` (alignment) and
    ``energy`` (indexed by model) columns ``mae_ci_low``/``mae_ci_high``. Models without a finite
    alignment (the reference's calibrated self-score) are not drawn.
    """
    t = res.table[np.isfinite(res.table.alignment.astype(float))].copy()
    params = np.array([parameters.get(m) or np.nan for m in t.model], dtype=float)
    sizes = (10 + 26 * np.sqrt(np.nan_to_num(params, nan=np.nanmin(params)) / np.nanmax(params))
             if np.isfinite(params).any() else np.full(len(t), 14.0))
    t["size"], t["params"] = sizes, params
    t["family"] = [str(families.get(m, "unknown")) for m in t.model]
    fig = go.Figure()
    for f, grp in t.groupby("family", sort=True):
        error_x = error_y = None
        if energy is not None and {"mae_ci_low", "mae_ci_high"} <= set(energy.columns):
            e = energy.reindex(grp.model)
            error_x = {"type": "data", "symmetric": False, "thickness": 1,
                       "array": (e.mae_ci_high.to_numpy() - grp.mae.to_numpy()).clip(0),
                       "arrayminus": (grp.mae.to_numpy() - e.mae_ci_low.to_numpy()).clip(0)}
        if {"ci_low", "ci_high"} <= set(grp.columns):
            error_y = {"type": "data", "symmetric": False, "thickness": 1,
                       "array": (grp.ci_high - grp.alignment).clip(lower=0).to_numpy(),
                       "arrayminus": (grp.alignment - grp.ci_low).clip(lower=0).to_numpy()}
        fig.add_trace(go.Scatter(
            x=grp.mae, y=grp.alignment, mode="markers+text", name=f, text=grp.model,
            error_x=error_x, error_y=error_y,
            textposition="top center", textfont={"size": 10},
            customdata=np.stack([grp.params.map(lambda v: "–" if not np.isfinite(v) else
                                                f"{v:,.0f}"), grp.is_reference], axis=1),
            marker={"size": grp["size"], "color": palette.get(f, "#ccc"), "opacity": 0.85,
                    "line": {"width": [2.5 if r else 0.5 for r in grp.is_reference],
                             "color": "#222"}},
            hovertemplate="<b>%{text}</b><br>MAE %{x:.4g} eV<br>" + label + " to " +
                          res.reference + ": %{y:.3f}<br>parameters %{customdata[0]}"
                          "<extra>" + f + "</extra>"))
    fig.update_xaxes(title="energy regression MAE after compositional correction (eV; lower = "
                           "better)")
    fig.update_yaxes(title=f"{label} to {res.reference}")
    return _layout(fig, title, None, 480, legend={"title": {"text": "family"}})


def dataset_picker(fig: go.Figure, trace_datasets: Sequence[str | None]) -> go.Figure:
    """A dropdown that shows one dataset's traces at a time (traces tagged None always show)."""
    datasets = list(dict.fromkeys(d for d in trace_datasets if d is not None))
    if len(datasets) <= 1:
        return fig
    first = datasets[0]
    for trace, d in zip(fig.data, trace_datasets, strict=True):
        trace.visible = d is None or d == first
    buttons = [{"label": d, "method": "update",
                "args": [{"visible": [t is None or t == d for t in trace_datasets]},
                         {"title.text": f"{fig.layout.title.text.split(' — ')[0]} — {d}"}]}
               for d in datasets]
    fig.update_layout(updatemenus=[{"buttons": buttons, "x": 0.45, "xanchor": "left", "y": 1.06,
                                    "yanchor": "bottom", "direction": "down",
                                    "showactive": True}],
                      title_text=f"{fig.layout.title.text} — {first}")
    return fig


def plane_figure(plane: pd.DataFrame, colour_by: str) -> go.Figure:
    """Δ(a→b) against Δ(b→a), one point per model pair, coloured by ``colour_by``; a dataset
    dropdown."""
    fig = go.Figure()
    tags = []
    lo, hi = float(plane[colour_by].min()), float(plane[colour_by].max())
    for d, grp in plane.groupby("dataset", sort=False):
        ood = " (OOD)" if bool(grp.ood.iloc[0]) else ""
        fig.add_trace(go.Scatter(
            x=grp.delta_ab, y=grp.delta_ba, mode="markers", name=d + ood,
            text=grp.model_a + " → " + grp.model_b,
            customdata=grp[colour_by].to_numpy(),
            marker={"size": 10, "color": grp[colour_by], "coloraxis": "coloraxis",
                    "line": {"width": 0.5, "color": "#333"}},
            hovertemplate="<b>%{text}</b><br>Δ(a→b) %{x:.3f}, Δ(b→a) %{y:.3f}<br>" + colour_by +
                          " %{customdata:.3f}<extra>" + d + "</extra>"))
        tags.append(d)
    top = max(1.05, float(np.nanmax(plane[["delta_ab", "delta_ba"]].to_numpy())) + 0.05)
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", hoverinfo="skip",
                             line={"dash": "dash", "color": "#aaa", "width": 1}, showlegend=False))
    tags.append(None)
    fig.update_xaxes(title="Δ(a→b): how badly a's neighbours predict b's (0 = fully)",
                     range=[0, top], constrain="domain")
    fig.update_yaxes(title="Δ(b→a)", range=[0, top], scaleanchor="x", constrain="domain")
    fig.update_layout(coloraxis={"colorscale": "Viridis", "cmin": lo, "cmax": hi,
                                 "colorbar": {"title": {"text": f"{colour_by}<br>(higher = more "
                                                                "similar)"}}})
    _layout(fig, "information-imbalance plane", None, 560, showlegend=False)
    return dataset_picker(fig, tags)


def k_sweep_figure(sweep: pd.DataFrame, ks: Sequence[int]) -> go.Figure:
    """CKNNA of each pair against k (log axis, ticks at the swept k); a dataset dropdown."""
    fig = go.Figure()
    tags = []
    for d, sub in sweep.groupby("dataset", sort=False):
        for (a, b), grp in sub.groupby(["model_a", "model_b"], sort=False):
            fig.add_trace(go.Scatter(
                x=grp.k, y=grp.value, mode="lines+markers", name=f"{a} · {b}",
                hovertemplate=f"<b>{a} · {b}</b><br>k = %{{x}}<br>CKNNA %{{y:.3f}}"
                              f"<extra>{d}</extra>", marker={"size": 5}, line={"width": 1.3}))
            tags.append(d)
    ticks = sorted({int(k) for k in sweep.k})
    fig.update_xaxes(type="log", title="k (neighbours; log axis)", tickvals=ticks,
                     ticktext=[str(k) for k in ticks])
    fig.update_yaxes(title="CKNNA (higher = more similar)")
    _layout(fig, "CKNNA against k", None, 500,
            legend={"font": {"size": 10}, "title": {"text": "pair (click to hide)"}})
    return dataset_picker(fig, tags)


def distribution_figure(pairs: pd.DataFrame, metric: str) -> go.Figure:
    """Violins of ``metric`` over model pairs, one per dataset, in (blue) vs out (red) of
    distribution; points hover their pair."""
    fig = go.Figure()
    shown: set[bool] = set()
    for d, grp in pairs.groupby("dataset", sort=False):
        values = grp[metric].dropna()
        if values.empty:
            continue
        ood = bool(grp.ood.iloc[0])
        colour, fill = (("#d1495b", "rgba(209,73,91,0.35)") if ood else
                        ("#3b75af", "rgba(59,117,175,0.35)"))
        name = "out of distribution" if ood else "in distribution"
        fig.add_trace(go.Violin(
            x=[d] * len(values), y=values, name=name, legendgroup=name, showlegend=ood not in
            shown, line={"color": colour, "width": 1}, fillcolor=fill, points="all",
            pointpos=0, jitter=0.3, box={"visible": len(values) >= 4},
            marker={"size": 6, "color": colour, "line": {"width": 0.6, "color": "#222"}},
            spanmode="hard", text=(grp.model_a + " · " + grp.model_b)[values.index],
            hovertemplate="<b>%{text}</b><br>" + metric + " %{y:.3f}<extra>" + d + "</extra>"))
        shown.add(ood)
    fig.update_yaxes(title=f"{metric} ({'higher' if higher_is_similar(metric) else 'lower'} = "
                           "more similar)")
    fig.update_xaxes(tickangle=-30)
    return _layout(fig, f"{metric} over model pairs per dataset", None, 430,
                   violinmode="overlay", legend={"orientation": "h", "y": 1.08, "x": 0})


def dimension_figure(dimensions: pd.DataFrame, families: pd.Series,
                     palette: Mapping[str, str]) -> go.Figure:
    """Intrinsic dimension per model (points coloured by family) and dataset (x), one marker
    symbol per estimator."""
    ok = dimensions[np.isfinite(dimensions.value.astype(float))]
    fig = go.Figure()
    methods = list(dict.fromkeys(ok.method))
    fams = [str(families.get(m, "unknown")) for m in ok.model]
    ok = ok.assign(family=fams)
    for mi, method in enumerate(methods):
        for f, grp in ok[ok.method == method].groupby("family", sort=True):
            fig.add_trace(go.Scatter(
                x=grp.dataset, y=grp.value, mode="markers", name=f"{f} · {method}",
                legendgroup=f, text=grp.model,
                marker={"symbol": SYMBOLS[mi % len(SYMBOLS)], "size": 9,
                        "color": palette.get(f, "#ccc"), "line": {"width": 0.5, "color": "#333"}},
                hovertemplate="<b>%{text}</b> (" + f + ")<br>" + method +
                              ": %{y:.2f}<extra>%{x}</extra>"))
    fig.update_yaxes(title="intrinsic dimension")
    fig.update_xaxes(tickangle=-30)
    return _layout(fig, "intrinsic dimension per model and dataset", None, 460,
                   legend={"font": {"size": 10}}, scattermode="group", scattergap=0.4)


def leaderboard_figure(table: pd.DataFrame, references: Sequence[str], basis: str, dataset: str,
                       families: pd.Series, palette: Mapping[str, str]) -> go.Figure:
    """Calibrated alignment to the references with intervals, best at the top."""
    t = table.reset_index(drop=True)
    colours = [palette.get(str(families.get(m, "unknown")), "#ccc") for m in t.model]
    fig = go.Figure(go.Bar(
        x=t.score, y=t.model, orientation="h", marker={"color": colours,
                                                       "line": {"width": [2 if r else 0 for r in
                                                                          t.is_reference],
                                                                "color": "#222"}},
        error_x={"type": "data", "symmetric": False,
                 "array": (t.ci_high - t.score).clip(lower=0),
                 "arrayminus": (t.score - t.ci_low).clip(lower=0)},
        customdata=np.stack([t.ci_low, t.ci_high], axis=1),
        hovertemplate="<b>%{y}</b><br>calibrated %{x:.3f} [%{customdata[0]:.3f}, "
                      "%{customdata[1]:.3f}]<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title=f"calibrated {t.metric.iloc[0]} (0 = chance, 1 = identical)")
    return _layout(fig, f"{dataset}: alignment to {len(references)} references ({basis})", None,
                   170 + 24 * len(t))


def directed_figure(matrix: pd.DataFrame, metric: str, title: str,
                    constants: Mapping[str, object] | None = None) -> go.Figure:
    """A directed (M, M) matrix beside its asymmetry, in the matrix's own model order.

    Parameters
    ----------
    matrix : (M, M) DataFrame
        Cell (row a, column b) = score(a → b) of a directed metric (for GFRE / LFRE: the error of
        reconstructing b's features from a's).
    metric : str
        Metric id; its registry direction sets the left colour scale (dark = least similar).
    constants : mapping, optional
        Numbers shared by every cell (N, k), shown in the hover.

    Notes
    -----
    Right panel: Δ(a, b) = score(a → b) − score(b → a) = −Δ(b, a), on a diverging scale centred
    on 0 (zero diagonal).
    """
    from plotly.subplots import make_subplots

    models = [str(m) for m in matrix.index]
    raw = matrix.to_numpy(dtype=float)
    asym = raw - raw.T
    m = len(models)
    custom = np.empty((m, m, 3), dtype=object)
    for i in range(m):
        for j in range(m):
            custom[i, j] = (_fmt(float(raw[i, j])), _fmt(float(raw[j, i])),
                            _fmt(float(asym[i, j])))
    shared = "".join(f"<br>{k} = {v}" for k, v in (constants or {}).items())
    hover = (f"<b>%{{y}}</b> → <b>%{{x}}</b><br>{metric}(a → b): %{{customdata[0]}}"
             f"<br>{metric}(b → a): %{{customdata[1]}}<br>asymmetry (a → b) − (b → a): "
             f"%{{customdata[2]}}{shared}<extra></extra>")
    similar = higher_is_similar(metric)
    bound = float(np.nanmax(np.abs(asym))) if np.isfinite(asym).any() else 1.0
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.2,
                        subplot_titles=(f"{metric}(a → b), row a, column b",
                                        "asymmetry (a → b) − (b → a)"))
    fig.add_trace(go.Heatmap(
        z=raw, x=models, y=models, customdata=custom, hovertemplate=hover, xgap=1, ygap=1,
        colorscale="Viridis" if similar else "Viridis_r",
        colorbar={"title": {"text": f"{metric}<br>({'higher' if similar else 'lower'} = more "
                            "similar)", "side": "right"}, "x": 0.4, "len": 0.8,
                  "thickness": 12}), row=1, col=1)
    fig.add_trace(go.Heatmap(
        z=asym, x=models, y=models, customdata=custom, hovertemplate=hover, xgap=1, ygap=1,
        colorscale="RdBu_r", zmid=0.0, zmin=-bound or -1.0, zmax=bound or 1.0,
        colorbar={"title": {"text": "(a → b) − (b → a)", "side": "right"}, "x": 1.0,
                  "len": 0.8, "thickness": 12}), row=1, col=2)
    if m <= 12:
        fig.update_traces(texttemplate="%{z:.2f}", textfont={"size": 11})
    fig.update_xaxes(tickangle=-50, showgrid=False, title="b (reconstructed)")
    fig.update_yaxes(showgrid=False, autorange="reversed", title="a (source)")
    return _layout(fig, title, None, 300 + max(14, min(36, 480 // max(m, 1))) * m)


def element_figure(table: pd.DataFrame, metric: str, title: str) -> go.Figure:
    """Per-element alignment: model pairs (rows) against atom views (columns: all, then elements).

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`matteralign.analysis.atoms.element_scores` (element, n, metric, model_a,
        model_b, score); ``metric``'s rows are drawn, in a column for every element of the table
        (blank where ``metric`` has no score).
    metric : str
        A symmetric metric shows each unordered pair once (a · b), a directed one each ordered
        pair (a → b).
    """
    grid, counts = element_grid(table, metric)
    elements = list(grid.columns)
    pairs = list(grid.index)
    custom = np.array([[f"{int(counts[e]):,}" if np.isfinite(counts[e]) else "–"
                        for e in elements] for _ in pairs], dtype=object)
    similar = higher_is_similar(metric)
    fig = go.Figure(go.Heatmap(
        z=grid.to_numpy(dtype=float), x=elements, y=pairs, customdata=custom, xgap=1, ygap=1,
        colorscale="Viridis" if similar else "Viridis_r",
        hovertemplate=f"<b>%{{y}}</b><br>atoms: %{{x}} (N = %{{customdata}})<br>{metric}: "
                      "%{z:.4g}<extra></extra>",
        colorbar={"title": {"text": f"{metric}<br>({'higher' if similar else 'lower'} = more "
                            "similar)", "side": "right"}, "thickness": 14}))
    if len(pairs) * len(elements) <= 400:
        fig.update_traces(texttemplate="%{z:.2f}", textfont={"size": 10})
    fig.update_xaxes(title="atoms scored (all, or one element's)", showgrid=False, type="category")
    fig.update_yaxes(showgrid=False, autorange="reversed", type="category")
    return _layout(fig, title, None, 220 + 30 * len(pairs))


def atom_map_figure(amap: AtomMap, title: str) -> go.Figure:
    """The atom-level map: one model's atoms at a time (buttons), coloured by element.

    Parameters
    ----------
    amap : AtomMap
        Points (model, sample_id, atom_index, element, x, y) on axes shared by every model.
    """
    from plotly.colors import qualitative

    colours = qualitative.Dark24 + qualitative.Light24
    p = amap.points
    models = list(dict.fromkeys(p.model))
    elements = sorted(p.element.unique())
    colour = {e: colours[i % len(colours)] for i, e in enumerate(elements)}
    fig = go.Figure()
    owner = []
    for model in models:
        for element in elements:
            grp = p[(p.model == model) & (p.element == element)]
            if grp.empty:
                continue
            fig.add_trace(go.Scatter(
                x=grp.x.to_numpy(np.float32), y=grp.y.to_numpy(np.float32), mode="markers",
                name=element, legendgroup=element, visible=model == models[0],
                customdata=grp[["sample_id", "atom_index"]].to_numpy(dtype=object),
                hovertemplate="<b>%{customdata[0]}</b> atom %{customdata[1]} (" + element +
                              ")<extra>" + model + "</extra>",
                marker={"size": 6, "opacity": 0.8, "color": colour[element]}))
            owner.append(model)
    buttons = [{"label": model, "method": "update",
                "args": [{"visible": [o == model for o in owner]},
                         {"title.text": f"{title}: {model}"}]} for model in models]
    fig.update_layout(updatemenus=[{"type": "buttons", "direction": "right", "x": 0.0,
                                    "xanchor": "left", "y": 1.1, "yanchor": "bottom",
                                    "showactive": True, "buttons": buttons}])
    fig.update_xaxes(title=f"PC 1 of the anchor space ({100 * amap.explained[0]:.0f} %)")
    fig.update_yaxes(title=f"PC 2 ({100 * amap.explained[1]:.0f} %)")
    return _layout(fig, f"{title}: {models[0]}", None, 560,
                   legend={"title": {"text": "element"}})
