"""Distorted QM9 molecules with GFN2-xTB labels."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.data import ood_molecules, qm9


@pytest.fixture(scope="module")
def distorted():
    return ood_molecules.build(n=6, seed=0)


def test_rattled_copies_of_qm9(distorted):
    assert len(distorted) == 6
    assert distorted.card.out_of_distribution
    base = qm9.build(n=3, seed=1)
    first = distorted[f"{base.ids[0]}-rattle0.1"]
    shift = first.atoms.positions - base.samples[0].atoms.positions
    assert 0.03 < shift.std() < 0.2
    assert first.smiles == base.samples[0].smiles


def test_xtb_labels_present(distorted):
    pytest.importorskip("tblite")
    labelled = [s for s in distorted if "xtb_energy" in s.labels]
    assert len(labelled) >= 5
    for sample in labelled:
        assert sample.atoms.arrays["xtb_forces"].shape == (len(sample.atoms), 3)
        assert sample.labels["xtb_energy"] < 0
    assert distorted.fingerprint() == ood_molecules.build(n=6, seed=0).fingerprint()
    assert np.isfinite([s.labels["xtb_energy"] for s in labelled]).all()
