"""CB513 and TS115 sequences with DSSP labels."""

from __future__ import annotations

import pytest

from matteralign.data import ps4


def test_sequences_and_secondary_structure(shared_data):
    dataset = ps4.build(data_root=shared_data)
    assert len(dataset) == 626
    assert sum(sample.id.startswith("cb513-") for sample in dataset) == 511
    dssp = ps4.read_dssp(shared_data)
    for sample in dataset:
        dssp3, dssp8 = dssp[sample.id]
        assert len(dssp3) == len(dssp8) == len(sample.sequence)
        total = sum(
            sample.labels[k] for k in ("helix_fraction", "strand_fraction", "coil_fraction")
        )
        assert total == pytest.approx(1.0)
    assert max(len(s.sequence) for s in dataset) == 1111
