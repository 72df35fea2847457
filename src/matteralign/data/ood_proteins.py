"""Out-of-distribution protein inputs from a seed: shuffled, random and low-complexity sequences,
and random sequences on ideal helix/strand backbones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matteralign.data.ideal_backbones import ideal_backbone
from matteralign.data.proteome import proteome_sequences
from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.sources import package_version

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
LOW_COMPLEXITY_REPEATS = ("GS", "Q", "A", "PEVK", "GGS", "EK", "P", "KE", "N", "GPP")
COUNTS = {"shuffled": 60, "random": 40, "low-complexity": 20}
MAX_LENGTH = 300


def build_sequences(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """Shuffled proteome sequences (composition kept, order destroyed), uniform random sequences
    and low-complexity repeats ((GS)n, poly-Q, (PEVK)n, ...), 50-300 residues.

    Ids are ``ood-shuffled-<source id>``, ``ood-random-<i>``, ``ood-lowcomplexity-<repeat>-<i>``.
    """
    rng = np.random.default_rng(seed)
    pool = [(i, s) for i, s in proteome_sequences() if 50 <= len(s) <= MAX_LENGTH]
    samples = []
    for index in np.sort(rng.choice(len(pool), size=COUNTS["shuffled"], replace=False)):
        source_id, sequence = pool[index]
        shuffled = "".join(rng.permutation(list(sequence)))
        samples.append(
            Sample(id=source_id.replace("proteome-", "ood-shuffled-", 1), sequence=shuffled)
        )
    for i in range(COUNTS["random"]):
        length = int(rng.integers(50, MAX_LENGTH + 1))
        sequence = "".join(rng.choice(list(AMINO_ACIDS), size=length))
        samples.append(Sample(id=f"ood-random-{i:03d}", sequence=sequence))
    for i in range(COUNTS["low-complexity"]):
        repeat = LOW_COMPLEXITY_REPEATS[i % len(LOW_COMPLEXITY_REPEATS)]
        length = int(rng.integers(50, 201))
        sequence = (repeat * (length // len(repeat) + 1))[:length]
        samples.append(Sample(id=f"ood-lowcomplexity-{repeat}-{i:03d}", sequence=sequence))
    card = DatasetCard(
        name="protein-sequences-ood",
        version=f"1-seed{seed}",
        domain="proteins",
        description="Sequences with no fold: shuffled natural proteins, uniform random sequences, "
        "low-complexity repeats",
        provenance=f"generated from pyhmmer=={package_version('pyhmmer')} proteome sequences, "
        f"seed {seed}",
        license="CC0-1.0 (generated)",
        out_of_distribution=True,
    )
    return Dataset(card, samples).subset(n, seed=seed)


def build_backbones(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """Uniform random sequences (40-120 residues) on all-helix, all-strand or all-PPII ideal
    backbones; 15 of each, ids ``ood-<helix|strand|ppii>-<i>``.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for state, name in (("H", "helix"), ("E", "strand"), ("C", "ppii")):
        for i in range(15):
            length = int(rng.integers(40, 121))
            sequence = "".join(rng.choice(list(AMINO_ACIDS), size=length))
            sample_id = f"ood-{name}-{i:03d}"
            protein = ideal_backbone(sequence, state * length, sample_id)
            samples.append(Sample(id=sample_id, sequence=sequence, protein=protein))
    card = DatasetCard(
        name="protein-backbones-ood",
        version=f"1-seed{seed}",
        domain="proteins",
        description="Random sequences on single ideal helices, extended strands or PPII chains "
        "(PeptideBuilder geometry)",
        provenance=f"generated with PeptideBuilder=={package_version('PeptideBuilder')} geometry, "
        f"seed {seed}",
        license="CC0-1.0 (generated)",
        out_of_distribution=True,
    )
    return Dataset(card, samples).subset(n, seed=seed)
