"""The report page and its figures: one embedded plotly.js, hover contents, captions that say
which direction is better, notes instead of empty figures, the paper-coverage header."""

from __future__ import annotations

import base64
import gzip
import json
import re

import numpy as np
import pandas as pd

from matteralign.report.html import ReportFigure, ReportSection, render_html
from matteralign.report.interactive import distribution_figure, heatmap_figure
from matteralign.report.palette import family_palette
from matteralign.report.paper_coverage import coverage_lines

MODELS = ["m-a", "m-b", "m-c"]


def _matrix(values) -> pd.DataFrame:
    return pd.DataFrame(values, index=MODELS, columns=MODELS, dtype=float)


def test_family_colours_do_not_depend_on_order_and_baselines_are_grey():
    one = family_palette(["orb", "mace", "baseline", "esm"])
    two = family_palette(["esm", "baseline", "mace", "orb", "orb"])
    assert one == two
    assert one["baseline"] == "#9E9E9E" and len(set(one.values())) == 4


def test_plotly_is_embedded_once_and_figures_packed_once():
    from plotly.offline import get_plotlyjs

    from matteralign.report.html import _json_script

    fig = heatmap_figure(_matrix(np.eye(3)), "cknna-k10", "t", pd.Series(dtype=object), {})
    figures = [ReportFigure(f"f{i}", "caption", plotly=fig.to_json()) for i in range(3)]
    figures.append(ReportFigure("evil", "c", plotly=json.dumps({"data": [],
                                                               "layout": {"title": "</script>"}})))
    page = render_html("t", ["h"], [ReportSection("matrices", "M", "intro", figures)], [])
    assert page.count("id='plotly-gz'") == 1 and page.count("<div class='plot'") == 4

    def unpacked(element: str) -> str:
        packed = re.search(rf"id='{element}'>([^<]+)</script>", page).group(1)
        return gzip.decompress(base64.b64decode(packed)).decode()

    assert unpacked("plotly-gz") == get_plotlyjs()
    payload = json.loads(unpacked("figures-gz"))
    assert set(payload) == {"plot-f0", "plot-f1", "plot-f2", "plot-evil"}
    assert payload["plot-evil"]["layout"]["title"] == "</script>"
    assert payload["plot-f0"]["data"][0]["type"] == "heatmap"
    assert page.count("</script>") == page.count("<script")
    assert "<\\/script>" in _json_script("x", json.dumps({"a": "</script>"}))
    assert not re.search(r"(src|href)=['\"]https?:", page)


def test_heatmap_hover_carries_the_statistics_given():
    raw = _matrix([[1, 0.5, 0.1], [0.5, 1, 0.2], [0.1, 0.2, 1]])
    stats = {"calibrated": raw * 0.5, "p (FDR-adjusted)": raw * 0 + 0.004}
    fig = heatmap_figure(raw, "cknna-k10", "t", pd.Series({"m-a": "x", "m-b": "x", "m-c": "y"}),
                         family_palette(["x", "y"]), stats, {"N": "120", "k": 10})
    heat = fig.data[0]
    assert "cknna-k10 (raw): %{customdata[2]}" in heat.hovertemplate
    assert "calibrated: %{customdata[3]}" in heat.hovertemplate
    assert "p (FDR-adjusted): %{customdata[4]}" in heat.hovertemplate
    assert "N = 120" in heat.hovertemplate and "k = 10" in heat.hovertemplate
    order = list(heat.x)
    i, j = order.index("m-a"), order.index("m-b")
    assert heat.customdata[i][j][2] == "0.500"
    assert heat.customdata[i][j][3] == "0.250" and heat.customdata[i][j][4] == "0.004"
    assert heat.colorbar.title.text.endswith("(higher = more similar)")
    # a dissimilarity keeps "similar" at the same end of the colour scale and says so
    ii = heatmap_figure(1 - raw, "ii-k1", "t", pd.Series(dtype=object), {})
    assert ii.data[0].colorscale != heat.colorscale
    assert "(lower = more similar)" in ii.data[0].colorbar.title.text


def test_no_ood_legend_without_ood_pairs():
    pairs = pd.DataFrame({"dataset": ["d"] * 3, "ood": [False] * 3, "model_a": ["a", "a", "b"],
                          "model_b": ["b", "c", "c"], "cknna-k10": [0.2, 0.4, 0.3]})
    fig = distribution_figure(pairs, "cknna-k10")
    assert {t.name for t in fig.data} == {"in distribution"}
    from matteralign.report.figures import distribution_plot

    static = distribution_plot(pairs, ["cknna-k10"])
    labels = [t.get_text() for t in static.axes[0].get_legend().get_texts()]
    assert labels == ["in distribution"]


def test_coverage_names_present_and_absent_paper_datasets_and_models():
    lines = coverage_lines({"qm9": 2000, "mlearn": 60}, ["mace-mp-0-small", "chgnet-0.3.0"])
    assert lines[0] == ("paper datasets present: QM9 (N = 2,000 of the paper's 50,000); absent: "
                        "OMat24, sAlex, OMol25, RCSB PDB; not in the paper: mlearn")
    assert lines[1].startswith("paper models present: 1 of 59 (MACE MP Small); 58 absent; 1 ")
    assert "N = 60 to 2,000" in lines[2]


def test_page_has_summary_header_captions_and_picker(toy_report):
    _, _, result, path = toy_report
    page = path.read_text()
    summary = page.split("<section id='summary'>")[1].split("</section>")[0]
    assert "Most aligned pairs" in summary and "alpha-large</b> · <b>alpha-small" in summary
    assert "Least aligned pairs" in summary and "Out of distribution: toy-ood" in summary
    assert "Best non-reference model per dataset" in summary and "Caveats" in summary
    assert "paper datasets present: none; absent: QM9" in page
    assert "lower ii-k1 = more similar" in page and "higher dcor = more similar" in page
    picker = json.loads(re.search(r"id='picker-data'>([^<]+)</script>", page).group(1)
                        .replace("<\\/", "</"))
    assert set(picker["rows"]) == {"toy-id", "toy-ood"}
    # calibrated scores, the mean of the two orders of the asymmetric CKNNA
    cal = result.calibrated_matrices["toy-id"]["cknna-k10"]
    both = (cal.loc["alpha-large", "alpha-small"] + cal.loc["alpha-small", "alpha-large"]) / 2
    assert picker["rows"]["toy-id"]["alpha-large"]["alpha-small"] == round(float(both), 4)
    assert "calibrated cknna-k10" in summary and "false-discovery rate" in summary
    assert "class=\"dataframe sortable\"" in page


def test_too_little_data_gives_a_note_instead_of_a_figure(toy_report, tmp_path):
    import dataclasses

    from matteralign.analysis.study import ANALYSES
    from matteralign.report import build_report

    config, out, result, _ = toy_report
    res = result.convergence[("toy-id", "cknna-k10")]
    two_models = dataclasses.replace(res, table=res.table.head(2))
    empty = pd.DataFrame()
    thin = dataclasses.replace(
        result, matrices={}, calibrated=empty, calibrated_matrices={}, condensed={},
        composition_pairs=empty, composition_models=empty,
        convergence={("toy-id", "cknna-k10"): two_models}, convergence_calibrated={},
        pairs=empty, in_out=empty, in_out_matched=empty, distribution_labels=empty,
        dimensions=empty, k_sweep=empty, k_stability=empty, trees={}, maps=[],
        layer_rows=empty, layer_summary=empty, leaderboards={},
        notes={k: [] for k in ANALYSES})
    page = build_report(thin, config, out, tmp_path).read_text()
    section = page.split("<section id='convergence'")[1].split("</section>")[0]
    assert "<figure" not in section
    assert "toy-id, cknna-k10: 2 model(s) with energies; a convergence plot needs at least 3" \
        in section
    assert "id='plotly-gz'" not in page          # nothing interactive: no plotly.js either
    summary = page.split("<section id='summary'>")[1].split("</section>")[0]
    assert "no permutation calibration" in summary
