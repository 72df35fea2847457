"""Seeded, stratified atom samples and their row keys."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from matteralign.data.atom_sample import (
    AtomSampling,
    atom_row_id,
    atom_row_ids,
    parse_atom_row_id,
    sample_atoms,
)
from matteralign.data.sample import Sample
from matteralign.errors import DatasetError


def _structures(n: int = 30) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        symbols = ["O"] + ["H"] * (2 + i % 5) + ["C"] * (i % 3)
        atoms = Atoms(symbols, positions=rng.normal(size=(len(symbols), 3)) * 3)
        atoms.info["subset"] = "bulk" if i % 2 else "surface"
        out.append(Sample(id=f"s{i}", atoms=atoms))
    return out


def test_plan_is_seeded_and_depends_on_the_seed():
    samples = _structures()
    a = sample_atoms(samples, AtomSampling(per_structure=3, seed=4))
    b = sample_atoms(samples, AtomSampling(per_structure=3, seed=4))
    c = sample_atoms(samples, AtomSampling(per_structure=3, seed=5))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_cap_per_structure_spreads_over_elements():
    samples = _structures()
    plan = sample_atoms(samples, AtomSampling(per_structure=2, seed=1))
    for sample in samples:
        chosen = plan[sample.id]
        symbols = np.asarray(sample.atoms.get_chemical_symbols())
        assert len(chosen) == 2 and len(set(symbols[chosen])) == 2  # two elements, not 2 H
        assert "O" in symbols[chosen] or "C" in symbols[chosen]


def test_cap_per_stratum_counts_subset_and_element():
    samples = _structures()
    plan = sample_atoms(samples, AtomSampling(per_structure=None, per_stratum=4, seed=2))
    counts: dict[tuple[str, str], int] = {}
    for sample in samples:
        for i in plan.get(sample.id, []):
            key = (sample.atoms.info["subset"], sample.atoms.get_chemical_symbols()[i])
            counts[key] = counts.get(key, 0) + 1
    assert counts == {(s, e): 4 for s in ("bulk", "surface") for e in ("H", "O", "C")}


def test_row_ids_round_trip():
    sample = _structures(1)[0]
    ids = atom_row_ids(sample, np.array([0, 2]))
    assert ids == ["s0#0:O", "s0#2:H"]
    assert parse_atom_row_id(atom_row_id("mp-1#weird", 7, "Si")) == ("mp-1#weird", 7, "Si")
    with pytest.raises(DatasetError, match="not an atom row id"):
        parse_atom_row_id("mp-1")
    with pytest.raises(DatasetError, match="per_structure"):
        AtomSampling(per_structure=0)
