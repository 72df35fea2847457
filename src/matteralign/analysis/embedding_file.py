"""Read a user's own embeddings (sample ids + vectors) from .npz, .parquet or .safetensors.

So that a model outside the registry can be scored against the stored ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from matteralign.errors import StoreError

__all__ = ["load_embedding_file"]

ID_COLUMNS = ("id", "sample_id", "ids")


def load_embedding_file(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Sample ids and (N, D) vectors from an embedding file.

    Accepted layouts:

    - ``.npz`` with arrays ``ids`` (N,) and ``embeddings`` (N, D);
    - ``.parquet`` with an id column (``id``, ``sample_id`` or ``ids``) and either numeric vector
      columns (one per dimension) or a single column of equal-length lists;
    - ``.safetensors`` with a tensor ``embeddings`` (or exactly one tensor) of shape (N, D) and the
      ids as a JSON list in the header metadata key ``ids``.

    Raises
    ------
    StoreError
        If the file is missing, of another type, or lacks ids or vectors; the message names the
        file and says what layout is expected.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"embedding file {path} does not exist")
    readers = {".npz": _npz, ".parquet": _parquet, ".safetensors": _safetensors}
    suffix = path.suffix.lower()
    if suffix not in readers:
        raise StoreError(f"{path}: unknown embedding file type {suffix!r}; use .npz (ids, "
                         "embeddings), .parquet (id column + vector columns) or .safetensors")
    try:
        ids, values = readers[suffix](path)
    except StoreError:
        raise
    except Exception as error:  # empty, truncated or not this format at all
        raise StoreError(
            f"embedding file {path} cannot be read as {suffix}: {type(error).__name__}: {error}; "
            "check that the file is complete and of that format"
        ) from None
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != len(ids):
        raise StoreError(f"{path}: {len(ids)} ids but embeddings of shape {values.shape}; expected "
                         "one (D,) row per id")
    if len(set(ids)) != len(ids):
        raise StoreError(f"{path}: sample ids are not unique")
    return ids, values


def _npz(path: Path) -> tuple[list[str], np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("ids", "embeddings") if k not in data.files]
        if missing:
            raise StoreError(f"{path} lacks array(s) {missing}; it has {data.files}. Save with "
                             "np.savez(path, ids=np.array(ids), embeddings=values)")
        return [str(i) for i in data["ids"].tolist()], data["embeddings"]


def _parquet(path: Path) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    frame = pd.read_parquet(path)
    id_col = next((c for c in ID_COLUMNS if c in frame.columns), None)
    if id_col is None:
        raise StoreError(f"{path} has no id column (one of {list(ID_COLUMNS)}); columns: "
                         f"{list(frame.columns)[:10]}")
    ids = [str(i) for i in frame[id_col]]
    rest = frame.drop(columns=[id_col])
    if rest.shape[1] == 1 and rest.iloc[:, 0].dtype == object:
        return ids, np.stack([np.asarray(v, dtype=np.float64) for v in rest.iloc[:, 0]])
    numeric = rest.select_dtypes("number")
    if numeric.shape[1] == 0 or numeric.shape[1] != rest.shape[1]:
        raise StoreError(f"{path}: besides {id_col!r} every column must be numeric (one per "
                         f"dimension), or a single list column; got {list(rest.columns)[:10]}")
    return ids, numeric.to_numpy(dtype=np.float64)


def _safetensors(path: Path) -> tuple[list[str], np.ndarray]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        keys = list(handle.keys())
        meta = handle.metadata() or {}
        key = "embeddings" if "embeddings" in keys else (keys[0] if len(keys) == 1 else None)
        if key is None:
            raise StoreError(f"{path} holds tensors {keys}; name the vectors 'embeddings'")
        values = handle.get_tensor(key)
    if "ids" not in meta:
        raise StoreError(f"{path} has no 'ids' metadata; save with "
                         "safetensors.numpy.save_file({'embeddings': x}, path, "
                         "metadata={'ids': json.dumps(ids)})")
    return [str(i) for i in json.loads(meta["ids"])], values
