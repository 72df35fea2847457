"""Datasets from local files in the formats of the paper's sources, with a seeded "sample N" option.

ASE db / LMDB (OMat24, OMol25, sAlex), MPtrj JSON, extxyz, CIF, PDB / mmCIF, FASTA, SMILES CSV,
each read with its field's library (ASE, Biopython, biotite, RDKit). A bad record inside a
readable file is skipped and reported with its record number and reason; a file with no readable
record is one DatasetError naming the file and the first bad record.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from matteralign.data.fasta import read_fasta
from matteralign.data.protein_structure import read_chains
from matteralign.data.qm9 import canonical_smiles
from matteralign.data.sample import Dataset, DatasetCard, Domain, Label, Sample, SourceFile
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
MAX_FORCE_LABEL = Label(
    name="max_force", unit="eV/Å",
    description="largest per-atom force norm; the (n_atoms, 3) forces are atoms.arrays['forces']",
)


class ReadOptions(BaseModel):
    """How to read a file: which keys or columns hold ids, SMILES, labels, energies and forces.

    Each option applies to some formats only (:data:`OPTIONS_BY_FORMAT`); giving one to another
    format is an error, never ignored.

    Attributes
    ----------
    id_key : str, optional
        extxyz ``info`` key, ASE db / LMDB key, or CSV column holding each record's id.
    smiles_column : str, optional
        CSV column holding the SMILES (default: the column named ``smiles``, any case).
    labels : list of str, optional
        CSV columns, extxyz ``info`` keys or ASE db keys read as per-sample float labels. For a
        CSV the default is every numeric column; for atoms formats, energy and forces only.
    units : dict of str to str
        Unit of each label (default ``"as in file"``).
    energy_key, forces_key : str, optional
        Where the total energy (eV) and the (n_atoms, 3) forces (eV/Å) are: an extxyz ``info``
        / ``arrays`` key, an ASE db key or ``data`` entry, an MPtrj frame key. Default: the
        calculator results (``energy``, ``forces``), MPtrj ``corrected_total_energy`` / ``force``.
    frames : str, optional
        Which frames of an extxyz trajectory, in ASE's index syntax (``"::10"``, ``"0:100"``,
        ``"-1"``), counted over every frame of the file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id_key: str | None = None
    smiles_column: str | None = None
    labels: list[str] | None = None
    units: dict[str, str] = {}
    energy_key: str | None = None
    forces_key: str | None = None
    frames: str | None = None

    def given(self) -> set[str]:
        """Names of the options set to something other than their default."""
        return set(self.model_dump(exclude_defaults=True))


_ATOMS_DB_OPTIONS = {"id_key", "labels", "units", "energy_key", "forces_key"}
OPTIONS_BY_FORMAT: dict[str, set[str]] = {
    "ase-db": _ATOMS_DB_OPTIONS,
    "ase-lmdb": _ATOMS_DB_OPTIONS,
    "mptrj": {"energy_key", "forces_key"},
    "extxyz": _ATOMS_DB_OPTIONS | {"frames"},
    "cif": set(),
    "pdb": set(),
    "mmcif": set(),
    "fasta": set(),
    "smiles": {"id_key", "smiles_column", "labels", "units"},
}


@dataclass
class ReadResult:
    """What :func:`read_file` returns.

    Attributes
    ----------
    dataset : Dataset
        The samples that were read (after the seeded subset).
    skipped : list of str
        One ``"<file>: <record>: <reason>"`` entry for every record left out.
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


#: A reader's choice of records: the number of records in the file -> the sorted positions to
#: parse (readers parse only those where the format allows).
Pick = Callable[[int], np.ndarray]


def file_record(path: Path) -> list[SourceFile]:
    """Path, size and SHA-256 of ``path`` (of every file, in name order, for a folder)."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    records = []
    for file in files:
        with file.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        records.append(SourceFile(path=str(file.resolve()), size=file.stat().st_size,
                                  sha256=digest))
    return records


def files_digest(files: list[SourceFile]) -> str:
    """SHA-256 of a file, or over the digests of a folder's files in name order."""
    if len(files) == 1:
        return files[0].sha256
    return hashlib.sha256("".join(f.sha256 for f in files).encode()).hexdigest()


def version_prefix(path: Path | str) -> str:
    """``"file-<first 12 hex digits of the digest>"``: how a dataset read from ``path`` now
    begins its version; a stored version that does not begin so was read from another file."""
    return f"file-{files_digest(file_record(Path(path)))[:12]}"


def _physical_labels(
    atoms: Any, energy: Any, forces: Any, where: str
) -> dict[str, float]:
    """Energy labels and the max-force label; forces go to ``atoms.arrays["forces"]``."""
    labels: dict[str, float] = {}
    if energy is not None:
        value = float(np.asarray(energy, dtype=np.float64))
        if not np.isfinite(value):
            raise DatasetError(f"{where}: energy is {value}")
        labels = {"energy": value, "energy_per_atom": value / max(len(atoms), 1)}
    if forces is not None:
        attach_forces(atoms, forces, where)
        norms = np.linalg.norm(atoms.arrays["forces"], axis=1)
        if not np.isfinite(norms).all():
            raise DatasetError(f"{where}: forces are not finite")
        labels["max_force"] = float(norms.max()) if len(norms) else 0.0
    return labels


def _float_labels(source: Callable[[str], Any], keys: list[str] | None, where: str
                  ) -> dict[str, float]:
    """The labels ``keys`` read through ``source(key)`` (None: absent), as floats."""
    labels = {}
    for key in keys or []:
        value = source(key)
        if value is None:
            continue
        try:
            labels[key] = float(value)
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: label {key!r} is {value!r}, not a number") from None
    return labels


# --- atoms formats -------------------------------------------------------------------------


def _row_sample(row: Any, record: str, options: ReadOptions, where: str) -> Sample:
    """A Sample from an ASE ``AtomsRow`` (ASE db and fairchem ASE-LMDB rows)."""
    data = row.get("data") or {}

    def lookup(key: str) -> Any:
        value = row.get(key)
        return data.get(key) if value is None else value

    atoms = row.toatoms()
    atoms.calc = None
    energy = lookup(options.energy_key) if options.energy_key else row.get("energy")
    forces = lookup(options.forces_key) if options.forces_key else row.get("forces")
    if options.energy_key and energy is None:
        raise DatasetError(f"{where}: no key {options.energy_key!r}")
    labels = _physical_labels(atoms, energy, forces, where)
    labels.update(_float_labels(lookup, options.labels, where))
    if options.id_key:
        value = lookup(options.id_key)
        if value is None:
            raise DatasetError(f"{where}: no id key {options.id_key!r}")
        sample_id = str(value)
    else:
        sid = row.get("sid")
        sample_id = f"{record}-{sid}" if sid else record
    return Sample(id=sample_id, atoms=atoms, labels=labels)


def _read_ase_db(path: Path, pick: Pick, options: ReadOptions
                 ) -> tuple[list[Sample], list[str]]:
    db, ids = _ase_db_ids(path)
    samples, skipped = [], []
    for position in pick(len(ids)):
        row_id = ids[position]
        where = f"{path}: row {row_id}"
        try:
            samples.append(_row_sample(db.get(id=row_id), f"row{row_id}", options, where))
        except Exception as error:  # noqa: BLE001 - a bad row is skipped with its reason
            skipped.append(_reason(where, error))
    return samples, skipped


def _ase_db_ids(path: Path) -> tuple[Any, list[int]]:
    import ase.db

    try:
        db = ase.db.connect(str(path))
        return db, [row.id for row in db.select(include_data=False)]
    except Exception as error:  # noqa: BLE001 - sqlite3 / json errors
        raise DatasetError(
            f"ASE database {path}: cannot open ({type(error).__name__}: {error})"
        ) from None


def _reason(where: str, error: Exception) -> str:
    """``"<where>: <reason>"``; our own errors already start with ``where``."""
    if isinstance(error, DatasetError) and str(error).startswith(where):
        return str(error)
    return f"{where}: {type(error).__name__}: {error}"


def _read_ase_lmdb(path: Path, pick: Pick, options: ReadOptions
                   ) -> tuple[list[Sample], list[str]]:
    """fairchem's ASE-LMDB files (OMat24, OMol25, sAlex): keys are row ids, values
    zlib-compressed JSON row dicts (as fairchem's ``LMDBDatabase`` writes them)."""
    from ase.db.row import AtomsRow
    from ase.io.jsonio import decode

    env, keys = _lmdb_keys(path)
    samples, skipped = [], []
    with env.begin() as txn:
        for position in pick(len(keys)):
            key = keys[position].decode()
            where = f"{path}: record {key}"
            try:
                row = AtomsRow(decode(zlib.decompress(txn.get(keys[position])).decode("utf-8")))
                samples.append(_row_sample(row, f"row{key}", options, where))
            except Exception as error:  # noqa: BLE001 - a bad record is skipped with its reason
                skipped.append(_reason(where, error))
    env.close()
    return samples, skipped


def _lmdb_keys(path: Path) -> tuple[Any, list[bytes]]:
    """The open environment and the row keys (digits, in numeric order) of an ASE-LMDB file;
    only keys are read, not the rows."""
    try:
        import lmdb
    except ImportError:
        raise DatasetError(
            f"file {path} is an ASE LMDB database (OMat24/OMol25/sAlex); reading it needs the "
            "`lmdb` package: `pip install lmdb`"
        ) from None
    try:
        env = lmdb.open(str(path), subdir=path.is_dir(), readonly=True, lock=False,
                        readahead=False)
        with env.begin() as txn:
            keys = [key for key in txn.cursor().iternext(keys=True, values=False)
                    if key.decode("ascii", "replace").isdigit()]
    except Exception as error:  # noqa: BLE001 - lmdb.Error and friends
        raise DatasetError(
            f"ASE LMDB {path}: cannot open ({type(error).__name__}: {error})"
        ) from None
    keys.sort(key=lambda key: int(key))
    return env, keys


def _read_mptrj(path: Path, pick: Pick, options: ReadOptions
                ) -> tuple[list[Sample], list[str]]:
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
    for position in pick(len(frames)):
        mp_id, frame_id, frame = frames[position]
        where = f"{path}: frame {frame_id}"
        try:
            atoms = atoms_from_pymatgen_dict(frame["structure"], where)
            if options.energy_key:
                energy = frame[options.energy_key]
            else:
                energy = frame.get("corrected_total_energy", frame.get("uncorrected_total_energy"))
            labels = _physical_labels(atoms, energy, frame.get(options.forces_key or "force"),
                                      where)
            if frame.get("stress") is not None:
                atoms.info["stress_source"] = np.asarray(frame["stress"], dtype=np.float64)
        except (DatasetError, KeyError, TypeError, ValueError) as error:
            skipped.append(_reason(where, error))
            continue
        atoms.info["mp_id"] = mp_id
        samples.append(Sample(id=str(frame_id), atoms=atoms, labels=labels))
    return samples, skipped


def _iread_frames(path: Path, format: str) -> Iterator[tuple[int, Any, str]]:
    """``(frame number, atoms or None, reason)`` for every frame, through ``ase.io.iread``.

    A frame that ASE cannot parse is reported and reading restarts after it; a broken frame
    header (atom count) ends the file, since the frames after it cannot be located.
    """
    from ase.io import iread

    start, previous, stuck = 0, "", 0
    while True:
        frame = start
        try:
            for atoms in iread(str(path), index=f"{start}:", format=format):
                yield frame, atoms, ""
                frame += 1
            return
        except Exception as error:  # noqa: BLE001 - ase raises many types for bad frames
            reason = f"{type(error).__name__}: {error}".strip()
            stuck = stuck + 1 if frame == start and reason == previous else 0
            if "header" in str(error).lower() or stuck >= _MAX_STUCK:
                yield frame, None, f"{reason}; the frames after it cannot be located, not read"
                return
            yield frame, None, reason
            previous, start = reason, frame + 1


_MAX_STUCK = 20  # restarts failing at once with one message: the file's framing is broken


def _read_extxyz(path: Path, pick: Pick, options: ReadOptions
                 ) -> tuple[list[Sample], list[str]]:
    from ase.io.formats import string2index

    frames = list(_iread_frames(path, "extxyz"))
    if options.frames is not None:
        numbers = list(range(len(frames)))
        try:
            index = string2index(options.frames)
            chosen = set(numbers[index] if isinstance(index, slice) else [numbers[index]])
        except (ValueError, IndexError):
            raise DatasetError(f"file {path}: frames {options.frames!r} is not an index like "
                               f"'::10', '0:100' or '-1' into its {len(frames)} frames") from None
        frames = [f for f in frames if f[0] in chosen]
    skipped = [f"{path}: frame {number}: {reason}" for number, atoms, reason in frames
               if atoms is None]
    good = [(number, atoms) for number, atoms, _ in frames if atoms is not None]
    samples = []
    for position in pick(len(good)):
        number, atoms = good[position]
        where = f"{path}: frame {number}"
        try:
            samples.append(_extxyz_sample(atoms, number, options, where))
        except Exception as error:  # noqa: BLE001 - a bad frame is skipped with its reason
            skipped.append(_reason(where, error))
    return samples, skipped


def _extxyz_sample(atoms: Any, number: int, options: ReadOptions, where: str) -> Sample:
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    atoms.calc = None

    def lookup(key: str) -> Any:
        for source in (results, atoms.info, atoms.arrays):
            if key in source:
                return source[key]
        return None

    energy = lookup(options.energy_key) if options.energy_key else lookup("energy")
    if options.energy_key and energy is None:
        raise DatasetError(f"{where}: no key {options.energy_key!r}")
    forces = lookup(options.forces_key) if options.forces_key else results.get("forces")
    atoms.info.pop("energy", None)
    labels = _physical_labels(atoms, energy, forces, where)
    labels.update(_float_labels(lambda key: atoms.info.get(key), options.labels, where))
    if options.id_key:
        if options.id_key not in atoms.info:
            raise DatasetError(f"{where}: no id key {options.id_key!r} in the comment line")
        sample_id = str(atoms.info[options.id_key])
    else:
        sample_id = str(atoms.info.get("id", atoms.info.get("name", f"frame{number}")))
    return Sample(id=sample_id, atoms=atoms, labels=labels)


def _read_cif(path: Path, pick: Pick, options: ReadOptions
              ) -> tuple[list[Sample], list[str]]:
    """Crystal CIF through ``ase.io.cif.parse_cif``: one bad ``data_`` block is skipped."""
    from ase.io.cif import parse_cif

    try:
        with io.StringIO(_open_text(path)) as handle:
            blocks = list(parse_cif(handle))
    except DatasetError:
        raise
    except Exception as error:  # noqa: BLE001 - the CIF grammar is broken before any block
        raise DatasetError(f"CIF file {path}: cannot parse ({type(error).__name__}: {error})"
                           ) from None
    if not blocks:
        raise DatasetError(f"CIF file {path}: no data_ block")
    samples, skipped = [], []
    for position in pick(len(blocks)):
        block = blocks[position]
        name = block.name or f"block{position}"
        where = f"{path}: block {position + 1} ({name!r})"
        try:
            atoms = block.get_atoms()
        except Exception as error:  # noqa: BLE001
            skipped.append(_reason(where, error))
            continue
        samples.append(Sample(id=name if len(blocks) > 1 else path.name.split(".")[0], atoms=atoms))
    return samples, skipped


# --- protein and molecule formats ------------------------------------------------------------


def _read_structure(path: Path, pick: Pick, options: ReadOptions
                    ) -> tuple[list[Sample], list[str]]:
    stem = path.name.split(".")[0]
    samples = [
        Sample(id=f"{stem}_{chain}", sequence=protein.sequence, protein=protein)
        for chain, protein in read_chains(path)
    ]
    return [samples[i] for i in pick(len(samples))], []


def _read_fasta(path: Path, pick: Pick, options: ReadOptions
                ) -> tuple[list[Sample], list[str]]:
    records, skipped = read_fasta(path)
    if not records:
        raise DatasetError(f"FASTA file {path}: no valid record ({skipped[0]})")
    samples = []
    for position in pick(len(records)):
        header, sequence, _ = records[position]
        samples.append(
            Sample(id=header.split()[0] if header else f"record{position}", sequence=sequence)
        )
    return samples, skipped


def _read_smiles(path: Path, pick: Pick, options: ReadOptions
                 ) -> tuple[list[Sample], list[str]]:
    """SMILES CSV (a SMILES column, optional id column, numeric columns as labels) or ``.smi``
    (through RDKit's ``SmilesMolSupplier``: SMILES then an optional name per line)."""
    text = _open_text(path)
    if not text.strip():
        raise DatasetError(f"SMILES file {path} is empty")
    if _suffix(path) == ".smi":
        if options.given() - {"id_key"}:
            raise DatasetError(f"{path}: a .smi file has no columns; options "
                               f"{sorted(options.given())} need a CSV")
        return _read_smi(path, text, pick)
    reader = csv.DictReader(io.StringIO(text))
    fieldnames = [c for c in reader.fieldnames or [] if c is not None]
    columns = {c.strip().lower(): c for c in fieldnames}

    def column(name: str | None, option: str) -> str | None:
        if name is None:
            return None
        if name not in fieldnames:
            raise DatasetError(f"SMILES CSV {path}:1: no column {name!r} ({option}); columns: "
                               f"{fieldnames}")
        return name

    smiles_column = column(options.smiles_column, "smiles_column") or columns.get("smiles")
    if smiles_column is None:
        raise DatasetError(
            f"SMILES CSV {path}:1: no 'smiles' column (columns: {fieldnames}); "
            "name it with smiles_column"
        )
    id_column = column(options.id_key, "id_key") or columns.get("id") or columns.get("name")
    label_columns = [column(c, "labels") for c in options.labels or []]
    rows: list[tuple[int, str, str, dict[str, str]]] = []
    for number, record in enumerate(reader, start=2):
        name = (record.get(id_column) or "").strip() if id_column else ""
        rows.append((number, (record.get(smiles_column) or "").strip(), name or f"row{number}",
                     record))
    samples, skipped = [], []
    for position in pick(len(rows)):
        number, smiles, name, record = rows[position]
        where = f"{path}:{number}"
        canonical = canonical_smiles(smiles) if smiles else None
        if canonical is None:
            skipped.append(f"{where}: invalid SMILES {smiles!r}")
            continue
        if options.labels is None:
            labels = {}
            for key, value in record.items():
                if key in (smiles_column, id_column) or key is None:
                    continue
                try:
                    labels[key.strip()] = float(value)
                except (TypeError, ValueError):
                    pass
        else:
            try:
                labels = _float_labels(lambda key, row=record: (row.get(key) or "").strip()
                                       or None, label_columns, where)  # type: ignore[arg-type]
            except DatasetError as error:
                skipped.append(str(error))
                continue
        samples.append(Sample(id=name, smiles=canonical, labels=labels))
    return samples, skipped


def _read_smi(path: Path, text: str, pick: Pick) -> tuple[list[Sample], list[str]]:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    supplier = Chem.SmilesMolSupplierFromText("\n".join(line for _, line in lines) + "\n",
                                              delimiter=" \t", titleLine=False)
    samples, skipped = [], []
    for position in pick(len(lines)):
        number, line = lines[position]
        mol = supplier[int(position)]
        if mol is None:
            skipped.append(f"{path}:{number}: invalid SMILES {line.split()[0]!r}")
            continue
        name = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
        samples.append(Sample(id=name or f"line{number}", smiles=Chem.MolToSmiles(mol)))
    return samples, skipped


_READERS: dict[str, Callable[[Path, Pick, ReadOptions], tuple[list[Sample], list[str]]]] = {
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


def _unique_ids(samples: list[Sample]) -> tuple[list[Sample], list[str]]:
    """Samples with repeated ids renamed ``<id>-2``, ``<id>-3``, ... in order, and one note per
    renamed id."""
    seen: dict[str, int] = {}
    out, notes = [], []
    for sample in samples:
        count = seen.get(sample.id, 0) + 1
        seen[sample.id] = count
        if count > 1:
            notes.append(f"id {sample.id!r} repeats; this record is {sample.id}-{count}")
            sample = dataclasses.replace(sample, id=f"{sample.id}-{count}")
        out.append(sample)
    return out, notes


def _domain(format: str, samples: list[Sample]) -> Domain:
    if format in ("pdb", "mmcif", "fasta"):
        return "proteins"
    if format == "smiles":
        return "molecules"
    periodic = [s.atoms is not None and bool(s.atoms.pbc.any()) for s in samples]
    return "materials" if any(periodic) else "molecules"


def _card_labels(format: str, samples: list[Sample], options: ReadOptions) -> list[Label]:
    present = {key for sample in samples for key in sample.labels}
    fixed = {label.name: label for label in [*ENERGY_FORCE_LABELS, MAX_FORCE_LABEL]}
    labels = [fixed[name] for name in fixed if name in present]
    for key in sorted(present - set(fixed)):
        labels.append(Label(name=key, unit=options.units.get(key, "as in file")))
    unknown = set(options.units) - present
    if unknown:
        raise DatasetError(f"units given for {sorted(unknown)}, which no record has as a label "
                           f"(labels read: {sorted(present)})")
    return labels


#: Formats whose records a folder can count without parsing them: a seeded sample of a folder
#: (OMat24 ships folders of ASE-LMDB files) then parses only the chosen records.
def _count_lmdb(path: Path) -> int:
    env, keys = _lmdb_keys(path)
    env.close()
    return len(keys)


_COUNTERS: dict[str, Callable[[Path], int]] = {
    "ase-db": lambda path: len(_ase_db_ids(path)[1]),
    "ase-lmdb": _count_lmdb,
}


def _read_folder(path: Path, format: str, n: int | None, seed: int, options: ReadOptions
                 ) -> tuple[list[Sample], list[str]]:
    """Every file of ``format`` in ``path`` (name order) as one dataset, a seeded sample of
    ``n`` records of them all; a file that cannot be read is one skipped entry. Rows of ASE db
    and LMDB files, numbered per file, get ids ``<file stem>:row<id>``."""
    accepted = {format, "cif"} if format == "mmcif" else {format}
    files = sorted(
        p for p in path.iterdir() if p.is_file() and _SUFFIXES.get(_suffix(p)) in accepted
    )
    skipped: list[str] = []
    counts = {}
    if format in _COUNTERS:
        for file in files:
            try:
                counts[file] = _COUNTERS[format](file)
            except DatasetError as error:
                skipped.append(str(error))
        chosen = _choose(sum(counts.values()), n, seed)
        bounds = np.cumsum([0, *counts.values()])
        picks = {file: chosen[(chosen >= lo) & (chosen < hi)] - lo
                 for file, lo, hi in zip(counts, bounds[:-1], bounds[1:], strict=True)}
    else:
        picks = {file: None for file in files}
    samples: list[Sample] = []
    for file, local in picks.items():
        try:
            more, more_skipped = _READERS[format](
                file, np.arange if local is None else (lambda total, local=local: local),
                options)
        except DatasetError as error:
            skipped.append(str(error))
            continue
        if format in _COUNTERS:
            stem = file.name.split(".")[0]
            more = [dataclasses.replace(sample, id=f"{stem}:{sample.id}") for sample in more]
        samples.extend(more)
        skipped.extend(more_skipped)
    if not samples:
        raise DatasetError(
            f"folder {path}: no readable {format} file" + (f" ({skipped[0]})" if skipped else "")
        )
    if format not in _COUNTERS:
        samples = [samples[i] for i in _choose(len(samples), n, seed)]
    return samples, skipped


def read_file(
    path: Path | str,
    format: str | None = None,
    n: int | None = None,
    seed: int = 0,
    name: str | None = None,
    options: ReadOptions | None = None,
) -> ReadResult:
    """Read a local file (or a folder of files of one format) into a Dataset, with a report.

    Parameters
    ----------
    path : Path
        File, or folder whose files all have one format (read in name order).
    format : str, optional
        One of :data:`FORMATS`; detected from the suffix when None.
    n : int, optional
        Seeded sample of ``n`` records; for ASE db, LMDB, MPtrj and CIF only the chosen
        records are parsed. A folder of ASE db or LMDB files is sampled over all its records
        before parsing; other folders after reading every file.
    seed : int
        Seed of the sample.
    name : str, optional
        Dataset name; defaults to the file name without suffixes.
    options : ReadOptions, optional
        Id, SMILES, label, energy, forces and frame options of the format.

    Returns
    -------
    ReadResult
        The dataset and the skipped records with reasons. Energies are labels ``energy`` (eV) and
        ``energy_per_atom``; forces (N, 3) eV/Å go to ``atoms.arrays["forces"]``, their largest
        norm to the label ``max_force``. The card lists the file(s) with size and SHA-256, and
        its version holds the first 12 hex digits of the digest, so an edited file is another
        dataset (another fingerprint) and a store built from the old one is not reused.

    Raises
    ------
    DatasetError
        If the path is missing, unreadable, empty or has no readable record (the message names
        the file and the first bad record), its format is unknown, or an option does not apply
        to the format.
    """
    path = Path(path)
    options = options or ReadOptions()
    if not path.exists():
        raise DatasetError(f"file {path} does not exist")
    format = format or detect_format(path)
    if format not in _READERS:
        raise DatasetError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    wrong = options.given() - OPTIONS_BY_FORMAT[format]
    if wrong:
        allowed = ", ".join(sorted(OPTIONS_BY_FORMAT[format])) or "none"
        raise DatasetError(f"file {path}: option(s) {', '.join(sorted(wrong))} do not apply to "
                           f"{format} files (options of {format}: {allowed})")
    if path.is_file() and path.stat().st_size == 0:
        raise DatasetError(f"file {path} is empty")
    if path.is_dir():
        samples, skipped = _read_folder(path, format, n, seed, options)
    else:
        samples, skipped = _READERS[format](path, lambda total: _choose(total, n, seed), options)
    if not samples:
        raise DatasetError(
            f"file {path}: no readable record" + (f" ({skipped[0]})" if skipped else "")
        )
    samples, renamed = _unique_ids(samples)
    files = file_record(path)
    description = f"{len(samples)} records read from {path.name} ({format})"
    if skipped:
        description += (
            f"; {len(skipped)} records skipped (see ReadResult.skipped), first: {skipped[0]}"
        )
    if renamed:
        description += f"; {len(renamed)} repeated ids renamed, first: {renamed[0]}"
    card = DatasetCard(
        name=name or path.name.split(".")[0],
        version=f"file-{files_digest(files)[:12]}-seed{seed}" + (f"-n{n}" if n is not None else ""),
        domain=_domain(format, samples),
        description=description,
        provenance=f"local file {path.resolve()}",
        license="as of the source file",
        labels=_card_labels(format, samples, options),
        files=files,
    )
    return ReadResult(dataset=Dataset(card, samples, skipped=skipped), skipped=skipped)


def load_file(
    path: Path | str,
    format: str | None = None,
    n: int | None = None,
    seed: int = 0,
    name: str | None = None,
    options: ReadOptions | None = None,
) -> Dataset:
    """:func:`read_file` without the report (the skipped records are ``dataset.skipped``)."""
    return read_file(path, format=format, n=n, seed=seed, name=name, options=options).dataset
