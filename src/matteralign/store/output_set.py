"""Outputs written as one set: all files of a command appear together, or none claims to be current.

A set is staged in a hidden folder, then moved into place; its record ``<name>.manifest.json``
(the files with their SHA-256 and the fingerprint of what they were computed from) is removed
before the first file is replaced and written after the last, so a set interrupted part-way has
no record, and :func:`read_output_set` says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from matteralign.errors import StoreError
from matteralign.store.embedding_store import atomic_write_bytes


def record_path(folder: Path, name: str) -> Path:
    """Where the record of the set ``name`` under ``folder`` lives."""
    return Path(folder) / f"{name}.manifest.json"


class OutputSet:
    """Stage files under :attr:`root`, then :meth:`commit` them into ``folder`` as one set.

    Parameters
    ----------
    folder : Path
        Where the files go (paths are kept relative to it).
    name : str
        The set's name (``alignment``, ``report``); its record is ``<name>.manifest.json``.

    Examples
    --------
    >>> with OutputSet(out, "report") as staged:          # doctest: +SKIP
    ...     atomic_write_bytes(staged.root / "report.html", page)
    ...     staged.commit({"config": "smoke"})

    Leaving the ``with`` block without :meth:`commit` (an error) discards the staged files and
    leaves the previous set as it was.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = Path(folder)
        self.name = name
        self.root: Path = Path()

    def __enter__(self) -> OutputSet:
        """Start a staging folder; staging folders of this set left by a killed command are
        removed (the caller holds the store lock, so no other command is writing this set)."""
        for leftover in self.folder.glob(f".{self.name}.*.staging"):
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.root = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".staging",
                                              dir=self.folder))
        except OSError as error:
            raise StoreError(f"cannot write into {self.folder} ({error.strerror}); check that "
                             "it is a writable folder") from None
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def staged_files(self) -> list[str]:
        """Paths of the staged files, relative to the folder, sorted."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def commit(self, fingerprint: dict[str, Any] | None = None) -> Path:
        """Move the staged files into place as one set; return the set's record.

        Files of the previous set (as its record lists them) that the new set lacks are
        removed, so nothing of an older result stays behind claiming to be current.
        """
        record = record_path(self.folder, self.name)
        previous = read_record(self.folder, self.name)
        record.unlink(missing_ok=True)  # from here until the end, the set is marked unfinished
        files = self.staged_files()
        hashes = {}
        for relative in files:
            source, target = self.root / relative, self.folder / relative
            hashes[relative] = _sha256(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        for relative in (previous or {}).get("files", {}):
            if relative not in hashes:
                remove_output(self.folder, relative)
        body = {"set": self.name, "files": hashes, "fingerprint": fingerprint or {}}
        atomic_write_bytes(record, json.dumps(body, indent=1, sort_keys=True).encode())
        return record


def remove_output_set(folder: Path, name: str, also: tuple[str, ...] = ()) -> list[str]:
    """Remove the set ``name`` (its record first, then the files it lists, then ``also``, paths
    relative to ``folder`` that older versions wrote without a record); return what went."""
    previous = read_record(folder, name)
    record_path(folder, name).unlink(missing_ok=True)
    removed = []
    for relative in [*(previous or {}).get("files", {}), *also]:
        if remove_output(Path(folder), relative):
            removed.append(relative)
    return removed


def remove_output(folder: Path, relative: str) -> bool:
    """Delete ``folder/relative`` and the folders it leaves empty (up to ``folder``)."""
    path = Path(folder) / relative
    if not path.is_file():
        return False
    path.unlink()
    parent = path.parent
    while parent != Path(folder) and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return True


def read_record(folder: Path, name: str) -> dict[str, Any] | None:
    """The record of the set ``name`` under ``folder``; None if there is none (or unreadable)."""
    try:
        body = json.loads(record_path(folder, name).read_text())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) and isinstance(body.get("files"), dict) else None


def read_output_set(folder: Path, name: str) -> dict[str, Any]:
    """The record of a complete set, every file checked against its SHA-256.

    Raises
    ------
    StoreError
        If the set has no record (never written, or interrupted part-way), or a file it lists
        is missing or changed.
    """
    body = read_record(folder, name)
    if body is None:
        raise StoreError(f"{record_path(folder, name)} is missing: the {name} outputs in "
                         f"{folder} are incomplete (interrupted) or were never written; rerun "
                         "the command that writes them")
    for relative, digest in body["files"].items():
        path = Path(folder) / relative
        if not path.is_file() or _sha256(path) != digest:
            raise StoreError(f"{path} is missing or changed since the {name} outputs were "
                             "written; rerun the command that writes them")
    return body


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
