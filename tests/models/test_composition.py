"""Tests of the element-composition baseline."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from matteralign.data.sample import Sample
from matteralign.errors import SampleError
from matteralign.models.registry import create_adapter
from matteralign.models.validate import validate_adapter


@pytest.fixture(scope="module")
def adapter():
    model = create_adapter("composition")
    model.load()
    return model


def test_validate_adapter(adapter) -> None:
    samples = [Sample(id=n, atoms=molecule(n)) for n in ("H2O", "CH4", "C6H6")]
    report = validate_adapter(adapter, samples)
    assert "permutation-invariance[composition]" in report.passed


def test_counts_fractions_and_presence(adapter) -> None:
    batch = [molecule("C6H6"), bulk("NaCl", "rocksalt", a=5.64)]
    counts = adapter.embed(batch, ["composition"], "sum").pooled["composition"]
    assert counts.shape == (2, 94)
    assert counts[0, 0] == 6 and counts[0, 5] == 6 and counts[0].sum() == 12
    assert counts[1, 10] == 1 and counts[1, 16] == 1  # Na (Z=11), Cl (Z=17)
    fractions = adapter.embed(batch, ["composition"], "mean").pooled["composition"]
    np.testing.assert_allclose(fractions[0, [0, 5]], [0.5, 0.5])
    water = adapter.embed([molecule("H2O")], ["composition"], "per_element_mean")
    np.testing.assert_allclose(water.pooled["composition"][0, [0, 7]], [0.5, 0.5])


def test_element_beyond_94_fails_naming_it(adapter) -> None:
    with pytest.raises(SampleError, match="Am"):
        adapter.prepare(Sample(id="am", atoms=Atoms("Am", positions=[[0, 0, 0]])))
