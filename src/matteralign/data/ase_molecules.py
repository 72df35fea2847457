"""Small-molecule collections shipped with ASE: G2 (162 molecules, radicals, ions of Li–Cl) and S22.

G2 holds open-shell and odd-element species outside QM9; S22 holds non-covalent dimers.
"""

from __future__ import annotations

from pathlib import Path

from matteralign.data.sample import Dataset, DatasetCard, Label, Sample
from matteralign.data.sources import package_version

_ASE_LICENSE = "LGPL-2.1-or-later (ASE)"


def build_g2(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """The G2 test set of ASE (``ase.collections.g2``): 162 molecules, atoms only, no labels.

    Ids are ``g2-<name>``; molecules are non-periodic, positions in Å.
    """
    from ase.collections import g2

    samples = []
    for name in g2.names:
        atoms = g2[name].copy()
        atoms.pbc = False
        samples.append(Sample(id=f"g2-{name}", atoms=atoms))
    card = DatasetCard(
        name="g2",
        version=f"ase-{package_version('ase')}",
        domain="molecules",
        description="G2 molecules: closed- and open-shell species with H and Li-Cl "
        "(Si, P, S, Na, Al, ...)",
        provenance=f"pypi:ase=={package_version('ase')}:ase/collections (g2), "
        "data ase.data.g2_1/g2_2",
        license=_ASE_LICENSE,
        citation="Curtiss et al., J. Chem. Phys. 106, 1063 (1997)",
    )
    return Dataset(card, samples).subset(n, seed=seed)


def build_s22(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """The S22 non-covalent dimers at the equilibrium separation and their s22x5 distance scans.

    Ids are ``s22-<name>-<d>`` with ``d`` the scaling of the intermolecular distance (0.9, 1.0,
    1.2, 1.5, 2.0); label ``interaction_energy`` is the CCSD(T) interaction energy in eV.
    """
    import numpy as np
    from ase import Atoms
    from ase.data import s22

    samples = []
    for name in sorted(s22.data):
        entry = s22.data[name]
        if "interaction energies s22x5" not in entry:
            continue  # the four S26 additions have no distance scan
        energies = entry["interaction energies s22x5"]
        for distance, energy in zip(("0.9", "1.0", "1.2", "1.5", "2.0"), energies, strict=True):
            positions = np.asarray(entry[f"positions {distance}"], dtype=np.float64)
            atoms = Atoms(entry["symbols"], positions=positions)
            labels = {"interaction_energy": float(energy)}
            samples.append(Sample(id=f"s22-{name}-{distance}", atoms=atoms, labels=labels))
    card = DatasetCard(
        name="s22",
        version=f"ase-{package_version('ase')}",
        domain="molecules",
        description="S22 non-covalent dimers with the s22x5 distance scans (0.9-2.0 x equilibrium)",
        provenance=f"pypi:ase=={package_version('ase')}:ase/data/s22.py",
        license=_ASE_LICENSE,
        labels=[Label(name="interaction_energy", unit="eV", description="CCSD(T)/CBS, s22x5 scan")],
        citation="Jurecka et al., PCCP 8, 1985 (2006); Grafova et al., JCTC 6, 2365 (2010)",
    )
    return Dataset(card, samples).subset(n, seed=seed)
