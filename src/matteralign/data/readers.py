"""Datasets from local files in the formats of the paper's sources, with a seeded "sample N" option.

ASE db / LMDB (OMat24, OMol25, sAlex), MPtrj JSON, extxyz, CIF, PDB / mmCIF, FASTA, SMILES CSV.
A bad record inside a readable file is skipped and reported; an unreadable file is a DatasetError.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matteralign.data.fasta import read_fasta
from matteralign.data.protein_structure import read_chains
from matteralign.data.qm9 import canonical_smiles
from matteralign.data.sample import Dataset, DatasetCard, Domain, Label, Sample
from matteralign.data.structure_dicts import atoms_from_pymatgen_dict, attach_forces
from matteralign.errors import DatasetError

FORMATS = ("ase-db", "ase-lmdb", "mptrj", "extxyz", "cif", "pdb", "mmcif", "fasta", "smiles")
_SUFFIXES = {
    ".db": "ase-db",
    ".aselmdb": "ase-lmdb",
    ".lmdb": "ase-lmdb",
    ".json": "mptrj",
    ".extxyz": "extxyz",
    ".xyz": "extxyz",
    ".cif": "cif",
    ".pdb": "pdb",
    ".ent": "pdb",
    ".mmcif": "mmcif",
    ".fasta": "fasta",
    ".fa": "fasta",
    ".faa": "fasta",
    ".csv": "smiles",
    ".smi": "smiles",
}
ENERGY_FORCE_LABELS = [
    Label(name="energy", unit="eV", description="total energy as stored in the file"),
    Label(name="energy_per_atom", unit="eV/atom", description="energy / number of atoms"),
]


@dataclass
class ReadResult:
    """What :func:`read_file` returns.

    Attributes
    ----------
    dataset : Dataset
        The samples that were read (after the seeded subset).
    skipped : list of str
        One ``"<file>:<line or record>: <reason>"`` entry for every record left out.
    """

    dataset: Dataset
    skipped: list[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    """The format of ``path`` from its suffix (``.gz`` ignored) or, for a folder, its files.

    Raises
    ------
    DatasetError
        If the suffix is unknown; the message lists the known formats.
    """
    if path.is_dir():
        formats = {_SUFFIXES.get(_suffix(p)) for p in path.iterdir() if p.is_file()} - {None}
        if len(formats) != 1:
            raise DatasetError(
                f"folder {path}: cannot tell the format from its files "
                f"({sorted(formats) or 'none'}); pass format= one of {', '.join(FORMATS)}"
            )
        return formats.pop()  # type: ignore[return-value]
    suffix = _suffix(path)
    if suffix == ".cif" and _looks_like_mmcif(path):
        return "mmcif"
    if suffix not in _SUFFIXES:
        raise DatasetError(
            f"file {path}: unknown suffix {suffix!r}; pass format= one of {', '.join(FORMATS)}"
        )
    return _SUFFIXES[suffix]


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open_text(path: Path) -> str:
    """The whole text of a (possibly gzipped) file; DatasetError naming it if unreadable."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return handle.read()
        return path.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DatasetError(f"file {path}: cannot read ({type(error).__name__}: {error})") from None


def _looks_like_mmcif(path: Path) -> bool:
    head = _open_text(path)[:200_000]
    return "_atom_site.label_seq_id" in head or "_entity_poly" in head


def _choose(total: int, n: int | None, seed: int) -> np.ndarray:
    """Sorted record positions of a seeded sample of ``n`` out of ``total`` (all if n is None)."""
    if n is None or n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def _energy_labels(atoms: Any, energy: float | None) -> dict[str, float]:
    if energy is None or not np.isfinite(energy):
        return {}
    return {"energy": float(energy), "energy_per_atom": float(energy) / max(len(atoms), 1)}


# --- atoms formats -------------------------------------------------------------------------


def _read_ase_db(path: Path, n: int | None, seed: int) -> tuple[list[Sample], list[str]]:
    import ase.db

    try:
        db = ase.db.connect(str(path))
        ids = [row.id for row in db.select(include_data=False)]
    except Exception as error:  # noqa: BLE001 - sqlite3 / json errors
        raise DatasetError(
            f"ASE database {path}: cannot open ({type(error).__name__}: {error})"
        ) from None
    samples, skipped = [], []
    for position in _choose(len(ids), n, seed):
        row_id = ids[position]
        try:
            row = db.get(id=row_id)
            atoms = row.toatoms()
            energy = row.get("energy")
            forces = row.get("forces")
        except Exception as error:  # noqa: BLE001
            skipped.append(f"{path}: row {row_id}: {type(error).__name__}: {error}")
            continue
        atoms.calc = None
        if forces is not None:
            attach_forces(atoms, forces, f"{path} row {row_id}")
        sid = row.get("sid")
        sample_id = f"row{row_id}-{sid}" if sid else f"row{row_id}"
        samples.append(Sample(id=sample_id, atoms=atoms, labels=_energy_labels(atoms, energy)))
    return samples, skipped


def _read_ase_lmdb(path: Path, n: int | None, seed: int) -> tuple[list[Sample], list[str]]:
    """fairchem's ``.aselmdb`` files: keys are row ids, values zlib-compressed JSON row dicts.

    Not tested against a real OMat24 file here (the ``lmdb`` package is not installed).
    """
    try:
        import lmdb
    except ImportError:
        raise DatasetError(
            f"file {path} is an ASE LMDB database (OMat24/OMol25/sAlex); reading it needs the "
            "`lmdb` package: `pip install lmdb`"
        ) from None
    from ase.db.row import AtomsRow
    from ase.io.jsonio import decode

    try:
        env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, readahead=False)
        with env.begin() as txn:
            keys = [key for key, _ in txn.cursor() if key.decode("ascii", "replace").isdigit()]
    except Exception as error:  # noqa: BLE001 - lmdb.Error and friends
        raise DatasetError(
            f"ASE LMDB {path}: cannot open ({type(error).__name__}: {error})"
        ) from None
    keys.sort(key=lambda key: int(key))
    samples, skipped = [], []
    with env.begin() as txn:
        for position in _choose(len(keys), n, seed):
            key = keys[position]
            try:
                row = AtomsRow(decode(zlib.decompress(txn.get(key)).decode("utf-8")))
                atoms = row.toatoms()
                energy, forces = row.get("energy"), row.get("forces")
            except Exception as error:  # noqa: BLE001
                skipped.append(f"{path}: record {key.decode()}: {type(error).__name__}: {error}")
                continue
            atoms.calc = None
            if forces is not None:
                attach_forces(atoms, forces, f"{path} record {key.decode()}")
            labels = _energy_labels(atoms, energy)
            samples.append(Sample(id=f"row{key.decode()}", atoms=atoms, labels=labels))
    env.close()
    return samples, skipped


def _read_mptrj(path: Path, n: int | None, seed: int) -> tuple[list[Sample], list[str]]:
    """MPtrj JSON: ``{mp_id: {frame_id: {"structure", "corrected_total_energy", "force"}}}``."""
    try:
        data = json.loads(_open_text(path))
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"MPtrj file {path}:{error.lineno}: invalid JSON ({error.msg})"
        ) from None
    if not isinstance(data, dict):
        raise DatasetError(f"MPtrj file {path}: expected a JSON object of mp-id -> frames")
    frames = [
        (mp_id, frame_id, frame)
        for mp_id, group in data.items()
        if isinstance(group, dict)
        for frame_id, frame in group.items()
    ]
    if not frames:
        raise DatasetError(f"MPtrj file {path}: no frames")
    samples, skipped = [], []
    for position in _choose(len(frames), n, seed):
        mp_id, frame_id, frame = frames[position]
        where = f"{path}: frame {frame_id}"
        try:
            atoms = atoms_from_pymatgen_dict(frame["structure"], where)
            energy = frame.get("corrected_total_energy", frame.get("uncorrected_total_energy"))
            if frame.get("force") is not None:
                attach_forces(atoms, frame["force"], where)
            if frame.get("stress") is not None:
                atoms.info["stress_source"] = np.asarray(frame["stress"], dtype=np.float64)
        except (DatasetError, KeyError, TypeError, ValueError) as error:
            skipped.append(f"{where}: {error}")
            continue
        atoms.info["mp_id"] = mp_id
        samples.append(Sample(id=str(frame_id), atoms=atoms, labels=_energy_labels(atoms, energy)))
    return samples, skipped


def _extxyz_frames(path: Path, text: str) -> Iterator[tuple[int, str | None, str]]:
    """``(first line number, frame text or None, reason)`` for each frame of an (ext)xyz file."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            count = int(lines[i].split()[0])
        except ValueError:
            yield (
                i + 1,
                None,
                f"expected an atom count, found {lines[i][:40]!r}; rest of file skipped",
            )
            return
        end = i + 2 + count
        if end > len(lines):
            yield (
                i + 1,
                None,
                f"truncated frame: {count} atoms announced, {len(lines) - i - 2} lines left",
            )
            return
        yield i + 1, "\n".join(lines[i:end]) + "\n", ""
        i = end


def _read_extxyz(path: Path, n: int | None, seed: int) -> tuple[list[Sample], list[str]]:
    from ase.io import read

    text = _open_text(path)
    frames = list(_extxyz_frames(path, text))
    good = [(line, chunk) for line, chunk, _ in frames if chunk is not None]
    skipped = [f"{path}:{line}: {reason}" for line, chunk, reason in frames if chunk is None]
    if not good:
        raise DatasetError(
            f"extxyz file {path}: no readable frame" + (f" ({skipped[0]})" if skipped else "")
        )
    samples = []
    for position in _choose(len(good), n, seed):
        line, chunk = good[position]
        try:
            atoms = read(io.StringIO(chunk), format="extxyz")
        except Exception as error:  # noqa: BLE001 - ase raises many types for bad frames
            skipped.append(f"{path}:{line}: {type(error).__name__}: {error}")
            continue
        energy, forces = None, None
        if atoms.calc is not None:
            energy = atoms.calc.results.get("energy")
            forces = atoms.calc.results.get("forces")
            atoms.calc = None
        energy = atoms.info.pop("energy", energy)
        if forces is not None:
            attach_forces(atoms, forces, f"{path}:{line}")
        sample_id = str(atoms.info.get("id", atoms.info.get("name", f"frame{position}")))
        samples.append(Sample(id=sample_id, atoms=atoms, labels=_energy_labels(atoms, energy)))
    return samples, skipped


def _read_cif(path: Path, n: int | None, seed: int) -> tuple[list[Sample], list[str]]:
    """Crystal CIF: every ``data_`` block parsed on its own, so one bad block is skipped."""
    from ase.io import read

    text = _open_text(path)
    starts = [i for i, line in enumerate(text.splitlines()) if line.lower().startswith("data_")]
    if not starts:
        raise DatasetError(f"CIF file {path}: no data_ block")
    lines = text.splitlines()
    blocks = [
        (s + 1, "\n".join(lines[s:e]) + "\n")
        for s, e in zip(starts, starts[1:] + [len(lines)], strict=True)
    ]
    samples, skipped = [], []
    for position in _choose(len(blocks), n, seed):
        line, block = blocks[position]
        name = lines[line - 1][5:].strip() or f"block{position}"
        try:
            atoms = read(io.StringIO(block), format="cif")
        except Exception as error:  # noqa: BLE001
            skipped.append(f"{path}:{line}: block {name!r}: {type(error).__name__}: {error}")
            continue
        samples.append(Sample(id=name if len(blocks) > 1 else path.name.split(".")[0], atoms=atoms))
    return samples, skipped


# --- protein and molecule formats ------------------------------------------------------------


def _read_structure(path: Path, n: int | None, seed: int) -> tuple[list[Sample], list[str]]:
    stem = path.name.split(".")[0]
    samples = [
        Sample(id=f"{stem}_{chain}", sequence=protein.sequence, protein=protein)
        for chain, protein in read_chains(path)
    ]
    return [samples[i] for i in _choose(len(samples), n, seed)], []


def _read_fasta(path: Path, n: int | None, seed: int) -> tuple[list[Sample], list[str]]:
    records, skipped = read_fasta(path)
    if not records:
        raise DatasetError(f"FASTA file {path}: no valid record ({skipped[0]})")
    samples = []
    for position in _choose(len(records), n, seed):
        header, sequence, _ = records[position]
        samples.append(
            Sample(id=header.split()[0] if header else f"record{position}", sequence=sequence)
        )
    return samples, skipped


def _read_smiles(path: Path, n: int | None, seed: int) -> tuple[list[Sample], list[str]]:
    """SMILES CSV (a ``smiles`` column, optional ``id``/``name``, numeric columns as labels) or
    ``.smi`` (SMILES then an optional name per line)."""
    text = _open_text(path)
    if not text.strip():
        raise DatasetError(f"SMILES file {path} is empty")
    rows: list[tuple[int, str, str, dict[str, float]]] = []
    skipped: list[str] = []
    if _suffix(path) == ".smi":
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if fields and not fields[0].startswith("#"):
                rows.append(
                    (number, fields[0], fields[1] if len(fields) > 1 else f"line{number}", {})
                )
    else:
        reader = csv.DictReader(io.StringIO(text))
        columns = {c.strip().lower(): c for c in reader.fieldnames or []}
        smiles_column = columns.get("smiles")
        if smiles_column is None:
            raise DatasetError(
                f"SMILES CSV {path}:1: no 'smiles' column (columns: {reader.fieldnames})"
            )
        id_column = columns.get("id") or columns.get("name")
        for number, record in enumerate(reader, start=2):
            labels = {}
            for column, value in record.items():
                if column in (smiles_column, id_column) or column is None:
                    continue
                try:
                    labels[column.strip()] = float(value)
                except (TypeError, ValueError):
                    pass
            name = (record.get(id_column) or "").strip() if id_column else ""
            rows.append(
                (number, (record.get(smiles_column) or "").strip(), name or f"row{number}", labels)
            )
    samples = []
    for position in _choose(len(rows), n, seed):
        number, smiles, name, labels = rows[position]
        canonical = canonical_smiles(smiles) if smiles else None
        if canonical is None:
            skipped.append(f"{path}:{number}: invalid SMILES {smiles!r}")
            continue
        samples.append(Sample(id=name, smiles=canonical, labels=labels))
    return samples, skipped


_READERS: dict[str, Callable[[Path, int | None, int], tuple[list[Sample], list[str]]]] = {
    "ase-db": _read_ase_db,
    "ase-lmdb": _read_ase_lmdb,
    "mptrj": _read_mptrj,
    "extxyz": _read_extxyz,
    "cif": _read_cif,
    "pdb": _read_structure,
    "mmcif": _read_structure,
    "fasta": _read_fasta,
    "smiles": _read_smiles,
}


def _unique_ids(samples: list[Sample]) -> list[Sample]:
    """Samples with repeated ids renamed ``<id>-2``, ``<id>-3``, ... in order."""
    seen: dict[str, int] = {}
    out = []
    for sample in samples:
        count = seen.get(sample.id, 0) + 1
        seen[sample.id] = count
        if count > 1:
            sample = Sample(
                id=f"{sample.id}-{count}",
                atoms=sample.atoms,
                smiles=sample.smiles,
                sequence=sample.sequence,
                protein=sample.protein,
                labels=sample.labels,
            )
        out.append(sample)
    return out


def _domain(format: str, samples: list[Sample]) -> Domain:
    if format in ("pdb", "mmcif", "fasta"):
        return "proteins"
    if format == "smiles":
        return "molecules"
    periodic = [s.atoms is not None and bool(s.atoms.pbc.any()) for s in samples]
    return "materials" if any(periodic) else "molecules"


def read_file(
    path: Path | str,
    format: str | None = None,
    n: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> ReadResult:
    """Read a local file (or a folder of files of one format) into a Dataset, with a report.

    Parameters
    ----------
    path : Path
        File, or folder whose files all have one format (read in name order).
    format : str, optional
        One of :data:`FORMATS`; detected from the suffix when None.
    n : int, optional
        Seeded sample of ``n`` records; for ASE db, LMDB, MPtrj, extxyz and CIF only the
        chosen records are parsed. A folder is sampled after reading every file.
    seed : int
        Seed of the sample.
    name : str, optional
        Dataset name; defaults to the file name without suffixes.

    Returns
    -------
    ReadResult
        The dataset and the skipped records with reasons. Energies are labels ``energy`` (eV) and
        ``energy_per_atom``; forces (N, 3) eV/Å go to ``atoms.arrays["forces"]``.

    Raises
    ------
    DatasetError
        If the path is missing, unreadable, empty or truncated before any record (the message
        names the file and line), or its format is unknown.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"file {path} does not exist")
    format = format or detect_format(path)
    if format not in _READERS:
        raise DatasetError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    if path.is_file() and path.stat().st_size == 0:
        raise DatasetError(f"file {path} is empty")
    reader = _READERS[format]
    if path.is_dir():
        accepted = {format, "cif"} if format == "mmcif" else {format}
        files = sorted(
            p for p in path.iterdir() if p.is_file() and _SUFFIXES.get(_suffix(p)) in accepted
        )
        samples, skipped = [], []
        for file in files:
            try:
                more, more_skipped = reader(file, None, seed)
            except DatasetError as error:
                skipped.append(str(error))
                continue
            samples.extend(more)
            skipped.extend(more_skipped)
        if not samples:
            raise DatasetError(
                f"folder {path}: no readable {format} file"
                + (f" ({skipped[0]})" if skipped else "")
            )
        samples = [samples[i] for i in _choose(len(samples), n, seed)]
    else:
        samples, skipped = reader(path, n, seed)
    if not samples:
        raise DatasetError(
            f"file {path}: no readable record" + (f" ({skipped[0]})" if skipped else "")
        )
    samples = _unique_ids(samples)
    has_energy = any("energy" in s.labels for s in samples)
    labels = ENERGY_FORCE_LABELS if has_energy else []
    if format == "smiles":
        keys = sorted({k for s in samples for k in s.labels})
        labels = [Label(name=k, unit="as in file") for k in keys]
    description = f"{len(samples)} records read from {path.name} ({format})"
    if skipped:
        description += (
            f"; {len(skipped)} records skipped (see ReadResult.skipped), first: {skipped[0]}"
        )
    card = DatasetCard(
        name=name or path.name.split(".")[0],
        version=f"file-seed{seed}" + (f"-n{n}" if n is not None else ""),
        domain=_domain(format, samples),
        description=description,
        provenance=f"local file {path.resolve()}",
        license="as of the source file",
        labels=labels,
    )
    return ReadResult(dataset=Dataset(card, samples), skipped=skipped)


def load_file(
    path: Path | str,
    format: str | None = None,
    n: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> Dataset:
    """:func:`read_file` without the report (the skipped count is in ``card.description``)."""
    return read_file(path, format=format, n=n, seed=seed, name=name).dataset
