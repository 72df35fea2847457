"""Distorted molecules: QM9 geometries rattled by Gaussian noise, with GFN2-xTB labels if possible.

Off-equilibrium inputs for models trained on relaxed molecules, from a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matteralign.data import qm9
from matteralign.data.sample import Dataset, DatasetCard, Sample
from matteralign.data.sources import package_version
from matteralign.data.xtb_labels import XTB_LABELS, label_with_xtb, xtb_available

NAME = "qm9-distorted"
RATTLE_STDEVS = (0.1, 0.3)  # Å
DEFAULT_MOLECULES = 150


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """``n`` (default 300) distorted QM9 molecules: half of a seeded QM9 subset rattled by 0.1 Å,
    half by 0.3 Å (independent Gaussian noise per coordinate).

    Ids are ``<qm9 id>-rattle<σ>``; SMILES are those of the undistorted molecule. With ``tblite``
    installed each sample gets label ``xtb_energy`` (GFN2-xTB, eV) and forces in
    ``atoms.arrays["xtb_forces"]`` (eV/Å); the QM9 labels of the relaxed molecule are dropped.
    """
    molecules = DEFAULT_MOLECULES if n is None else (n + 1) // 2
    base = qm9.build(n=molecules, seed=seed + 1)
    rng = np.random.default_rng(seed)
    labelled = xtb_available()
    samples = []
    for stdev in RATTLE_STDEVS:
        for sample in base:
            atoms = sample.atoms.copy()
            atoms.positions += rng.normal(0.0, stdev, size=atoms.positions.shape)
            atoms.info["rattle_stdev"] = stdev
            distorted = Sample(id=f"{sample.id}-rattle{stdev:g}", atoms=atoms, smiles=sample.smiles)
            samples.append(distorted)
    samples = samples[: n if n is not None else len(samples)]
    if labelled:
        samples = label_with_xtb(samples)
    xtb = f"tblite-{package_version('tblite')}" if labelled else "unlabelled"
    card = DatasetCard(
        name=NAME,
        version=f"qm9pack-{package_version('qm9pack')}-seed{seed}-m{molecules}-{xtb}",
        domain="molecules",
        description="QM9 molecules rattled by 0.1 and 0.3 Å; GFN2-xTB energies (eV) and forces "
        "(eV/Å, atoms.arrays['xtb_forces']) when tblite is installed",
        provenance=f"generated from pypi:qm9pack=={package_version('qm9pack')} subset, seed {seed}",
        license="MIT (qm9pack); QM9 data CC0; generated distortions CC0-1.0",
        labels=XTB_LABELS if labelled else [],
        out_of_distribution=True,
    )
    return Dataset(card, samples)
