"""Jensen–Shannon distances and the neighbour-joining tree (paper §4.9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.tree import alignment_tree, jsd_distances, neighbour_joining


def clades(tree) -> set[frozenset[str]]:
    return {frozenset(t.name for t in c.get_terminals()) for c in tree.find_clades()}


def test_nj_recovers_an_additive_tree_exactly():
    # ((a:1, b:2):3, c:4, d:5): path lengths are additive
    names = ["a", "b", "c", "d"]
    d = np.array([[0, 3, 8, 9], [3, 0, 9, 10], [8, 9, 0, 9], [9, 10, 9, 0]], float)
    tree = neighbour_joining(pd.DataFrame(d, names, names))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i < j:
                assert tree.distance(a, b) == pytest.approx(d[i, j])


def test_jsd_distances_are_symmetric_bounded_and_zero_for_identical_profiles():
    c = pd.DataFrame([[1, 0.9, 0.1], [0.9, 1, 0.1], [0.1, 0.1, 1]], list("abc"), list("abc"))
    d = jsd_distances(c)
    np.testing.assert_allclose(d, d.T)
    assert (np.diag(d) == 0).all() and (d.to_numpy() <= 1).all()
    assert d.loc["a", "b"] < d.loc["a", "c"]
    same = jsd_distances(pd.DataFrame(np.ones((3, 3)), list("abc"), list("abc")))
    np.testing.assert_allclose(same, 0, atol=1e-12)


def test_tree_on_a_block_matrix_recovers_the_blocks_and_leaves_out_random():
    rng = np.random.default_rng(0)
    names = ["a1", "a2", "a3", "b1", "b2", "b3", "random-noise"]
    c = np.full((7, 7), 0.1)
    c[:3, :3] = 0.8
    c[3:6, 3:6] = 0.7
    c[:6, :6] += rng.uniform(0, 0.03, (6, 6))
    c = (c + c.T) / 2
    np.fill_diagonal(c, 1)
    result = alignment_tree(pd.DataFrame(c, names, names), left_out=["random-noise"])
    assert result.left_out == ["random-noise"]
    assert "random-noise" not in result.newick and result.newick.endswith(";")
    found = clades(result.tree)
    every = frozenset(names[:6])
    for block in (frozenset(names[:3]), frozenset(names[3:6])):
        assert block in found or (every - block) in found
