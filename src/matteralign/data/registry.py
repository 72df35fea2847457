"""Registry of the built-in datasets: names, what they hold, and the function that builds each.

Listing reads only this table; building imports the source package when asked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from matteralign.data.sample import Dataset, Domain, Modality
from matteralign.errors import DatasetError


@dataclass(frozen=True)
class DatasetSpec:
    """A built-in dataset: what it is and how to build it.

    Attributes
    ----------
    name : str
        Registry name, used in configs and on the command line.
    domain : {"molecules", "materials", "proteins"}
    modalities : tuple of str
        Modalities every sample has.
    description : str
    builder : str
        ``"module:function"``; the function takes ``(n, seed, data_root)`` and returns a Dataset.
    size : int
        Number of samples in the full set.
    out_of_distribution : bool
        Whether the set is built to lie outside the training data of the usual models.
    source : str
        Where it comes from; ``"shared-data"`` sets need files under a data root.
    """

    name: str
    domain: Domain
    modalities: tuple[Modality, ...]
    description: str
    builder: str
    size: int
    out_of_distribution: bool = False
    source: str = "generated"


_BUILTIN: tuple[DatasetSpec, ...] = (
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
)


def _specs() -> dict[str, DatasetSpec]:
    return {spec.name: spec for spec in _BUILTIN}


def dataset_names() -> list[str]:
    """Names of every built-in dataset."""
    return list(_specs())


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
    module_name, function_name = spec.builder.split(":")
    build = getattr(importlib.import_module(module_name), function_name)
    dataset: Dataset = build(n=n, seed=seed, data_root=data_root)
    return dataset
