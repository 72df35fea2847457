"""Shuffled, random and low-complexity sequences; random sequences on ideal backbones."""

from __future__ import annotations

from collections import Counter

import numpy as np

from matteralign.data import ood_proteins
from matteralign.data.proteome import proteome_sequences


def test_sequence_ood_set():
    dataset = ood_proteins.build_sequences()
    assert dataset.card.out_of_distribution
    assert len(dataset) == sum(ood_proteins.COUNTS.values())
    natural = dict(proteome_sequences())
    shuffled = [s for s in dataset if s.id.startswith("ood-shuffled-")]
    assert len(shuffled) == ood_proteins.COUNTS["shuffled"]
    for sample in shuffled:
        source = natural[sample.id.replace("ood-shuffled-", "proteome-", 1)]
        assert Counter(sample.sequence) == Counter(source)
        assert sample.sequence != source
    poly_q = next(s for s in dataset if s.id.startswith("ood-lowcomplexity-Q-"))
    assert set(poly_q.sequence) == {"Q"}
    assert ood_proteins.build_sequences().fingerprint() == dataset.fingerprint()


def test_backbone_ood_set():
    dataset = ood_proteins.build_backbones()
    assert len(dataset) == 45
    assert dataset.modalities == {"sequence", "backbone"}
    strand = dataset["ood-strand-000"].protein.backbone[:, 1]
    helix = dataset["ood-helix-000"].protein.backbone[:, 1]
    # an extended strand rises about 3.3 Å per residue, an alpha helix 1.5 Å
    assert _rise_per_residue(strand) > 3.0
    assert _rise_per_residue(helix) < 1.7


def _rise_per_residue(ca):
    return float(np.linalg.norm(ca[-1] - ca[0]) / (len(ca) - 1))
