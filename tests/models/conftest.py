"""Inputs shared by the model adapter tests: small crystals, G2 molecules, protein sequences."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from ase.build import bulk, molecule

from matteralign.data.sample import Sample

# Trastuzumab VH, 120 residues.
TRASTUZUMAB_VH = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQ"
    "MNSLRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS"
)


@pytest.fixture
def crystals() -> list[Sample]:
    """Si diamond (8 atoms), NaCl rock salt (2 atoms), and a water molecule (non-periodic)."""
    return [
        Sample("si", atoms=bulk("Si", "diamond", a=5.43, cubic=True)),
        Sample("nacl", atoms=bulk("NaCl", "rocksalt", a=5.64)),
        Sample("h2o", atoms=molecule("H2O")),
    ]


@pytest.fixture
def molecules() -> Callable[[Sequence[str]], list[Sample]]:
    """Samples of ase's G2 molecules by name, each with the name as its id."""

    def build(names: Sequence[str]) -> list[Sample]:
        return [Sample(id=name, atoms=molecule(name)) for name in names]

    return build


@pytest.fixture
def vh() -> str:
    """Trastuzumab VH, 120 standard residues."""
    return TRASTUZUMAB_VH


@pytest.fixture
def sequence_samples() -> list[Sample]:
    """Trastuzumab VH (120 residues), a 33-residue protein and a 9-residue peptide."""
    return [
        Sample("vh", sequence=TRASTUZUMAB_VH),
        Sample("protein", sequence="MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"),
        Sample("short", sequence="ACDEFGHIK"),
    ]
