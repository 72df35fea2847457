"""Atom-level views: per-element scores read back from alignment/, and the atom map."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from matteralign.analysis.atoms import atom_map, element_scores, score_atoms
from matteralign.analysis.matrices import write_dataset_scores
from matteralign.store.embedding_store import StoredEmbeddings

ELEMENTS = ("C", "H", "O")


def _atoms(model: str, values: np.ndarray) -> StoredEmbeddings:
    ids = [f"s{i // 4:03d}#{i % 4}:{ELEMENTS[i % 3]}" for i in range(len(values))]
    return StoredEmbeddings(model, "toy@atoms", "last", ids, values, None, [])


def _models(n: int = 90) -> list[StoredEmbeddings]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)) + 3.0 * np.eye(3, 6)[np.arange(n) % 3]  # one offset per element
    q, _ = np.linalg.qr(rng.normal(size=(9, 9)))
    rotated = 2.5 * np.hstack([x, np.zeros((n, 3))]) @ q  # wider, rotated, scaled copy
    noisy = x + rng.normal(scale=1.0, size=x.shape)
    return [_atoms("a", x), _atoms("b", rotated), _atoms("c", noisy)]


def test_element_scores_are_the_matrices_align_wrote(tmp_path):
    stored = _models()
    views = score_atoms(stored, "toy@atoms", ["cknna-k5", "gfre"], preprocess=())
    for scores in views.values():
        write_dataset_scores(tmp_path, scores)
    table = element_scores(tmp_path, "toy@atoms")
    assert set(table.element) == {"all", *ELEMENTS}
    for element, scores in views.items():
        for metric, matrix in scores.matrices.items():
            rows = table[(table.element == element) & (table.metric == metric)]
            assert len(rows) == 6 and (rows.n == scores.n).all()  # 3 models, ordered pairs
            for row in rows.itertuples():
                assert row.score == matrix.loc[row.model_a, row.model_b]
    assert element_scores(tmp_path, "other@atoms").empty


def test_atom_map_puts_an_atom_at_one_place_for_models_equal_up_to_rotation_and_scale():
    stored = _models()
    amap = atom_map(stored, k=12)
    points = amap.points
    assert len(points) == 3 * 90 and list(points.columns) == [
        "model", "sample_id", "atom_index", "element", "x", "y"]
    a, b, c = (points[points.model == m][["x", "y"]].to_numpy() for m in "abc")
    np.testing.assert_allclose(a, b, atol=1e-10)  # same cosines to the same anchors
    assert np.abs(a - c).max() > 0.1
    # reference: the cosines to the anchors, by scipy, of the stacked models, projected by PCA
    idx = [stored[0].ids.index(i) for i in amap.anchors]
    z = np.vstack([1 - cdist(s.values, s.values[idx], "cosine") for s in stored])
    centred = z - z.mean(0)
    _, sv, _ = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.var(points[["x", "y"]].to_numpy(), axis=0),
                               sv[:2] ** 2 / len(z), rtol=1e-8)
    np.testing.assert_allclose(amap.explained, sv[:2] ** 2 / (sv**2).sum(), rtol=1e-8)
    assert pd.Series(points.element).isin(ELEMENTS).all()


def test_atom_map_subsamples_with_a_seed():
    stored = _models(90)
    one, two = atom_map(stored, k=8, max_atoms=40, seed=3), atom_map(stored, k=8, max_atoms=40,
                                                                      seed=3)
    assert len(one.points) == 3 * 40
    pd.testing.assert_frame_equal(one.points, two.points)
