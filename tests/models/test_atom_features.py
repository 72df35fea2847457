"""Tests of models/atom_features.py: segment index and pooled per-atom features of a batch."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import molecule

from matteralign.models.atom_features import pooled_structures_output, segment_index


def test_segment_index() -> None:
    assert segment_index([3, 2]).tolist() == [0, 0, 0, 1, 1]


def test_pooled_structures_output_reads_counts_and_numbers_off_the_atoms() -> None:
    water, methane = molecule("H2O"), molecule("CH4")  # atoms O H H, then C H H H H
    rows = torch.arange(8, dtype=torch.float64)[:, None]
    energy = np.array([-1.0, -2.0])
    out = pooled_structures_output({"x": rows}, [water, methane], "sum", True, energy)
    np.testing.assert_array_equal(out.pooled["x"], [[3.0], [25.0]])
    assert [part.ravel().tolist() for part in out.per_item["x"]] == [[0, 1, 2], [3, 4, 5, 6, 7]]
    assert out.energy is energy
    by_element = pooled_structures_output({"x": rows}, [water, methane], "per_element_mean")
    # water: (O 0 + mean of H 1, 2) / 2; methane: (C 3 + mean of H 4..7) / 2
    np.testing.assert_allclose(by_element.pooled["x"], [[0.75], [4.25]])
    assert by_element.per_item is None
