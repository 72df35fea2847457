"""Ideal backbones: the NeRF builder reproduces PeptideBuilder."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.data import ideal_backbones
from matteralign.data.protein_structure import backbone_from_biopython


def test_matches_peptidebuilder():
    import PeptideBuilder

    sequence = "MKTAYIAKQRGSPEWG"
    pattern = "CHHHHHHEEEECCCHH"
    ours = ideal_backbones.ideal_backbone(sequence, pattern).backbone
    phi = [ideal_backbones.TORSIONS[s][0] for s in pattern[1:]]
    psi = [ideal_backbones.TORSIONS[s][1] for s in pattern[:-1]]
    reference = backbone_from_biopython(PeptideBuilder.make_structure(sequence, phi, psi), "ref")
    np.testing.assert_allclose(ours, reference.backbone, atol=1e-4)


def test_helix_geometry():
    helix = ideal_backbones.ideal_backbone("A" * 20, "H" * 20).backbone
    ca = helix[:, 1]
    assert np.linalg.norm(ca[1:] - ca[:-1], axis=1) == pytest.approx(np.full(19, 3.80), abs=0.03)
    # alpha helix: CA(i)-CA(i+3) about 5.0-5.4 Å, rise 1.5 Å per residue
    assert np.linalg.norm(ca[3:] - ca[:-3], axis=1).mean() == pytest.approx(5.2, abs=0.3)
    assert np.linalg.norm(ca[-1] - ca[0]) == pytest.approx(19 * 1.5, rel=0.1)


def test_default_set_is_offline_and_seeded():
    dataset = ideal_backbones.build(n=8, seed=2)
    assert len(dataset) == 8
    assert dataset.modalities == {"sequence", "backbone"}
    for sample in dataset:
        assert sample.protein.sequence == sample.sequence
        assert 50 <= len(sample.sequence) <= ideal_backbones.MAX_RESIDUES
        assert np.isfinite(sample.protein.backbone).all()
    assert ideal_backbones.build(n=8, seed=2).fingerprint() == dataset.fingerprint()
