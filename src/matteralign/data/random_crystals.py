"""Random symmetric crystals of unusual elements (lanthanides, actinides, noble gases), via pyxtal.

Each crystal is drawn from a seeded space group and composition; pyxtal failures are retried.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.sources import package_dir, package_version

NAME = "random-crystals"
UNUSUAL_ELEMENTS = (
    *("La", "Ce", "Pr", "Nd", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu"),
    *("Ac", "Th", "Pa", "U", "Np", "Pu"),
    *("He", "Ne", "Ar", "Kr", "Xe"),
)
PARTNERS = ("O", "N", "C", "B", "S", "Si", "P", "F", "Cl", "H")
# (space group, ions of the unusual element, ions of the partner or 0 for an elemental crystal)
TEMPLATES = (
    (225, 4, 4), (225, 4, 8), (221, 1, 3), (229, 2, 6), (194, 2, 2), (191, 1, 2), (166, 3, 6),
    (139, 2, 4), (62, 4, 4), (14, 4, 8), (12, 4, 4), (2, 2, 4), (63, 4, 4),
    (225, 4, 0), (229, 2, 0), (194, 2, 0), (221, 1, 0), (227, 8, 0), (12, 4, 0),
)  # fmt: skip
DEFAULT_SIZE = 40
MAX_TRIES = 10


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """``n`` (default 40) random crystals, each with one unusual element and maybe one partner.

    Every attempt draws a template (space group and numbers of ions) from :data:`TEMPLATES`, an
    element from :data:`UNUSUAL_ELEMENTS` and, for binary templates, a partner from
    :data:`PARTNERS`; pyxtal places the ions on Wyckoff positions with a seeded random state. Up to
    ``MAX_TRIES`` draws per crystal, then a simple-cubic fallback. Ids are
    ``random-<index>-<formula>-sg<space group>``. No labels.
    """
    package_dir("pyxtal", NAME)
    import warnings

    from pyxtal import pyxtal

    size = DEFAULT_SIZE if n is None else n
    rng = np.random.default_rng(seed)
    samples: list[Sample] = []
    while len(samples) < size:
        index = len(samples)
        for _ in range(MAX_TRIES):
            group, count, partner_count = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
            species, numbers = [str(rng.choice(UNUSUAL_ELEMENTS))], [count]
            if partner_count:
                species.append(str(rng.choice(PARTNERS)))
                numbers.append(partner_count)
            crystal = pyxtal()
            state = np.random.default_rng(int(rng.integers(2**31)))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    crystal.from_random(3, group, species, numbers, random_state=state)
            except Exception:  # noqa: BLE001 - pyxtal raises many types for impossible draws
                continue
            if not crystal.valid:
                continue
            atoms = crystal.to_ase()
            formula = atoms.get_chemical_formula(mode="metal")
            samples.append(Sample(id=f"random-{index:03d}-{formula}-sg{group}", atoms=atoms))
            break
        else:
            samples.append(_fallback(index, rng))
    card = DatasetCard(
        name=NAME,
        version=f"pyxtal-{package_version('pyxtal')}-seed{seed}-n{size}",
        domain="materials",
        description="Random symmetric crystals (pyxtal) of lanthanides, actinides and noble gases, "
        "alone or with a light partner element; no labels",
        provenance=f"generated with pyxtal=={package_version('pyxtal')} from seed {seed}",
        license="CC0-1.0 (generated); pyxtal MIT",
        out_of_distribution=True,
    )
    return Dataset(card, samples)


def _fallback(index: int, rng: np.random.Generator) -> Sample:
    """A simple-cubic crystal of an unusual element, when pyxtal fails ``MAX_TRIES`` times."""
    from ase.build import bulk

    symbol = str(rng.choice(UNUSUAL_ELEMENTS))
    atoms = bulk(symbol, "sc", a=3.5).repeat((2, 2, 2))
    return Sample(id=f"random-{index:03d}-{symbol}8-sc", atoms=atoms)
