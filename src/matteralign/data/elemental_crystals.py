"""Elemental crystals: ASE's reference ground states, each with seeded strains and rattles.

A small materials set that needs no download; every structure is periodic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from matteralign.data.sample import Dataset, DatasetCard, Sample

_LATTICES = ("fcc", "bcc", "hcp", "diamond")
VARIANTS_PER_ELEMENT = 10
STRAIN_RANGE = 0.04  # largest relative change of each lattice vector
RATTLE_STDEV = 0.03  # Å


def _lattice_names() -> dict[str, str]:
    from ase.data import chemical_symbols, reference_states

    return {
        chemical_symbols[z]: state["symmetry"]
        for z, state in enumerate(reference_states)
        if state is not None and "symmetry" in state
    }


def _reference_elements() -> list[str]:
    from ase.data import chemical_symbols, reference_states

    return [
        chemical_symbols[z]
        for z, state in enumerate(reference_states)
        if state is not None and state.get("symmetry") in _LATTICES and z <= 83
    ]


def reference_crystals() -> list[tuple[str, Any]]:
    """``(symbol, atoms)`` for every element whose ASE reference state is fcc, bcc, hcp or diamond.

    Each cell is ``ase.build.bulk(symbol)`` repeated to at least 4 atoms; periodic, positions in Å.
    """
    from ase.build import bulk

    out = []
    for symbol in _reference_elements():
        try:
            base = bulk(symbol)
        except ValueError:  # Se, Te: ASE's hcp reference needs an atomic basis it does not give
            continue
        if len(base) < 4:
            base = base.repeat((2, 2, 1) if len(base) == 2 else (2, 2, 2))
        out.append((symbol, base))
    return out


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """Build the elemental-crystals set.

    Each element's conventional cell (``ase.build.bulk``, repeated to at least 4 atoms) appears
    unperturbed and in ``VARIANTS_PER_ELEMENT - 1`` variants with a random symmetric strain of at
    most ``STRAIN_RANGE`` and Gaussian rattles of ``RATTLE_STDEV`` Å, all from ``seed``.

    Parameters
    ----------
    n : int, optional
        Keep a seeded subset of ``n`` structures.
    seed : int
        Seed of the perturbations and the subset.
    data_root : Path, optional
        Unused; this set is generated.
    """
    rng = np.random.default_rng(seed)
    samples: list[Sample] = []
    for symbol, base in reference_crystals():
        lattice = _lattice_names().get(symbol, "ref")
        for variant in range(VARIANTS_PER_ELEMENT):
            atoms = base.copy()
            if variant > 0:
                strain = rng.uniform(-STRAIN_RANGE, STRAIN_RANGE, size=(3, 3))
                strain = 0.5 * (strain + strain.T)
                atoms.set_cell(atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
                atoms.positions += rng.normal(0.0, RATTLE_STDEV, size=atoms.positions.shape)
            samples.append(Sample(id=f"{symbol}-{lattice}-{variant}", atoms=atoms))
    card = DatasetCard(
        name="elemental-crystals",
        version=f"1-seed{seed}",
        domain="materials",
        description="ASE reference crystal structures of elements, with seeded strains and rattles",
        provenance="generated from ase.data.reference_states with ase.build.bulk",
        license="LGPL-2.1-or-later (ASE data)",
    )
    return Dataset(card, samples).subset(n, seed=seed)
