"""Natural protein sequences: a bacterial proteome (2,100 proteins) shipped in the pyhmmer wheel.

A sequence-only set with no PDB structures, and the sequence source of the ideal-backbone set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matteralign.data.fasta import read_fasta
from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.sources import package_file, package_provenance, package_version

NAME = "proteome"
FILE = "tests/data/seqs/938293.PRJEB85.HG003687.faa"
MIN_LENGTH = 30
MAX_LENGTH = 1000


def proteome_sequences() -> list[tuple[str, str]]:
    """``(id, sequence)`` of every protein of 30-1,000 residues, ids ``proteome-<gene id>``."""
    path = package_file("pyhmmer", FILE, NAME)
    records, _ = read_fasta(path)
    out = []
    for header, sequence, _ in records:
        if MIN_LENGTH <= len(sequence) <= MAX_LENGTH and set(sequence) <= set(
            "ACDEFGHIKLMNPQRSTVWY"
        ):
            out.append((f"proteome-{header.split()[0]}", sequence))
    return out


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """Proteome sequences (30-1,000 residues, standard amino acids); a seeded subset of ``n``."""
    samples = [Sample(id=i, sequence=s) for i, s in proteome_sequences()]
    card = DatasetCard(
        name=NAME,
        version=f"pyhmmer-{package_version('pyhmmer')}",
        domain="proteins",
        description="Predicted proteins of a bacterial genome (ENA PRJEB85, HG003687), 30-1,000 "
        "residues; natural sequences without PDB structures",
        provenance=package_provenance("pyhmmer", f"pyhmmer/{FILE}"),
        license="MIT (pyhmmer); ENA data public",
    )
    return Dataset(card, samples).subset(n, seed=seed)


def median_length() -> float:
    """Median length of the kept proteome sequences (residues)."""
    return float(np.median([len(s) for _, s in proteome_sequences()]))
