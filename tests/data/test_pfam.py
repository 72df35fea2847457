"""Pfam domains from the shared data folder."""

from __future__ import annotations

import pytest

from matteralign.data import pfam
from matteralign.errors import DatasetError


def test_forty_domains_with_backbones(shared_data):
    dataset = pfam.build(data_root=shared_data)
    assert len(dataset) == 40
    assert dataset.modalities == {"sequence", "backbone"}
    lengths = [len(sample.sequence) for sample in dataset]
    assert 49 <= min(lengths) and max(lengths) <= 150
    assert sum(lengths) == 3982  # 3,984 residues, two without CA
    assert dataset["PF00249_1GUU_A"].protein.backbone.shape == (50, 4, 3)


def test_missing_root_is_reported(tmp_path):
    with pytest.raises(DatasetError, match="MATTERALIGN_DATA_ROOT"):
        pfam.build(data_root=None)
    with pytest.raises(DatasetError, match="proteins/pfam_domains"):
        pfam.build(data_root=tmp_path)
