"""Proteome sequences from the pyhmmer wheel."""

from __future__ import annotations

from matteralign.data import proteome


def test_proteome_sequences():
    dataset = proteome.build()
    assert 2000 < len(dataset) <= 2100
    assert dataset.modalities == {"sequence"}
    assert all(30 <= len(s.sequence) <= 1000 for s in dataset)
    assert 200 < proteome.median_length() < 350
    assert proteome.build(n=10, seed=1).ids == proteome.build(n=10, seed=1).ids
