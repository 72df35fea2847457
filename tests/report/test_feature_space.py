"""The report's directed heatmaps with their asymmetry, per-element views and atom map."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matteralign.report.interactive import directed_figure, element_figure

MODELS = ["m-a", "m-b", "m-c"]


def _array(value) -> np.ndarray:
    """A plotly JSON array: a list, or the typed-array form {'dtype', 'bdata', 'shape'}."""
    if isinstance(value, dict):
        shape = [int(s) for s in str(value["shape"]).split(",")] if "shape" in value else [-1]
        return np.frombuffer(base64.b64decode(value["bdata"]), value["dtype"]).reshape(shape)
    return np.array(value, dtype=float)


def _payload(page: str) -> dict:
    packed = re.search(r"id='figures-gz'>([^<]+)</script>", page).group(1)
    return json.loads(gzip.decompress(base64.b64decode(packed)))


def test_directed_figure_shows_the_matrix_and_its_antisymmetric_part():
    values = np.array([[0.0, 0.2, 0.7], [0.5, 0.0, 0.4], [0.6, 0.1, 0.0]])
    fig = json.loads(directed_figure(pd.DataFrame(values, MODELS, MODELS), "gfre", "t").to_json())
    left, right = (_array(trace["z"]) for trace in fig["data"])
    np.testing.assert_array_equal(left, values)
    expected = np.array([[0, 0.2 - 0.5, 0.7 - 0.6], [0.5 - 0.2, 0, 0.4 - 0.1],
                         [0.6 - 0.7, 0.1 - 0.4, 0]])
    np.testing.assert_allclose(right, expected, atol=1e-15)
    assert fig["data"][1]["zmid"] == 0.0
    assert "(lower = more similar)" in fig["data"][0]["colorbar"]["title"]["text"]


def test_element_figure_places_each_score_at_its_pair_and_element():
    rows = [("all", 30, "dcor", "m-a", "m-b", 0.4), ("all", 30, "dcor", "m-b", "m-a", 0.4),
            ("O", 10, "dcor", "m-a", "m-b", 0.9), ("O", 10, "dcor", "m-b", "m-a", 0.9),
            ("H", 20, "dcor", "m-a", "m-b", 0.1), ("H", 20, "dcor", "m-b", "m-a", 0.1)]
    rows.append(("N", 5, "gfre", "m-a", "m-b", 0.3))  # an element only another metric scored
    table = pd.DataFrame(rows, columns=["element", "n", "metric", "model_a", "model_b", "score"])
    fig = json.loads(element_figure(table, "dcor", "t").to_json())["data"][0]
    assert fig["x"] == ["all", "H", "N", "O"] and fig["y"] == ["m-a · m-b"]  # symmetric: once
    np.testing.assert_array_equal(_array(fig["z"]), [[0.4, 0.1, np.nan, 0.9]])
    assert [row for row in fig["customdata"]] == [["30", "20", "–", "10"]]


@pytest.mark.slow
def test_atom_level_study_report_shows_the_alignment_values(tmp_path: Path):
    """Two MLIPs at atom level on a built-in crystal set: the report's directed, per-element and
    map figures carry exactly the matrices align wrote under alignment/."""
    from matteralign.config import StudyConfig
    from matteralign.metrics import get_metric
    from matteralign.run.study import run_study

    config = StudyConfig.model_validate({
        "name": "atoms", "datasets": [{"name": "crystals-perturbed", "n": 16}],
        "models": [{"id": "chgnet-0.3.0"}, {"id": "sevennet-0"}], "layers": "last",
        "level": "atoms", "atoms": {"per_structure": 6, "seed": 1},
        "metrics": ["cknna-k5", "gfre", "lfre-k8"], "shard_size": 8, "device": "cpu"})
    out = tmp_path / "out"
    run_study(config, out)
    page = (out / "report.html").read_text()
    sections = {key: page.split(f"<section id='{key}'")[1].split("</section>")[0]
                for key in ("directed", "atoms")}
    payload = _payload(page)
    dataset = "crystals-perturbed@atoms"
    slug = "crystals-perturbed_atoms"
    alignment = out / "alignment"
    for metric in ("gfre", "lfre-k8"):
        assert f"fig-directed-{slug}-{metric}" in sections["directed"]
        matrix = pd.read_parquet(alignment / dataset / f"{metric}.parquet")
        left, right = (_array(t["z"]) for t in payload[f"plot-directed-{slug}-{metric}"]["data"])
        np.testing.assert_array_equal(left, matrix.to_numpy())
        np.testing.assert_array_equal(right, matrix.to_numpy() - matrix.to_numpy().T)
    views = {p.name[len(dataset) + 1: -1]: p for p in alignment.glob(f"{dataset}[[]*]")}
    assert len(views) >= 3  # several elements
    shown = 0
    for metric in ("cknna-k5", "gfre", "lfre-k8"):
        assert f"fig-elements-{slug}-{metric}" in sections["atoms"]
        trace = payload[f"plot-elements-{slug}-{metric}"]["data"][0]
        z = _array(trace["z"])
        for j, element in enumerate(trace["x"]):
            path = (alignment / dataset if element == "all" else views[element]) / \
                f"{metric}.parquet"
            if not path.exists():  # too few atoms of this element for the metric
                assert np.isnan(z[:, j]).all()
                continue
            matrix = pd.read_parquet(path)
            for i, pair in enumerate(trace["y"]):
                a, b = pair.split(" · " if get_metric(metric).symmetric else " → ")
                np.testing.assert_array_equal(z[i, j], matrix.loc[a, b],  # NaN shown as NaN
                                              err_msg=f"{metric} {element} {pair}")
                shown += 1
    assert shown > 10
    assert f"fig-atom-map-{slug}" in sections["atoms"]
    points = pd.read_parquet(out / "tables" / f"atom-map-{slug}.parquet")
    n_atoms = json.loads((alignment / dataset / "scores.json").read_text())["n"]
    assert len(points) == 2 * n_atoms and set(points.model) == {"chgnet-0.3.0", "sevennet-0"}
    assert "class='note'" not in sections["directed"]
