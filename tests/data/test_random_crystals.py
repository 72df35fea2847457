"""pyxtal random crystals of unusual elements."""

from __future__ import annotations

import pytest

pytest.importorskip("pyxtal")

from matteralign.data import random_crystals  # noqa: E402


def test_random_crystals_are_seeded_and_unusual():
    first = random_crystals.build(n=3, seed=5)
    assert len(first) == 3
    assert first.card.out_of_distribution
    for sample in first:
        assert set(sample.atoms.get_chemical_symbols()) & set(random_crystals.UNUSUAL_ELEMENTS)
        assert sample.atoms.pbc.all()
    assert random_crystals.build(n=3, seed=5).fingerprint() == first.fingerprint()
