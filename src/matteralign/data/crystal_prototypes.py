"""Unlabelled structural diversity: the AFLOW prototype library (pymatgen) and ASE's dcdft solids.

AFLOW gives 288 decorated prototypes (1-105 atoms, 1-5 elements); dcdft gives 71 elemental crystals.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from matteralign.data.sample import Dataset, DatasetCard, Label, Sample
from matteralign.data.sources import package_file, package_provenance, package_version
from matteralign.data.structure_dicts import atoms_from_pymatgen_dict

AFLOW_FILE = "analysis/prototypes/aflow_prototypes.json.gz"


def build_aflow(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """The AFLOW Library of Crystallographic Prototypes as shipped by pymatgen (288 crystals).

    Ids are ``aflow-<AFLOW label>-<empirical formula>``; the Pearson symbol, Strukturbericht
    designation and mineral name are in ``atoms.info``. Parsed without importing pymatgen
    (seconds faster).
    """
    path = package_file("pymatgen", AFLOW_FILE, "aflow-prototypes")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        entries = json.load(handle)
    samples = []
    for index, entry in enumerate(entries):
        tags = entry.get("tags", {})
        label = tags.get("aflow") or f"entry{index}"
        atoms = atoms_from_pymatgen_dict(entry["snl"], f"{path.name} entry {index} ({label})")
        atoms.info.update({k: str(v) for k, v in tags.items() if v})
        formula = atoms.get_chemical_formula(mode="hill", empirical=True)
        samples.append(Sample(id=f"aflow-{label}-{formula}", atoms=atoms))
    card = DatasetCard(
        name="aflow-prototypes",
        version=f"pymatgen-{package_version('pymatgen')}",
        domain="materials",
        description="AFLOW prototype crystals with their real decorations (1-105 atoms, unary to "
        "quinary), no labels",
        provenance=package_provenance("pymatgen", f"pymatgen/{AFLOW_FILE}"),
        license="MIT (pymatgen); AFLOW prototype library (Mehl et al. 2017)",
        citation="Mehl et al., Comput. Mater. Sci. 136, S1 (2017)",
    )
    return Dataset(card, samples).subset(n, seed=seed)


def build_dcdft(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """ASE's Delta-test (dcdft) set: 71 elemental crystals, H to Rn.

    Labels are the WIEN2k PBE equation-of-state parameters: ``wien2k_volume`` (Å^3/atom),
    ``wien2k_B`` (GPa) and ``wien2k_Bp`` (dimensionless).
    """
    from ase.collections import dcdft

    samples = []
    for name in dcdft.names:
        atoms = dcdft[name].copy()
        data = dcdft.data.get(name, {})
        labels = {
            k: float(data[k]) for k in ("wien2k_volume", "wien2k_B", "wien2k_Bp") if k in data
        }
        samples.append(Sample(id=f"dcdft-{name}", atoms=atoms, labels=labels))
    card = DatasetCard(
        name="dcdft",
        version=f"ase-{package_version('ase')}",
        domain="materials",
        description="Delta-test elemental crystals (71 elements) with WIEN2k PBE equation-of-state "
        "references",
        provenance=package_provenance("ase", "ase/collections/dcdft.json"),
        license="LGPL-2.1-or-later (ASE)",
        labels=[
            Label(name="wien2k_volume", unit="Å^3/atom", description="PBE equilibrium volume"),
            Label(name="wien2k_B", unit="GPa", description="PBE bulk modulus"),
            Label(name="wien2k_Bp", unit="1", description="pressure derivative of B"),
        ],
        citation="Lejaeghere et al., Science 351, aad3000 (2016)",
    )
    return Dataset(card, samples).subset(n, seed=seed)
