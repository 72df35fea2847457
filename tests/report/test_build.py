"""The report of a synthetic study whose answers are known: every analysis, every file."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.study import ANALYSES


def test_every_analysis_has_results(toy_report):
    _, _, result, _ = toy_report
    assert set(result.matrices) == {"toy-id", "toy-ood"}
    assert set(result.matrices["toy-id"]) == {"cknna-k10", "dcor", "ii-k1"}
    assert {d for d, _ in result.convergence} == {"toy-id", "toy-ood"}
    assert not result.pairs.empty and not result.in_out.empty
    assert not result.dimensions.empty
    assert not result.k_sweep.empty and not result.k_stability.empty
    assert set(result.trees) == {"toy-id", "toy-ood"}
    assert len(result.maps) == 1
    assert not result.layer_summary.empty
    assert set(result.leaderboards) == {"toy-id", "toy-ood"}


def test_matrices_show_the_planted_structure(toy_report):
    _, _, result, _ = toy_report
    m = result.matrices["toy-id"]["cknna-k10"]
    assert m.loc["alpha-large", "alpha-small"] > 0.5
    assert m.loc["alpha-large", "alpha-small"] > m.loc["alpha-large", "beta-2"]
    assert m.loc["random-noise"].drop("random-noise").abs().max() < 0.15
    cond = result.condensed["toy-id"]
    assert list(cond.index) == ["alpha", "beta", "random"]
    assert cond.loc["alpha", "alpha"] < 1.0 and cond.loc["random", "random"] == pytest.approx(1)


def test_energy_mae_and_convergence(toy_report):
    _, _, result, _ = toy_report
    mae = result.energy[result.energy.dataset == "toy-id"].set_index("model").mae
    assert mae["alpha-large"] == pytest.approx(0.0, abs=1e-9)   # exact up to composition
    assert mae["alpha-large"] < mae["alpha-small"] < mae["beta-2"]
    res = result.convergence[("toy-id", "cknna-k10")]
    assert res.reference == "alpha-large"
    spearman = next(c for c in res.correlations if c.method == "spearman")
    assert spearman.value == pytest.approx(-1.0) and spearman.n == 3


def test_tree_leaderboard_map_and_layers(toy_report):
    _, _, result, _ = toy_report
    tree = result.trees["toy-id"]
    assert tree.left_out == ["random-noise"]
    clades = {frozenset(t.name for t in c.get_terminals()) for c in tree.tree.find_clades()}
    assert frozenset({"alpha-large", "alpha-small"}) in clades
    table, refs, basis = result.leaderboards["toy-id"]
    assert basis == "lowest energy MAE" and refs[0] == "alpha-large" and len(refs) == 3
    assert table.model.iloc[-1] == "random-noise" and abs(table.score.iloc[-1]) < 0.1
    emap = result.maps[0]
    assert emap.model == "alpha-large" and len(emap.points) == 240
    assert emap.points.energy_error.notna().all()
    summary = result.layer_summary[result.layer_summary.dataset == "toy-id"]
    assert len(summary) == 10
    pair = summary[(summary.model_a == "alpha-large") & (summary.model_b == "alpha-small")].iloc[0]
    assert pair.best >= pair["last"] >= pair.matched_depth - 1e-12 or pair.best >= pair["last"]


def test_files_are_written_and_the_page_is_self_contained(toy_report):
    _, out, _, path = toy_report
    page = path.read_text()
    assert path == out / "report.html"
    figures = re.findall(r"<figure id='fig-([^']+)'", page)
    assert len(figures) >= 15
    static = re.findall(r"href='figures/([^']+)\.png'", page)
    assert len(static) >= 15
    for fig in static:
        png = (out / "figures" / f"{fig}.png").read_bytes()
        assert int.from_bytes(png[16:20], "big") <= 2000, fig      # PNG width in pixels
        assert (out / "figures" / f"{fig}.svg").stat().st_size > 1000
    for key in ANALYSES:
        section = page.split(f"<section id='{key}'")[1].split("</section>")[0]
        assert "<figure" in section, key
    assert not re.search(r"(src|href)=['\"]https?:", page)
    assert "tables/" in page and "Run metadata" in page and "Failed samples (2" in page
    tables = out / "tables"
    pd.testing.assert_frame_equal(pd.read_parquet(tables / "energy-mae.parquet"),
                                  pd.read_csv(tables / "energy-mae.csv"), check_dtype=False)
    assert (tables / "tree-toy-id.nwk").read_text().strip().endswith(";")
    mat = pd.read_parquet(tables / "matrix-toy-id-cknna-k10.parquet").set_index("model_a")
    assert np.allclose(np.diag(mat.to_numpy(dtype=float)), 1.0)
