"""Samples and datasets: unique ids, modalities, subsets and fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from matteralign.data.sample import Dataset, DatasetCard, ProteinStructure, Sample
from matteralign.errors import DatasetError

CARD = DatasetCard(
    name="t", version="1", domain="molecules", description="d", provenance="p", license="CC0"
)


def test_duplicate_ids_are_named():
    samples = [Sample("a", smiles="C"), Sample("b", smiles="CC"), Sample("a", smiles="CCC")]
    with pytest.raises(DatasetError, match="1 duplicated sample id.*'a'"):
        Dataset(CARD, samples)


def test_modalities_and_sequence_from_structure():
    protein = ProteinStructure("AG", np.zeros((2, 4, 3)))
    sample = Sample("p", protein=protein)
    assert sample.sequence == "AG"
    assert sample.modalities == {"sequence", "backbone"}
    both = Sample("m", atoms=molecule("H2O"), smiles="O")
    assert both.modalities == {"atoms", "smiles"}
    assert Dataset(CARD, [sample, both]).modalities == frozenset()


def test_backbone_shape_is_checked():
    with pytest.raises(DatasetError, match=r"expected \(3, 4, 3\)"):
        ProteinStructure("AGC", np.zeros((2, 4, 3)))


def test_subset_is_seeded_and_ordered():
    dataset = Dataset(CARD, [Sample(f"s{i:02d}", smiles="C" * (i + 1)) for i in range(30)])
    first, again = dataset.subset(10, seed=3), dataset.subset(10, seed=3)
    assert first.ids == again.ids == sorted(first.ids)
    assert first.ids != dataset.subset(10, seed=4).ids
    assert dataset.subset(None) is dataset


def test_fingerprint_changes_with_any_bit_of_content():
    atoms = bulk("Si")
    base = Dataset(CARD, [Sample("si", atoms=atoms)])
    moved = atoms.copy()
    moved.positions[0, 0] = np.nextafter(moved.positions[0, 0], 1.0)
    assert base.fingerprint() == Dataset(CARD, [Sample("si", atoms=atoms.copy())]).fingerprint()
    assert base.fingerprint() != Dataset(CARD, [Sample("si", atoms=moved)]).fingerprint()


def test_lookup_by_id():
    dataset = Dataset(CARD, [Sample("x", smiles="C")])
    assert dataset["x"].smiles == "C"
    with pytest.raises(DatasetError, match="no sample 'y'"):
        dataset["y"]
