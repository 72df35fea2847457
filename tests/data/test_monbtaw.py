"""MoNbTaW alloys from the shared data folder."""

from __future__ import annotations

import pytest

from matteralign.data import monbtaw


@pytest.fixture(scope="module")
def multinary(shared_data):
    return monbtaw.build_multinary(data_root=shared_data)


def test_multinary_test_cells(multinary):
    assert len(multinary) == 16 + 240
    assert multinary.name == "monbtaw-multinary"
    assert multinary.card.out_of_distribution
    quaternary = [s for s in multinary if s.atoms.info["group"] == "test-quaternary"]
    assert len(quaternary) == 16
    assert all(set(s.atoms.get_chemical_symbols()) == {"Mo", "Nb", "Ta", "W"} for s in quaternary)
    assert all(len(s.atoms) == 128 for s in quaternary)


def test_total_energy_of_first_mo_aimd_frame(shared_data):
    aimd = monbtaw.build(data_root=shared_data, groups=("aimd",))
    first = aimd["monbtaw-Mo_AIMD-000"]
    assert len(first.atoms) == 54
    assert first.labels["energy"] == pytest.approx(-583.01041526)
    assert first.labels["energy_per_atom"] == pytest.approx(-583.01041526 / 54)
    assert first.atoms.arrays["forces"].shape == (54, 3)
    assert len(aimd) == 800
