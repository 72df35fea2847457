"""The embedding store: shards written atomically, a Parquet manifest, and per-sample failures.

Layout under ``root``::

    embeddings/<dataset>/<model>/shard-00000.safetensors   one shard of pooled embeddings
    embeddings/<dataset>/<model>/complete.json             written once every shard is, with
                                                            the fingerprint of what it embedded
    samples/<dataset>.parquet                               reference labels of the samples
    manifest.parquet                                        one row per shard
    .lock                                                   held by the run that writes

A shard holds ``layer/<name>`` tensors of shape (n_ok, D) and optionally ``energy`` (n_ok,);
its header metadata holds the ids of the embedded samples, the failures (id, reason), the
configuration hash, the provenance, and a SHA-256 checksum over all of these and every tensor's
name, dtype, shape and bytes: a swapped id or a flipped bit anywhere the loader reads fails it.

Only files named as the store names them (``shard-NNNNN.safetensors``, ``complete.json`` and its
own temporary files) are ever read, rewritten or deleted; anything else is *foreign*: left alone
and listed by :meth:`EmbeddingStore.scan`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matteralign.errors import StoreError

if TYPE_CHECKING:
    import pandas as pd

LAYER_PREFIX = "layer/"
ENERGY_KEY = "energy"
COMPLETION_NAME = "complete.json"
SHARD_NAME = re.compile(r"shard-(\d{5})\.safetensors")
SHARD_FORMAT = "2"  # 2: the checksum covers the header metadata too
# temporary files of atomic_write_bytes: "." + the final name + mkstemp's 8 characters + ".tmp"
TEMPORARY_NAME = re.compile(
    r"\.(shard-\d{5}\.safetensors|complete\.json|[^/]+\.parquet)\.[a-z0-9_]{8}\.tmp")
_HEADER_FIELDS = ("ids", "failures", "config_hash", "provenance", "format")


@dataclass
class ShardRecord:
    """Everything one shard holds.

    Attributes
    ----------
    ids : list of str
        Ids of the samples embedded, in dataset order (n_ok of them).
    layers : dict of str to (n_ok, D) float array
    energy : (n_ok,) float array, optional
        Predicted total energies in eV.
    failures : list of (str, str)
        (sample id, reason) for each sample of the shard that could not be embedded.
    config_hash : str
    provenance : dict
    """

    ids: list[str]
    layers: dict[str, np.ndarray]
    energy: np.ndarray | None
    failures: list[tuple[str, str]]
    config_hash: str
    provenance: dict[str, Any]


@dataclass
class StoredEmbeddings:
    """One model's embeddings of one dataset, all shards joined.

    Attributes
    ----------
    ids : list of str
        Ids of the embedded samples, length N.
    values : (N, D) float array
        The layer's pooled embeddings.
    energy : (N,) float array, optional
    failures : list of (str, str)
    """

    model: str
    dataset: str
    layer: str
    ids: list[str]
    values: np.ndarray
    energy: np.ndarray | None
    failures: list[tuple[str, str]]


def shard_checksum(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> str:
    """SHA-256 over everything a shard holds except the checksum itself.

    Every tensor's name, dtype, shape and bytes (sorted by name), then every header field but
    ``checksum`` (sorted by key), each length-prefixed so that no two shards share a digest by
    moving bytes from one field to the next.
    """
    digest = hashlib.sha256()
    for key in sorted(tensors):
        array = np.ascontiguousarray(tensors[key])
        digest.update(f"tensor {key!r} {array.dtype.str} {array.shape} {array.nbytes}\n".encode())
        digest.update(memoryview(array.reshape(-1)).cast("B"))  # the bytes, not a copy of them
    for key in sorted(metadata):
        if key != "checksum":
            value = metadata[key].encode()
            digest.update(f"meta {key!r} {len(value)}\n".encode())
            digest.update(value)
    return digest.hexdigest()


def shard_index(path: Path) -> int | None:
    """The index NNNNN of a file named ``shard-NNNNN.safetensors``; None for any other name."""
    match = SHARD_NAME.fullmatch(path.name)
    return int(match.group(1)) if match else None


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename.

    Raises
    ------
    StoreError
        If the disk (or the user's quota) is full; the message names ``path``. No temporary
        file is left behind and an earlier ``path`` is kept as it was.
    """
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreError(
                f"no space left on the disk to write {path} ({error.strerror}); free some space "
                "(or point --out at another disk) and rerun: finished shards are kept"
            ) from None
        raise
    _fsync_directory(path.parent)


_HELD: dict[Path, list[Any]] = {}  # store roots this process holds the lock of: [lock, depth]


class EmbeddingStore:
    """Embeddings on disk, one safetensors shard per (dataset, model, shard).

    Parameters
    ----------
    root : path
        Folder of the store; created when missing unless ``create`` is False (reading a store
        never writes to it).
    """

    def __init__(self, root: str | os.PathLike[str], create: bool = True) -> None:
        self.root = Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.root)!r})"

    # ---- paths -----------------------------------------------------------------------------
    def model_dir(self, dataset: str, model: str) -> Path:
        return self.root / "embeddings" / dataset / model

    def shard_path(self, dataset: str, model: str, shard: int) -> Path:
        return self.model_dir(dataset, model) / f"shard-{shard:05d}.safetensors"

    def completion_path(self, dataset: str, model: str) -> Path:
        return self.model_dir(dataset, model) / COMPLETION_NAME

    # ---- completion ------------------------------------------------------------------------
    def mark_complete(
        self, dataset: str, model: str, n_shards: int, fingerprint: dict[str, Any] | None = None
    ) -> Path:
        """Record that all ``n_shards`` shards of (dataset, model) are written and current.

        ``fingerprint`` says what was embedded (dataset selection and fingerprint, model
        options, layers, pooling, dtype); :meth:`load_finished` and ``align`` compare it with
        what they are asked to score. Writing any shard of (dataset, model) removes the record
        again, so a run killed part-way through a recomputation leaves none.
        """
        path = self.completion_path(dataset, model)
        record: dict[str, Any] = {"n_shards": int(n_shards)}
        if fingerprint:
            record["fingerprint"] = fingerprint
        atomic_write_bytes(path, json.dumps(record, sort_keys=True, default=str).encode())
        return path

    def completion(self, dataset: str, model: str) -> dict[str, Any] | None:
        """The completion record of (dataset, model); None if the embedding did not finish."""
        try:
            record = json.loads(self.completion_path(dataset, model).read_text())
            int(record["n_shards"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record if isinstance(record, dict) else None

    def completed_shards(self, dataset: str, model: str) -> int | None:
        """Number of shards of a finished embedding of (dataset, model); None if unfinished."""
        record = self.completion(dataset, model)
        return None if record is None else int(record["n_shards"])

    def load_finished(self, dataset: str, model: str, layer: str) -> StoredEmbeddings:
        """:meth:`load` an embedding whose run finished, with the shard count its record gives.

        Every shard must come from the dataset whose fingerprint the completion record holds.

        Raises
        ------
        StoreError
            If the embedding has no completion record (the run was killed, a shard failed, or an
            older matteralign wrote it), or as :meth:`load`.
        """
        record = self.completion(dataset, model)
        if record is None:
            raise StoreError(
                f"the embedding of model {model!r} on {dataset!r} did not finish (the run was "
                "killed, a shard failed, or an older matteralign wrote it); rerun "
                "`matteralign embed` to complete it"
            )
        expected = (record.get("fingerprint") or {}).get("dataset", {}).get("fingerprint")
        return self.load(dataset, model, layer, n_shards=int(record["n_shards"]),
                         dataset_fingerprint=expected)

    # ---- locking ---------------------------------------------------------------------------
    @contextmanager
    def lock(self, timeout: float = 0.0) -> Iterator[None]:
        """Hold the store's write lock; a second writer gets :class:`StoreError`, not a mess.

        Re-entrant within a process: a command that holds the lock (``run`` from its first write
        to its last) may call stages that take it again. Temporary files that a killed run left
        behind are removed once the lock is first taken (only names the store writes).
        """
        from filelock import FileLock, Timeout

        key = self.root.resolve()
        if key in _HELD:
            _HELD[key][1] += 1
            try:
                yield
            finally:
                _HELD[key][1] -= 1
            return
        lock = FileLock(self.root / ".lock")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreError(
                f"the store {self.root} is locked by another matteralign run; wait for it to "
                "finish or use another --out folder"
            ) from None
        except OSError as error:
            raise StoreError(
                f"cannot take the write lock of the store {self.root} ({error.strerror}); the "
                "folder must be writable: use another --out folder"
            ) from None
        _HELD[key] = [lock, 1]
        try:
            for leftover in self.root.rglob(".*.tmp"):  # no other writer while we hold the lock
                if TEMPORARY_NAME.fullmatch(leftover.name):
                    leftover.unlink(missing_ok=True)
            yield
        finally:
            del _HELD[key]
            lock.release()

    # ---- shards ----------------------------------------------------------------------------
    def write_shard(self, dataset: str, model: str, shard: int, record: ShardRecord) -> Path:
        """Write one shard atomically (temporary file, fsync, rename)."""
        from safetensors.numpy import save

        n = len(record.ids)
        tensors = {}
        for layer, values in record.layers.items():
            values = np.ascontiguousarray(values)
            if values.ndim != 2 or values.shape[0] != n:
                raise StoreError(
                    f"layer {layer!r} of model {model!r} has shape {values.shape}; expected "
                    f"({n}, D) for {n} embedded samples"
                )
            tensors[LAYER_PREFIX + layer] = values
        if record.energy is not None:
            tensors[ENERGY_KEY] = np.ascontiguousarray(record.energy, dtype=np.float64)
        metadata = {
            "ids": json.dumps(record.ids),
            "failures": json.dumps([list(f) for f in record.failures]),
            "config_hash": record.config_hash,
            "provenance": json.dumps(record.provenance, sort_keys=True, default=str),
            "format": SHARD_FORMAT,
        }
        metadata["checksum"] = shard_checksum(tensors, metadata)
        path = self.shard_path(dataset, model, shard)
        self.completion_path(dataset, model).unlink(missing_ok=True)
        atomic_write_bytes(path, save(tensors, metadata=metadata))
        return path

    def read_header(self, path: Path) -> dict[str, str] | None:
        """The shard's metadata, or None when the file is missing, unreadable or lacks a field.

        The header is not verified against the checksum: use it for counts, never for results.
        """
        from safetensors import safe_open

        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="numpy") as handle:
                header = dict(handle.metadata() or {})
            json.loads(header["ids"]), json.loads(header["failures"])
        except Exception:  # truncated or corrupt: treated as not written
            return None
        return header

    def shard_problem(self, path: Path) -> str | None:
        """Why the shard at ``path`` cannot be used (unreadable, older format, failed checksum,
        malformed header); None when it is sound."""
        try:
            self.read_shard(path, verify=True)
        except StoreError as error:
            return str(error)
        return None

    def read_shard(self, path: Path, verify: bool = True) -> ShardRecord:
        """Read a shard; with ``verify``, check its tensors and header against the checksum.

        Raises
        ------
        StoreError
            If the file is unreadable, was written by an older matteralign (its checksum covers
            less), its checksum does not match, or its header is malformed; the message names
            the shard and says what to do.
        """
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = dict(handle.metadata() or {})
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except Exception as error:
            raise StoreError(f"cannot read shard {path} ({type(error).__name__}: {error}); "
                             "rerun `matteralign embed` to recompute it") from None
        if verify:
            if metadata.get("format") != SHARD_FORMAT:
                raise StoreError(f"shard {path} was written by an older matteralign (its checksum "
                                 "does not cover sample ids); rerun `matteralign embed` to "
                                 "recompute it")
            if shard_checksum(tensors, metadata) != metadata.get("checksum"):
                raise StoreError(f"shard {path} fails its checksum (its tensors, sample ids or "
                                 "header changed since it was written); rerun `matteralign embed` "
                                 "to recompute it")
        try:
            record = ShardRecord(
                ids=[str(i) for i in json.loads(metadata["ids"])],
                layers={
                    key[len(LAYER_PREFIX):]: value
                    for key, value in tensors.items()
                    if key.startswith(LAYER_PREFIX)
                },
                energy=tensors.get(ENERGY_KEY),
                failures=[(str(i), str(why)) for i, why in json.loads(metadata["failures"])],
                config_hash=metadata["config_hash"],
                provenance=json.loads(metadata["provenance"]),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise StoreError(f"shard {path} has a malformed header ({type(error).__name__}: "
                             f"{error}); rerun `matteralign embed` to recompute it") from None
        if any(values.shape[0] != len(record.ids) for values in record.layers.values()):
            raise StoreError(f"shard {path} holds {len(record.ids)} sample ids but tensors of "
                             f"{sorted({v.shape[0] for v in record.layers.values()})} rows; rerun "
                             "`matteralign embed` to recompute it")
        return record

    def shard_is_current(self, dataset: str, model: str, shard: int, expected_hash: str) -> bool:
        """True when the shard exists, matches ``expected_hash`` and passes its checksum."""
        path = self.shard_path(dataset, model, shard)
        header = self.read_header(path)
        if header is None or header.get("config_hash") != expected_hash:
            return False
        return self.shard_problem(path) is None

    def shard_files(self, dataset: str, model: str) -> dict[int, Path]:
        """The shards of (dataset, model) by index; files of other names are not shards."""
        folder = self.model_dir(dataset, model)
        if not folder.is_dir():
            return {}
        found = {shard_index(path): path for path in folder.iterdir() if path.is_file()}
        return {index: found[index] for index in sorted(i for i in found if i is not None)}

    def shard_paths(self, dataset: str, model: str) -> list[Path]:
        """The shards of (dataset, model), in index order."""
        return list(self.shard_files(dataset, model).values())

    def remove_shards_from(self, dataset: str, model: str, n_shards: int) -> list[Path]:
        """Delete the shards numbered ``n_shards`` and above (left by an earlier, larger
        dataset); return them. Files that are not shards by name are never touched."""
        stale = [path for index, path in self.shard_files(dataset, model).items()
                 if index >= n_shards]
        for path in stale:
            path.unlink()
        return stale

    # ---- whole embeddings ------------------------------------------------------------------
    def load(
        self, dataset: str, model: str, layer: str, n_shards: int | None = None,
        dataset_fingerprint: str | None = None,
    ) -> StoredEmbeddings:
        """Join the shards of (dataset, model) into one (N, D) array of ``layer``.

        Parameters
        ----------
        n_shards : int, optional
            Expected number of shards: exactly shards ``0 .. n_shards - 1`` must be stored; a
            missing or an extra one raises instead of silently giving other samples.
        dataset_fingerprint : str, optional
            Every shard's provenance must name this dataset fingerprint.

        Raises
        ------
        StoreError
            If nothing is stored, a shard is missing, extra, corrupt or of another dataset, or
            the layer is absent.
        """
        files = self.shard_files(dataset, model)
        if not files:
            raise StoreError(
                f"no embeddings of model {model!r} on dataset {dataset!r} in {self.root}; "
                "run `matteralign embed` first"
            )
        if n_shards is not None and list(files) != list(range(n_shards)):
            missing = sorted(set(range(n_shards)) - set(files))
            extra = sorted(set(files) - set(range(n_shards)))
            if missing:
                raise StoreError(
                    f"{n_shards - len(missing)} of {n_shards} shards of {model!r} on {dataset!r} "
                    f"are stored (missing {self.shard_path(dataset, model, missing[0]).name}); "
                    "rerun `matteralign embed` to finish"
                )
            raise StoreError(
                f"{files[extra[0]]} is beyond the {n_shards} shards that the finished embedding "
                f"of {model!r} on {dataset!r} holds; rerun `matteralign embed` to tidy the store"
            )
        ids: list[str] = []
        parts: list[np.ndarray] = []
        energies: list[np.ndarray] = []
        failures: list[tuple[str, str]] = []
        paths = list(files.values())

        def read(path: Path) -> tuple[ShardRecord, list[str]]:
            """The shard, verified, keeping only ``layer`` (and the names of all its layers)."""
            record = self.read_shard(path)
            names = sorted(record.layers)
            if layer in record.layers:
                record.layers = {layer: record.layers[layer]}
            return record, names

        # shards are read and verified in parallel (SHA-256 releases the GIL), checked in order;
        # every layer is read for the checksum, only the scored one is kept
        workers = max(1, min(8, os.cpu_count() or 1, len(paths)))
        with ThreadPoolExecutor(workers) as pool:
            for path, (record, layer_names) in zip(paths, pool.map(read, paths), strict=True):
                found = record.provenance.get("dataset_fingerprint")
                if dataset_fingerprint is not None and found != dataset_fingerprint:
                    raise StoreError(
                        f"shard {path} was embedded from another selection of dataset "
                        f"{dataset!r} than the rest of its model's shards; rerun `matteralign "
                        "embed` to recompute it"
                    )
                if record.ids and layer not in record.layers:
                    raise StoreError(
                        f"shard {path} has no layer {layer!r}; it has {layer_names}"
                    )
                ids.extend(record.ids)
                if record.ids:
                    parts.append(record.layers[layer])
                if record.energy is not None:
                    energies.append(record.energy)
                failures.extend(record.failures)
        values = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
        energy = np.concatenate(energies) if len(energies) == len(parts) and parts else None
        return StoredEmbeddings(model, dataset, layer, ids, values, energy, failures)

    # ---- reference labels of the samples -----------------------------------------------------
    def samples_path(self, dataset: str) -> Path:
        return self.root / "samples" / f"{dataset}.parquet"

    def write_samples(self, dataset: str, samples: Iterable[Any]) -> Path:
        """Store the reference labels of a dataset's samples, atomically: what the analyses need
        from the dataset (energies, atomic numbers), so that none of them rebuilds it.

        Written by the embedding run, beside the embeddings; ``samples/<dataset>.parquet`` has one
        row per sample: ``id``, ``atomic_numbers`` (list of int, empty for a sample without
        atoms), ``smiles`` and ``sequence`` (text, empty where the sample has none) and one float
        column ``label:<name>`` per label (NaN where a sample lacks it).

        Parameters
        ----------
        samples : iterable of Sample
            Objects with ``id``, ``labels`` (dict of str to float), ``atoms`` (ase.Atoms or
            None), ``smiles`` and ``sequence`` (str or None).
        """
        import pandas as pd

        samples = list(samples)
        names = sorted({name for sample in samples for name in sample.labels})
        frame = pd.DataFrame({
            "id": [str(sample.id) for sample in samples],
            "atomic_numbers": [
                [] if sample.atoms is None else [int(z) for z in sample.atoms.numbers]
                for sample in samples],
            "smiles": [sample.smiles or "" for sample in samples],
            "sequence": [sample.sequence or "" for sample in samples],
            **{f"label:{name}": [float(sample.labels.get(name, np.nan)) for sample in samples]
               for name in names},
        })
        path = self.samples_path(dataset)
        atomic_write_bytes(path, frame.to_parquet(index=False))
        return path

    def read_samples(self, dataset: str) -> pd.DataFrame | None:
        """The sample table :meth:`write_samples` stored, indexed by id; None when there is none.

        Raises
        ------
        StoreError
            If the table exists but cannot be read.
        """
        import pandas as pd

        path = self.samples_path(dataset)
        if not path.is_file():
            return None
        try:
            return pd.read_parquet(path).set_index("id")
        except (OSError, ValueError, KeyError) as error:
            raise StoreError(f"the sample table {path} cannot be read ({error}); rerun "
                             "`matteralign embed` to rewrite it") from None

    def failures(self) -> list[dict[str, str]]:
        """Every recorded per-sample failure of a readable shard: dataset, model, id, reason."""
        rows = []
        for (dataset, model), files in self._model_folders():
            for path in files.values():
                header = self.read_header(path)
                if header is None:
                    continue
                for sample_id, reason in json.loads(header["failures"]):
                    rows.append({"dataset": dataset, "model": model,
                                 "sample_id": sample_id, "reason": reason})
        return rows

    def _model_folders(self) -> list[tuple[tuple[str, str], dict[int, Path]]]:
        embeddings = self.root / "embeddings"
        if not embeddings.is_dir():
            return []
        return [((dataset.name, model.name), self.shard_files(dataset.name, model.name))
                for dataset in sorted(embeddings.iterdir()) if dataset.is_dir()
                for model in sorted(dataset.iterdir()) if model.is_dir()]

    def embedding_problems(self) -> list[str]:
        """One line per (dataset, model) whose shards do not match its completion record:
        unfinished (no record), or a shard missing or beyond the recorded count."""
        problems = []
        for (dataset, model), files in self._model_folders():
            n_shards = self.completed_shards(dataset, model)
            if n_shards is None:
                if files:
                    problems.append(f"the embedding of model {model!r} on {dataset!r} did not "
                                    "finish; rerun `matteralign embed` to complete it")
                continue
            missing = sorted(set(range(n_shards)) - set(files))
            extra = sorted(set(files) - set(range(n_shards)))
            for index in missing:
                problems.append(f"{self.shard_path(dataset, model, index)} is missing (the "
                                f"finished embedding has {n_shards} shards); rerun "
                                "`matteralign embed` to recompute it")
            for index in extra:
                problems.append(f"{files[index]} is beyond the {n_shards} shards of the finished "
                                "embedding; rerun `matteralign embed` to tidy the store")
        return problems

    def foreign_files(self) -> list[Path]:
        """Files under ``embeddings/`` that the store did not write (by name): copies, backups,
        notes. The store never reads, rewrites or deletes them."""
        embeddings = self.root / "embeddings"
        if not embeddings.is_dir():
            return []
        foreign = []
        for path in sorted(embeddings.rglob("*")):
            depth = len(path.relative_to(embeddings).parts)
            if path.is_dir() and depth <= 2:
                continue
            ours = depth == 3 and path.is_file() and (
                shard_index(path) is not None or path.name == COMPLETION_NAME
                or TEMPORARY_NAME.fullmatch(path.name) is not None)
            if not ours:
                foreign.append(path)
        return foreign

    def scan(self, verify: bool = False) -> pd.DataFrame:
        """One row per shard (see :meth:`write_manifest`) without writing anything.

        With ``verify``, every shard is read and checked against its checksum (``status``);
        without, only its header is parsed. ``status`` is ``ok``, or ``corrupt: <why>``.
        """
        import pandas as pd

        rows = []
        for (dataset, model), files in self._model_folders():
            for index, path in files.items():
                header = self.read_header(path)
                problem = self.shard_problem(path) if verify else (
                    None if header is not None else f"shard {path} has no readable header")
                provenance = _json_or(header.get("provenance") if header else None, {})
                rows.append({
                    "dataset": dataset,
                    "model": model,
                    "shard": index,
                    "path": str(path.relative_to(self.root)),
                    "status": "ok" if problem is None else f"corrupt: {problem}",
                    "n_samples": len(json.loads(header["ids"])) if header else 0,
                    "n_failed": len(json.loads(header["failures"])) if header else 0,
                    "config_hash": header.get("config_hash", "") if header else "",
                    "checksum": header.get("checksum", "") if header else "",
                    "layers": ",".join(provenance.get("layers", [])),
                    "dtype": provenance.get("dtype", ""),
                    "hardware": provenance.get("hardware", ""),
                    "runtime_s": provenance.get("runtime_s", float("nan")),
                })
        columns = ["dataset", "model", "shard", "path", "status", "n_samples", "n_failed",
                   "config_hash", "checksum", "layers", "dtype", "hardware", "runtime_s"]
        return pd.DataFrame(rows, columns=columns)

    def write_manifest(self) -> Path:
        """Scan every shard's header and write ``manifest.parquet`` atomically (one row each)."""
        path = self.root / "manifest.parquet"
        atomic_write_bytes(path, self.scan().to_parquet(index=False))
        return path


def _json_or(text: str | None, default: Any) -> Any:
    try:
        value = json.loads(text) if text is not None else default
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default
