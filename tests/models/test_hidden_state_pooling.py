"""Tests of models/hidden_state_pooling.py on a hand-made padded batch."""

from __future__ import annotations

import numpy as np
import torch

from matteralign.models.hidden_state_pooling import pooled_hidden_output

# Two sequences, T = 4, D = 2: sequence 0 has tokens 1..2 of its own, sequence 1 tokens 1..3;
# token 0 is a start/CLS token, padding follows.
HIDDEN = torch.arange(16, dtype=torch.float32).reshape(2, 4, 2)
MASK = torch.tensor([[False, True, True, False], [False, True, True, True]])


def test_mean_cls_last_and_rows_of_every_layer() -> None:
    layers = (("a", HIDDEN), ("b", 2 * HIDDEN))
    mean = pooled_hidden_output(iter(layers), MASK, [2, 3], "mean", per_item=True)
    np.testing.assert_array_equal(mean.pooled["a"], [[3.0, 4.0], [12.0, 13.0]])
    np.testing.assert_array_equal(mean.pooled["b"], [[6.0, 8.0], [24.0, 26.0]])
    np.testing.assert_array_equal(mean.per_item["a"][0], [[2.0, 3.0], [4.0, 5.0]])
    assert [rows.shape for rows in mean.per_item["b"]] == [(2, 2), (3, 2)]
    cls = pooled_hidden_output(iter(layers[:1]), MASK, [2, 3], "cls")
    np.testing.assert_array_equal(cls.pooled["a"], [[0.0, 1.0], [8.0, 9.0]])
    assert cls.per_item is None
    last = pooled_hidden_output(iter(layers[:1]), MASK, [2, 3], "last")
    np.testing.assert_array_equal(last.pooled["a"], [[4.0, 5.0], [14.0, 15.0]])


def test_mean_mask_changes_the_mean_only() -> None:
    with_start = MASK.clone()
    with_start[:, 0] = True
    out = pooled_hidden_output(iter([("a", HIDDEN)]), MASK, [2, 3], "mean", True, with_start)
    np.testing.assert_array_equal(out.pooled["a"], [[2.0, 3.0], [11.0, 12.0]])
    assert [rows.shape for rows in out.per_item["a"]] == [(2, 2), (3, 2)]
    last = pooled_hidden_output(iter([("a", HIDDEN)]), MASK, [2, 3], "last", False, with_start)
    np.testing.assert_array_equal(last.pooled["a"], [[4.0, 5.0], [14.0, 15.0]])
