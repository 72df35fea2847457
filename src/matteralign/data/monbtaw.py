"""Mo-Nb-Ta-W refractory alloys (SNAP training set): PBE energies, forces and stresses.

Read from ``<data_root>/materials/MoNbTaW/*.json.gz`` (maml format: pymatgen dicts, total energies).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from matteralign.data.sample import Dataset, DatasetCard, Label, Sample
from matteralign.data.sources import read_source_line, require_data_files
from matteralign.data.structure_dicts import atoms_from_pymatgen_dict, attach_forces
from matteralign.errors import DatasetError

NAME = "monbtaw"
FOLDER = "materials/MoNbTaW"
_UNARY = ("Mo", "Nb", "Ta", "W")
_BINARY = ("MoTa", "MoW", "NbMo", "NbTa", "NbW", "TaW")
# file stem -> group
FILES: dict[str, str] = {
    **{f"{el}_AIMD": "aimd" for el in _UNARY},
    **{f"{el}_Elastic": "strain" for el in _UNARY},
    **{f"{el}_Surface": "surface" for el in _UNARY},
    **{f"{el}_Test": "test-unary" for el in _UNARY},
    **{f"{pair}_SS": "solid-solution" for pair in _BINARY},
    **{f"{pair}_Test": "test-binary" for pair in _BINARY},
    "Multinary_Test": "test-quaternary",
}
LABELS = [
    Label(name="energy", unit="eV", description="total PBE energy"),
    Label(name="energy_per_atom", unit="eV/atom", description="total energy / number of atoms"),
]


def build(
    n: int | None = None,
    seed: int = 0,
    data_root: Path | None = None,
    groups: tuple[str, ...] | None = None,
    name: str = NAME,
) -> Dataset:
    """The 5,658 MoNbTaW configurations, optionally only some groups.

    Parameters
    ----------
    n, seed : subset options.
    data_root : Path
        Folder that holds ``materials/MoNbTaW/``.
    groups : tuple of str, optional
        Keep only these groups (values of :data:`FILES`), e.g. ``("test-quaternary",)``.
    name : str
        Dataset name on the card.

    Returns
    -------
    Dataset
        Samples ``monbtaw-<file stem>-<index>``; labels in eV; forces (N, 3) in eV/Å in
        ``atoms.arrays["forces"]``; the 6 stress values as the source gives them (VASP kBar,
        assumed) in ``atoms.info["stress_source"]``; the group in ``atoms.info["group"]`` and the
        source tags in ``atoms.info["tags"]``.
    """
    stems = [stem for stem, group in FILES.items() if groups is None or group in groups]
    paths = require_data_files(data_root, [f"{FOLDER}/{stem}.json.gz" for stem in stems], NAME)
    samples = []
    for stem, path in zip(stems, paths, strict=True):
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                records = json.load(handle)
        except (OSError, EOFError, json.JSONDecodeError) as error:
            raise DatasetError(f"{path}: cannot read MoNbTaW file ({error})") from None
        for index, record in enumerate(records):
            where = f"{path.name} record {index}"
            atoms = atoms_from_pymatgen_dict(record["structure"], where)
            outputs = record["outputs"]
            attach_forces(atoms, outputs["forces"], where)
            tags = record.get("tags", [])
            atoms.info["group"] = FILES[stem]
            atoms.info["tags"] = ",".join([tags] if isinstance(tags, str) else tags)
            atoms.info["stress_source"] = np.asarray(outputs["stress"], dtype=np.float64)
            energy = float(outputs["energy"])
            labels = {"energy": energy, "energy_per_atom": energy / len(atoms)}
            samples.append(Sample(id=f"monbtaw-{stem}-{index:03d}", atoms=atoms, labels=labels))
    card = DatasetCard(
        name=name,
        version="maml-f7c0b6f",
        domain="materials",
        description="Mo-Nb-Ta-W PBE configurations: unary AIMD, strained, surface cells, binary "
        "solid solutions, 4-component 128-atom test cells; forces in eV/Å on "
        "atoms.arrays['forces']",
        provenance=read_source_line(paths[0].parent)
        or "materialsvirtuallab/maml@f7c0b6f:mvl_models/pes/MoNbTaW/training/",
        license="BSD-3-Clause (Materials Virtual Lab)",
        labels=LABELS,
        out_of_distribution=groups is not None
        and set(groups) <= {"test-quaternary", "test-binary"},
        citation="Li et al., npj Comput. Mater. 6, 70 (2020)",
    )
    return Dataset(card, samples).subset(n, seed=seed)


def build_multinary(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """The unusual-composition part: 16 quaternary 128-atom cells and 240 binary test cells."""
    groups = ("test-quaternary", "test-binary")
    return build(n=n, seed=seed, data_root=data_root, groups=groups, name="monbtaw-multinary")
