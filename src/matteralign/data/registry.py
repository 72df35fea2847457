"""Registry of datasets: the built-in ones (names, what they hold, the function that builds
each) and datasets read from a user's files, registered under a name by a study.

Listing reads only this table; building imports the source package when asked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from matteralign.data.readers import ReadOptions
from matteralign.data.sample import Dataset, Domain, Modality
from matteralign.errors import DatasetError


@dataclass(frozen=True)
class DatasetSpec:
    """A built-in dataset: what it is and how to build it.

    Attributes
    ----------
    name : str
        Registry name, used in configs and on the command line.
    domain : {"molecules", "materials", "proteins"}, optional
        None for a file dataset: known once the file is read (``dataset.card.domain``).
    modalities : tuple of str
        Modalities every sample has (empty for a file dataset until it is read).
    description : str
    builder : str
        ``"module:function"``; the function takes ``(n, seed, data_root)`` and returns a Dataset.
        Empty for a file dataset, which :func:`~matteralign.data.load_file` reads.
    size : int
        Number of samples in the full set.
    out_of_distribution : bool
        Whether the set is built to lie outside the training data of the usual models.
    source : str
        Where it comes from: a package name, ``"generated"``, or ``"shared-data"`` for sets that
        need files under a data root.
    default_n : int, optional
        Subset size the default suite uses (None: the whole set).
    file : FileSource, optional
        For a dataset read from a user's file: what to read and how.
    """

    name: str
    domain: Domain | None
    modalities: tuple[Modality, ...]
    description: str
    builder: str
    size: int
    out_of_distribution: bool = False
    source: str = "generated"
    default_n: int | None = None
    file: FileSource | None = None


@dataclass(frozen=True)
class FileSource:
    """A file (or folder) to read as a dataset: :func:`matteralign.data.read_file`'s inputs."""

    path: Path
    format: str | None = None
    options: ReadOptions = ReadOptions()


_BUILTIN: tuple[DatasetSpec, ...] = (
    # --- molecules -------------------------------------------------------------------------
    DatasetSpec(
        name="qm9",
        domain="molecules",
        modalities=("atoms", "smiles"),
        description="QM9: 130,831 small organic molecules (CHNOF), B3LYP geometries, SMILES and "
        "15 properties (energies in eV); use n for a fast seeded subset",
        builder="matteralign.data.qm9:build",
        size=130_831,
        source="qm9pack",
        default_n=2000,
    ),
    DatasetSpec(
        name="g2",
        domain="molecules",
        modalities=("atoms",),
        description="G2 molecules of ASE: radicals and Li-Cl elements outside QM9",
        builder="matteralign.data.ase_molecules:build_g2",
        size=162,
        source="ase",
    ),
    DatasetSpec(
        name="s22",
        domain="molecules",
        modalities=("atoms",),
        description="S22 non-covalent dimers with s22x5 distance scans, CCSD(T) interaction "
        "energies (eV)",
        builder="matteralign.data.ase_molecules:build_s22",
        size=110,
        source="ase",
    ),
    DatasetSpec(
        name="egfr-ligands",
        domain="molecules",
        modalities=("atoms", "smiles"),
        description="365 drug-like EGFR ligands with 3D coordinates (RDKit test data), larger than "
        "QM9",
        builder="matteralign.data.rdkit_molecules:build_egfr_ligands",
        size=365,
        source="rdkit",
    ),
    DatasetSpec(
        name="nci-unusual",
        domain="molecules",
        modalities=("atoms", "smiles"),
        description="NCI molecules with Si, B, P, Se, As, metals, ... (ETKDG 3D); slow in full, "
        "use n",
        builder="matteralign.data.rdkit_molecules:build_nci_unusual",
        size=233,
        out_of_distribution=True,
        source="rdkit",
        default_n=50,
    ),
    DatasetSpec(
        name="qm9-distorted",
        domain="molecules",
        modalities=("atoms", "smiles"),
        description="QM9 molecules rattled by 0.1 and 0.3 Å, GFN2-xTB energies and forces",
        builder="matteralign.data.ood_molecules:build",
        size=300,
        out_of_distribution=True,
        source="generated",
    ),
    # --- materials -------------------------------------------------------------------------
    DatasetSpec(
        name="matpes-pbe-refs",
        domain="materials",
        modalities=("atoms",),
        description="MatPES PBE elemental ground states (89), DFT energies and forces",
        builder="matteralign.data.matpes:build_pbe",
        size=89,
        source="matcalc",
    ),
    DatasetSpec(
        name="matpes-r2scan-refs",
        domain="materials",
        modalities=("atoms",),
        description="MatPES r2SCAN elemental ground states (89), DFT energies and forces",
        builder="matteralign.data.matpes:build_r2scan",
        size=89,
        source="matcalc",
    ),
    DatasetSpec(
        name="elemental-crystals",
        domain="materials",
        modalities=("atoms",),
        description="Ground-state crystals of 60 elements (ASE reference states), seeded strains "
        "and rattles",
        builder="matteralign.data.elemental_crystals:build",
        size=600,
        source="ase",
    ),
    DatasetSpec(
        name="aflow-prototypes",
        domain="materials",
        modalities=("atoms",),
        description="288 AFLOW prototype crystals with real decorations (pymatgen), unlabelled",
        builder="matteralign.data.crystal_prototypes:build_aflow",
        size=288,
        source="pymatgen",
    ),
    DatasetSpec(
        name="dcdft",
        domain="materials",
        modalities=("atoms",),
        description="71 Delta-test elemental crystals with WIEN2k PBE equation-of-state data",
        builder="matteralign.data.crystal_prototypes:build_dcdft",
        size=71,
        source="ase",
    ),
    DatasetSpec(
        name="mlearn",
        domain="materials",
        modalities=("atoms",),
        description="mlearn PBE set (Cu, Ge, Li, Mo, Ni, Si): 1,730 strained, surface, vacancy and "
        "AIMD cells with energies and forces",
        builder="matteralign.data.mlearn:build",
        size=1730,
        source="shared-data",
    ),
    DatasetSpec(
        name="monbtaw",
        domain="materials",
        modalities=("atoms",),
        description="Mo-Nb-Ta-W PBE set: 5,658 AIMD, strained, surface, solid-solution cells with "
        "energies and forces",
        builder="matteralign.data.monbtaw:build",
        size=5658,
        source="shared-data",
        default_n=1500,
    ),
    DatasetSpec(
        name="monbtaw-multinary",
        domain="materials",
        modalities=("atoms",),
        description="MoNbTaW test cells: 16 quaternary 128-atom + 240 binary cells, PBE labels",
        builder="matteralign.data.monbtaw:build_multinary",
        size=256,
        out_of_distribution=True,
        source="shared-data",
    ),
    DatasetSpec(
        name="crystals-perturbed",
        domain="materials",
        modalities=("atoms",),
        description="Elemental crystals rattled (0.05-0.5 Å), compressed, expanded and strained",
        builder="matteralign.data.ood_materials:build_perturbed",
        size=420,
        out_of_distribution=True,
        source="generated",
    ),
    DatasetSpec(
        name="crystals-exotic",
        domain="materials",
        modalities=("atoms",),
        description="Amorphous cells, 256-512-atom supercells, slabs, metal clusters, 2D sheets",
        builder="matteralign.data.ood_materials:build_exotic",
        size=66,
        out_of_distribution=True,
        source="generated",
    ),
    DatasetSpec(
        name="random-crystals",
        domain="materials",
        modalities=("atoms",),
        description="Random symmetric crystals (pyxtal) of lanthanides, actinides, noble gases",
        builder="matteralign.data.random_crystals:build",
        size=40,
        out_of_distribution=True,
        source="pyxtal",
    ),
    # --- proteins --------------------------------------------------------------------------
    DatasetSpec(
        name="ideal-backbones",
        domain="proteins",
        modalities=("sequence", "backbone"),
        description="60 natural proteome sequences (50-160 aa) on ideal PeptideBuilder backbones",
        builder="matteralign.data.ideal_backbones:build",
        size=60,
        source="generated",
    ),
    DatasetSpec(
        name="proteome",
        domain="proteins",
        modalities=("sequence",),
        description="Bacterial proteome sequences (30-1,000 aa) shipped in pyhmmer",
        builder="matteralign.data.proteome:build",
        size=2056,
        source="pyhmmer",
        default_n=300,
    ),
    DatasetSpec(
        name="pfam-domains",
        domain="proteins",
        modalities=("sequence", "backbone"),
        description="40 Pfam domain structures (PDB chains, 50-150 aa)",
        builder="matteralign.data.pfam:build",
        size=40,
        source="shared-data",
    ),
    DatasetSpec(
        name="cb513-ts115",
        domain="proteins",
        modalities=("sequence",),
        description="CB513 + TS115 PDB-derived sequences with DSSP secondary structure",
        builder="matteralign.data.ps4:build",
        size=626,
        source="shared-data",
    ),
    DatasetSpec(
        name="protein-sequences-ood",
        domain="proteins",
        modalities=("sequence",),
        description="Shuffled, uniform random and low-complexity protein sequences",
        builder="matteralign.data.ood_proteins:build_sequences",
        size=120,
        out_of_distribution=True,
        source="generated",
    ),
    DatasetSpec(
        name="protein-backbones-ood",
        domain="proteins",
        modalities=("sequence", "backbone"),
        description="Random sequences on single ideal helices, strands or PPII chains",
        builder="matteralign.data.ood_proteins:build_backbones",
        size=45,
        out_of_distribution=True,
        source="generated",
    ),
)

# The default study: offline sets always, shared-data sets when a data root is given.
DEFAULT_SUITE: tuple[str, ...] = (
    "qm9",
    "qm9-distorted",
    "matpes-pbe-refs",
    "matpes-r2scan-refs",
    "elemental-crystals",
    "aflow-prototypes",
    "dcdft",
    "crystals-perturbed",
    "crystals-exotic",
    "ideal-backbones",
    "protein-sequences-ood",
    "protein-backbones-ood",
)
DEFAULT_SUITE_SHARED: tuple[str, ...] = (
    "mlearn",
    "monbtaw-multinary",
    "pfam-domains",
    "cb513-ts115",
)


_FILES: dict[str, DatasetSpec] = {}


def _specs() -> dict[str, DatasetSpec]:
    return {**{spec.name: spec for spec in _BUILTIN}, **_FILES}


def register_file_dataset(
    name: str, path: Path | str, format: str | None = None, options: ReadOptions | None = None
) -> DatasetSpec:
    """Register the file or folder ``path`` as the dataset ``name`` of this process.

    After this, :func:`load_dataset` (and every command that builds datasets by name) reads the
    file. Registering a name again replaces the earlier file.

    Raises
    ------
    DatasetError
        If ``name`` is a built-in dataset's, or ``path`` does not exist.
    """
    if name in {spec.name for spec in _BUILTIN}:
        raise DatasetError(f"dataset name {name!r} (for {path}) is a built-in dataset's; give "
                           "the file's dataset another name (name: ...)")
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset {name!r}: file {path} does not exist")
    spec = DatasetSpec(name=name, domain=None, modalities=(), description=f"read from {path}",
                       builder="", size=0, source="file",
                       file=FileSource(path=path, format=format, options=options or ReadOptions()))
    _FILES[name] = spec
    return spec


def dataset_names() -> list[str]:
    """Names of every built-in dataset."""
    return [spec.name for spec in _BUILTIN]


def default_suite(data_root: Path | None = None) -> list[tuple[str, int | None]]:
    """``(name, n)`` of the default study's datasets.

    Offline sets always; the shared-data sets (mlearn, MoNbTaW, Pfam, CB513/TS115) join when
    ``data_root`` (or ``$MATTERALIGN_DATA_ROOT``) is given. ``n`` is the spec's ``default_n``.
    """
    from matteralign.data.sources import resolve_data_root

    names = list(DEFAULT_SUITE)
    if resolve_data_root(data_root) is not None:
        names += DEFAULT_SUITE_SHARED
    specs = _specs()
    return [(name, specs[name].default_n) for name in names]


def changed_file(name: str, stored_version: str) -> str | None:
    """For a file dataset whose embeddings were made from version ``stored_version``: the file,
    if it has changed since (its digest no longer starts the version); else None."""
    spec = get_dataset_spec(name)
    if spec.file is None:
        return None
    from matteralign.data.readers import version_prefix

    if stored_version.startswith(version_prefix(spec.file.path) + "-"):
        return None
    return str(spec.file.path)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of the built-in dataset ``name``.

    Raises
    ------
    DatasetError
        If no such dataset exists; the message lists the known names.
    """
    specs = _specs()
    if name not in specs:
        raise DatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(specs)} "
            "(see `matteralign datasets list`)"
        )
    return specs[name]


def load_dataset(
    name: str, n: int | None = None, seed: int = 0, data_root: Path | None = None
) -> Dataset:
    """Build the built-in dataset ``name``, optionally a seeded subset of ``n`` samples.

    Parameters
    ----------
    name : str
        A name from :func:`dataset_names`.
    n : int, optional
        Number of samples to keep (seeded random subset, original order kept).
    seed : int
        Seed of the subset and of any generated content.
    data_root : Path, optional
        Folder with downloaded data files, for sets whose ``source`` is ``"shared-data"``.
    """
    spec = get_dataset_spec(name)
    if spec.file is not None:
        from matteralign.data.readers import load_file

        return load_file(spec.file.path, format=spec.file.format, n=n, seed=seed, name=name,
                         options=spec.file.options)
    module_name, function_name = spec.builder.split(":")
    build = getattr(importlib.import_module(module_name), function_name)
    dataset: Dataset = build(n=n, seed=seed, data_root=data_root)
    return dataset
