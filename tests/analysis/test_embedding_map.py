"""Two-dimensional maps of one model's embeddings of several datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.embedding_map import embedding_map, project_2d


def test_pca_of_a_plane_in_five_dimensions_preserves_its_distances():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(80, 2)) * [3.0, 1.0]
    basis, _ = np.linalg.qr(rng.normal(size=(5, 2)))
    coords, method = project_2d(plane @ basis.T + 7.0, "pca")
    assert method == "pca"
    d_in = np.linalg.norm(plane[:, None] - plane[None], axis=-1)
    d_out = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.testing.assert_allclose(d_out, d_in, atol=1e-9)


def test_map_joins_datasets_and_carries_energy_errors():
    rng = np.random.default_rng(1)
    a = (["a0", "a1", "a2", "a3"], rng.normal(size=(4, 3)))
    b = (["b0", "b1", "b2"], rng.normal(size=(3, 3)) + 5)
    errors = {"A": pd.Series([0.1, 0.2], index=["a1", "a3"])}
    emap = embedding_map("m", {"A": a, "B": b}, errors)
    p = emap.points
    assert list(p.dataset) == ["A"] * 4 + ["B"] * 3
    assert p.set_index("id").energy_error["a3"] == pytest.approx(0.2)
    assert p.energy_error.isna().sum() == 5
    # the two datasets separate along the first axis
    assert abs(p[p.dataset == "A"].x.mean() - p[p.dataset == "B"].x.mean()) > 3


def test_different_widths_are_an_error_naming_the_model():
    with pytest.raises(ValueError, match="'m'"):
        embedding_map("m", {"A": (["a"] * 3, np.ones((3, 2))), "B": (["b"] * 3, np.ones((3, 4)))})


@pytest.mark.slow
def test_umap_separates_two_clusters():
    rng = np.random.default_rng(2)
    x = np.vstack([rng.normal(size=(60, 8)), rng.normal(size=(60, 8)) + 6])
    coords, method = project_2d(x, "umap")
    assert method == "umap"
    assert np.linalg.norm(coords[:60].mean(0) - coords[60:].mean(0)) > 3
