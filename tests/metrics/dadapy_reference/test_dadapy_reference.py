"""Our information imbalance and TwoNN against DADApy 0.3.4's numbers, stored by make_reference.py
(DADApy needs numpy < 2 and cannot be installed beside this project)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from matteralign.metrics import information_imbalance, intrinsic_dimension
from tests.metrics.conftest import rel_close

REF = np.load(Path(__file__).with_name("reference.npz"))


def test_reference_was_made_by_dadapy():
    meta = json.loads(str(REF["meta"]))
    assert meta["dadapy"] == "0.3.4" and meta["numpy"].startswith("1.")


@pytest.mark.parametrize("k", [1, 3])
def test_information_imbalance_equals_dadapy_full_n(k):
    x, y = REF["x"], REF["y"]
    # both are 2 * (sum of ranks) / (N^2 k): sums of integers, so equal to rounding
    assert rel_close(information_imbalance(x, y, k), float(REF[f"ii_xy_k{k}"]), 1e-12)
    assert rel_close(information_imbalance(y, x, k), float(REF[f"ii_yx_k{k}"]), 1e-12)


@pytest.mark.parametrize("name", ["manifold", "y"])
def test_twonn_equals_dadapy(name):
    # DADApy fits the slope with scipy's curve_fit (iterative); we use the closed form. The
    # iterative fit stops within ~4e-10 relative of the exact least-squares slope (measured on
    # "y"; 1e-11 on "manifold"), hence 1e-9.
    assert rel_close(intrinsic_dimension(REF[name], "twonn"), float(REF[f"twonn_{name}"]), 1e-9)
