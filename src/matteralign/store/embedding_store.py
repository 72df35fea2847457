"""The embedding store: shards written atomically, a Parquet manifest, and per-sample failures.

Layout under ``root``::

    embeddings/<dataset>/<model>/shard-00000.safetensors   one shard of pooled embeddings
    embeddings/<dataset>/<model>/complete.json             written once every shard is
    manifest.parquet                                        one row per shard
    .lock                                                   held by the run that writes

A shard holds ``layer/<name>`` tensors of shape (n_ok, D) and optionally ``energy`` (n_ok,);
its header metadata holds the ids of the embedded samples, the failures (id, reason), the
configuration hash, a SHA-256 checksum of the tensors, and the provenance.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matteralign.errors import StoreError

LAYER_PREFIX = "layer/"
ENERGY_KEY = "energy"
COMPLETION_NAME = "complete.json"


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


def _tensor_checksum(tensors: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(tensors):
        array = np.ascontiguousarray(tensors[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


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


class EmbeddingStore:
    """Embeddings on disk, one safetensors shard per (dataset, model, shard).

    Parameters
    ----------
    root : path
        Folder of the store; created when missing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
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
    def mark_complete(self, dataset: str, model: str, n_shards: int) -> Path:
        """Record that all ``n_shards`` shards of (dataset, model) are written and current.

        Writing any shard of (dataset, model) removes the record again, so a run killed part-way
        through a recomputation leaves none.
        """
        path = self.completion_path(dataset, model)
        atomic_write_bytes(path, json.dumps({"n_shards": int(n_shards)}).encode())
        return path

    def load_finished(self, dataset: str, model: str, layer: str) -> StoredEmbeddings:
        """:meth:`load` an embedding whose run finished, with the shard count its record gives.

        Raises
        ------
        StoreError
            If the embedding has no completion record (the run was killed, a shard failed, or an
            older matteralign wrote it), or as :meth:`load`.
        """
        n_shards = self.completed_shards(dataset, model)
        if n_shards is None:
            raise StoreError(
                f"the embedding of model {model!r} on {dataset!r} did not finish (the run was "
                "killed, a shard failed, or an older matteralign wrote it); rerun "
                "`matteralign embed` to complete it"
            )
        return self.load(dataset, model, layer, n_shards=n_shards)

    def completed_shards(self, dataset: str, model: str) -> int | None:
        """Number of shards of a finished embedding of (dataset, model); None if unfinished."""
        try:
            return int(json.loads(self.completion_path(dataset, model).read_text())["n_shards"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ---- locking ---------------------------------------------------------------------------
    @contextmanager
    def lock(self, timeout: float = 0.0) -> Iterator[None]:
        """Hold the store's write lock; a second writer gets :class:`StoreError`, not a mess.

        Temporary files that a killed run left behind are removed once the lock is held.
        """
        from filelock import FileLock, Timeout

        lock = FileLock(self.root / ".lock")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreError(
                f"the store {self.root} is locked by another matteralign run; wait for it to "
                "finish or use another --out folder"
            ) from None
        try:
            for leftover in self.root.rglob(".*.tmp"):  # no other writer while we hold the lock
                leftover.unlink(missing_ok=True)
            yield
        finally:
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
            "checksum": _tensor_checksum(tensors),
            "provenance": json.dumps(record.provenance, sort_keys=True, default=str),
        }
        path = self.shard_path(dataset, model, shard)
        self.completion_path(dataset, model).unlink(missing_ok=True)
        atomic_write_bytes(path, save(tensors, metadata=metadata))
        return path

    def read_header(self, path: Path) -> dict[str, str] | None:
        """The shard's metadata, or None when the file is missing or unreadable."""
        from safetensors import safe_open

        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="numpy") as handle:
                return dict(handle.metadata() or {})
        except Exception:  # truncated or corrupt: treated as not written
            return None

    def read_shard(self, path: Path, verify: bool = True) -> ShardRecord:
        """Read a shard; with ``verify``, check its tensors against the recorded checksum.

        Raises
        ------
        StoreError
            If the file is unreadable or its checksum does not match.
        """
        from safetensors.numpy import load_file

        header = self.read_header(path)
        try:
            tensors = load_file(str(path))
        except Exception as error:
            raise StoreError(f"cannot read shard {path}: {error}; delete it and rerun") from None
        if header is None:
            raise StoreError(f"shard {path} has no readable header; delete it and rerun")
        if verify and _tensor_checksum(tensors) != header.get("checksum"):
            raise StoreError(f"shard {path} fails its checksum; delete it and rerun")
        return ShardRecord(
            ids=json.loads(header["ids"]),
            layers={
                key[len(LAYER_PREFIX):]: value
                for key, value in tensors.items()
                if key.startswith(LAYER_PREFIX)
            },
            energy=tensors.get(ENERGY_KEY),
            failures=[tuple(f) for f in json.loads(header["failures"])],
            config_hash=header["config_hash"],
            provenance=json.loads(header["provenance"]),
        )

    def shard_is_current(self, dataset: str, model: str, shard: int, expected_hash: str) -> bool:
        """True when the shard exists, matches ``expected_hash`` and passes its checksum."""
        path = self.shard_path(dataset, model, shard)
        header = self.read_header(path)
        if header is None or header.get("config_hash") != expected_hash:
            return False
        try:
            self.read_shard(path, verify=True)
        except StoreError:
            return False
        return True

    def shard_paths(self, dataset: str, model: str) -> list[Path]:
        return sorted(self.model_dir(dataset, model).glob("shard-*.safetensors"))

    # ---- whole embeddings ------------------------------------------------------------------
    def load(
        self, dataset: str, model: str, layer: str, n_shards: int | None = None
    ) -> StoredEmbeddings:
        """Join the shards of (dataset, model) into one (N, D) array of ``layer``.

        Parameters
        ----------
        n_shards : int, optional
            Expected number of shards; a missing one raises instead of silently giving fewer
            samples.

        Raises
        ------
        StoreError
            If nothing is stored, a shard is missing or corrupt, or the layer is absent.
        """
        paths = self.shard_paths(dataset, model)
        if not paths:
            raise StoreError(
                f"no embeddings of model {model!r} on dataset {dataset!r} in {self.root}; "
                "run `matteralign embed` first"
            )
        if n_shards is not None and len(paths) != n_shards:
            raise StoreError(
                f"{len(paths)} of {n_shards} shards of {model!r} on {dataset!r} are stored; "
                "rerun `matteralign embed` to finish"
            )
        ids: list[str] = []
        parts: list[np.ndarray] = []
        energies: list[np.ndarray] = []
        failures: list[tuple[str, str]] = []
        for path in paths:
            record = self.read_shard(path)
            if record.ids and layer not in record.layers:
                raise StoreError(
                    f"shard {path} has no layer {layer!r}; it has {sorted(record.layers)}"
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

    def failures(self) -> list[dict[str, str]]:
        """Every recorded per-sample failure: dataset, model, sample id and reason."""
        rows = []
        for path in sorted((self.root / "embeddings").glob("*/*/shard-*.safetensors")):
            header = self.read_header(path)
            if header is None:
                continue
            for sample_id, reason in json.loads(header["failures"]):
                rows.append({"dataset": path.parent.parent.name, "model": path.parent.name,
                             "sample_id": sample_id, "reason": reason})
        return rows

    def write_manifest(self) -> Path:
        """Scan every shard and write ``manifest.parquet`` atomically (one row per shard)."""
        import pandas as pd

        rows = []
        for path in sorted((self.root / "embeddings").glob("*/*/shard-*.safetensors")):
            header = self.read_header(path)
            provenance = json.loads(header["provenance"]) if header else {}
            rows.append({
                "dataset": path.parent.parent.name,
                "model": path.parent.name,
                "shard": int(path.stem.split("-")[1]),
                "path": str(path.relative_to(self.root)),
                "status": "ok" if header else "corrupt",
                "n_samples": len(json.loads(header["ids"])) if header else 0,
                "n_failed": len(json.loads(header["failures"])) if header else 0,
                "config_hash": header.get("config_hash", "") if header else "",
                "checksum": header.get("checksum", "") if header else "",
                "layers": ",".join(provenance.get("layers", [])),
                "dtype": provenance.get("dtype", ""),
                "hardware": provenance.get("hardware", ""),
                "runtime_s": provenance.get("runtime_s", float("nan")),
            })
        frame = pd.DataFrame(rows)
        path = self.root / "manifest.parquet"
        atomic_write_bytes(path, frame.to_parquet(index=False))
        return path
