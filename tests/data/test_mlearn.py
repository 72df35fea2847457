"""mlearn from the shared data folder: per-atom energies become totals, groups are inferred."""

from __future__ import annotations

from collections import Counter

import pytest

from matteralign.data import mlearn
from matteralign.errors import DatasetError


@pytest.fixture(scope="module")
def dataset(shared_data):
    return mlearn.build(data_root=shared_data)


def test_counts_and_units(dataset):
    assert len(dataset) == 1730
    counts = Counter(sample.id.split("-")[1] for sample in dataset)
    assert counts == {"Cu": 324, "Ge": 278, "Li": 299, "Mo": 240, "Ni": 325, "Si": 264}
    for sample in dataset:
        per_atom = sample.labels["energy_per_atom"]
        assert sample.labels["energy"] == pytest.approx(per_atom * len(sample.atoms))
    cu = [s.labels["energy_per_atom"] for s in dataset if s.id.startswith("mlearn-Cu-")]
    assert -4.102 < min(cu) and max(cu) < -3.514  # range stated for the source file


def test_groups_are_inferred(dataset):
    groups = Counter(sample.atoms.info["group"] for sample in dataset)
    assert set(groups) <= set(mlearn.GROUPS)
    assert groups["surface"] > 50 and groups["vacancy"] > 100 and groups["aimd"] > 500
    surface = next(s for s in dataset if s.atoms.info["group"] == "surface")
    assert mlearn._vacuum_gap(surface.atoms) > mlearn.VACUUM_GAP


def test_missing_data_root_says_how_to_fix(tmp_path):
    with pytest.raises(DatasetError, match="--data-root"):
        mlearn.build(data_root=None)
    with pytest.raises(DatasetError, match="materials/mlearn/Cu.json.gz"):
        mlearn.build(data_root=tmp_path)
