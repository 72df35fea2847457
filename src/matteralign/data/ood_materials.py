"""Out-of-distribution crystals from a seed: perturbed, amorphous, large, slab, cluster, 2D.

Starting points are ASE's elemental reference crystals; nothing is downloaded or labelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from matteralign.data.elemental_crystals import reference_crystals
from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.sources import package_version
from matteralign.errors import DatasetError

RATTLE_STDEVS = (0.05, 0.2, 0.5)  # Å
LINEAR_SCALES = {"compressed80": 0.80, "compressed90": 0.90, "expanded110": 1.10}
STRAIN_STDEV = 0.05
MIN_SUPERCELL_ATOMS = 8


def _supercell(atoms: Any, minimum: int = MIN_SUPERCELL_ATOMS) -> Any:
    """Repeat the cell along all axes until it holds at least ``minimum`` atoms."""
    reps = 1
    while len(atoms) * reps**3 < minimum:
        reps += 1
    return atoms.repeat((reps, reps, reps)) if reps > 1 else atoms.copy()


def perturbed_variants(base: Any, rng: np.random.Generator) -> dict[str, Any]:
    """The perturbed copies of one crystal, keyed by recipe name.

    ``rattle<σ>``: Gaussian displacements of σ Å on a supercell of >= 8 atoms; ``compressed80``,
    ``compressed90``, ``expanded110``: isotropic scaling of the cell by the linear factor;
    ``strained``: a random symmetric strain with entries ~ N(0, 0.05).
    """
    out: dict[str, Any] = {}
    supercell = _supercell(base)
    for stdev in RATTLE_STDEVS:
        atoms = supercell.copy()
        atoms.positions += rng.normal(0.0, stdev, size=atoms.positions.shape)
        out[f"rattle{stdev:g}"] = atoms
    for name, scale in LINEAR_SCALES.items():
        atoms = base.copy()
        atoms.set_cell(atoms.cell[:] * scale, scale_atoms=True)
        out[name] = atoms
    strain = rng.normal(0.0, STRAIN_STDEV, size=(3, 3))
    atoms = base.copy()
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.5 * (strain + strain.T)), scale_atoms=True)
    out["strained"] = atoms
    return out


def build_perturbed(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """Rattled, compressed, expanded and strained copies of every elemental reference crystal.

    Ids are ``perturbed-<element>-<recipe>`` (recipes: :func:`perturbed_variants`).
    """
    rng = np.random.default_rng(seed)
    samples = []
    for symbol, base in reference_crystals():
        for recipe, atoms in perturbed_variants(base, rng).items():
            samples.append(Sample(id=f"perturbed-{symbol}-{recipe}", atoms=atoms))
    card = _card(
        "crystals-perturbed",
        seed,
        "Elemental crystals rattled (0.05/0.2/0.5 Å), compressed to 0.8/0.9, expanded to 1.1 "
        "(linear) and randomly strained (5%): OMat24-style off-equilibrium structures",
    )
    return Dataset(card, samples).subset(n, seed=seed)


def amorphous_cell(
    symbols: list[str], volume_per_atom: float, min_distance: float, rng: np.random.Generator
) -> Any:
    """A cubic periodic cell with atoms placed at random, no pair closer than ``min_distance`` Å.

    Raises
    ------
    DatasetError
        If no position can be found for an atom after 10,240 tries (density too high).
    """
    from ase import Atoms

    length = (volume_per_atom * len(symbols)) ** (1.0 / 3.0)
    positions = np.empty((0, 3))
    for _ in symbols:
        for _attempt in range(40):  # 40 batches of 256 trial positions
            trials = rng.uniform(0.0, length, size=(256, 3))
            delta = trials[:, None, :] - positions[None, :, :]
            delta -= length * np.round(delta / length)
            distances = np.linalg.norm(delta, axis=2).min(axis=1, initial=np.inf)
            free = np.flatnonzero(distances >= min_distance)
            if len(free):
                positions = np.vstack([positions, trials[free[0]]])
                break
        else:
            raise DatasetError(
                f"amorphous cell of {len(symbols)} atoms at {volume_per_atom:.1f} Å^3/atom: "
                f"no room for an atom at minimum distance {min_distance:.2f} Å"
            )
    return Atoms(symbols=symbols, positions=positions, cell=[length] * 3, pbc=True)


_AMORPHOUS = (  # formula, formula units, volume per atom (Å^3), minimum pair distance (Å)
    ("Si", 64, 20.0, 2.1),
    ("C", 64, 7.0, 1.3),
    ("Ge", 64, 23.0, 2.2),
    ("SiO2", 8, 15.0, 1.5),
    ("Li3PS4", 4, 20.0, 1.9),
    ("Cu", 64, 12.0, 1.9),
    ("Fe", 54, 12.0, 1.9),
    ("Al2O3", 6, 10.0, 1.6),
    ("GeTe", 16, 30.0, 2.4),
    ("Ni", 64, 11.0, 1.8),
)


def _exotic_structures(rng: np.random.Generator) -> dict[str, Any]:
    from ase.build import bcc110, bulk, fcc100, fcc111, graphene, mx2
    from ase.cluster import Decahedron, Icosahedron, Octahedron
    from ase.formula import Formula

    out: dict[str, Any] = {}
    for formula, units, volume, d_min in _AMORPHOUS:
        symbols = list(Formula(formula)) * units
        for replica in range(3):
            out[f"amorphous-{formula}-{replica}"] = amorphous_cell(symbols, volume, d_min, rng)
    for symbol, reps in (("Cu", 5), ("Al", 5), ("Ni", 4), ("Au", 4)):
        out[f"large-{symbol}{4 * reps**3}"] = bulk(symbol, cubic=True).repeat((reps,) * 3)
    out["large-Si512"] = bulk("Si", cubic=True).repeat((4, 4, 4))
    out["large-NaCl512"] = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((4, 4, 4))
    for symbol in ("Pt", "Cu", "Au", "Ag", "Pd", "Al"):
        out[f"slab-{symbol}111"] = fcc111(symbol, size=(3, 3, 4), vacuum=8.0)
        out[f"slab-{symbol}100"] = fcc100(symbol, size=(3, 3, 4), vacuum=8.0)
    for symbol in ("Fe", "W", "Mo"):
        out[f"slab-{symbol}110"] = bcc110(symbol, size=(3, 3, 4), vacuum=8.0)
    for symbol in ("Au", "Pt", "Cu", "Ag"):
        for name, cluster in (
            ("ico55", Icosahedron(symbol, 3)),
            ("deca", Decahedron(symbol, 3, 2, 0)),
            ("octa", Octahedron(symbol, 4, 1)),
        ):
            cluster.center(vacuum=6.0)
            cluster.pbc = False
            out[f"cluster-{symbol}-{name}"] = cluster
    out["sheet-graphene"] = graphene(size=(4, 4, 1), vacuum=8.0)
    out["sheet-MoS2"] = mx2("MoS2", size=(4, 4, 1), vacuum=8.0)
    out["sheet-WSe2"] = mx2("WSe2", kind="2H", a=3.32, thickness=3.35, size=(4, 4, 1), vacuum=8.0)
    return out


def build_exotic(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """Amorphous cells, large supercells (256-512 atoms), slabs, nanoclusters and 2D sheets.

    Ids are ``exotic-<kind>-<detail>``; amorphous cells are seeded random packings at roughly
    solid density with a minimum pair distance; clusters are non-periodic.
    """
    rng = np.random.default_rng(seed)
    samples = [
        Sample(id=f"exotic-{name}", atoms=atoms) for name, atoms in _exotic_structures(rng).items()
    ]
    card = _card(
        "crystals-exotic",
        seed,
        "Structures unlike bulk training crystals: amorphous cells, 256-512-atom supercells, "
        "fcc/bcc slabs, 13-147-atom metal clusters, graphene and transition-metal dichalcogenides",
    )
    return Dataset(card, samples).subset(n, seed=seed)


def _card(name: str, seed: int, description: str) -> DatasetCard:
    return DatasetCard(
        name=name,
        version=f"1-seed{seed}",
        domain="materials",
        description=description,
        provenance=f"generated with ase=={package_version('ase')} (ase.build, ase.cluster) from "
        f"seed {seed}",
        license="CC0-1.0 (generated)",
        out_of_distribution=True,
    )
