"""Elemental crystals: ASE reference states with seeded strains and rattles."""

from __future__ import annotations

import numpy as np

from matteralign.data import elemental_crystals


def test_variants_and_determinism():
    dataset = elemental_crystals.build()
    assert len(dataset) == 60 * elemental_crystals.VARIANTS_PER_ELEMENT
    assert "Cu-fcc-0" in dataset.ids
    reference = dataset["Cu-fcc-0"].atoms
    strained = dataset["Cu-fcc-3"].atoms
    ratio = strained.get_volume() / reference.get_volume()
    assert abs(ratio - 1) < 3.5 * elemental_crystals.STRAIN_RANGE
    assert not np.allclose(reference.positions, strained.positions)
    assert elemental_crystals.build(n=20, seed=1).fingerprint() == (
        elemental_crystals.build(n=20, seed=1).fingerprint()
    )
