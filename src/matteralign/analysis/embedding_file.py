"""Read a user's own embeddings (sample ids + vectors) from .npy, .npz, .parquet, .csv or
.safetensors, strictly: so that a model outside the registry can be scored against others.

Only real floating-point features are read; anything that could silently change the answer (an
integer or text column taken as a dimension, an imaginary part dropped, NaN, a constant
embedding) is refused with one message naming the file and the column or row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from matteralign.errors import StoreError

__all__ = ["SUFFIXES", "load_embedding_file"]

ID_COLUMNS = ("id", "sample_id", "ids")
SUFFIXES = (".npy", ".npz", ".parquet", ".csv", ".safetensors")


def load_embedding_file(
    path: str | Path,
    ids: str | Path | None = None,
    columns: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Sample ids and (N, D) float64 vectors from an embedding file.

    Accepted layouts:

    - ``.npy``: an (N, D) array; the ids come from ``ids``, a text file with one id per line;
    - ``.npz`` with arrays ``ids`` (N,) and ``embeddings`` (N, D);
    - ``.parquet`` / ``.csv`` with an id column (``id``, ``sample_id`` or ``ids``) and float
      vector columns (one per dimension), or (parquet) a single column of equal-length lists;
      ``columns`` names the feature columns when the table holds others;
    - ``.safetensors`` with a tensor ``embeddings`` (or exactly one tensor) of shape (N, D) and
      the ids as a JSON list in the header metadata key ``ids``.

    Parameters
    ----------
    path : Path
    ids : Path, optional
        Ids of a ``.npy`` file, one per line in row order.
    columns : sequence of str, optional
        Feature columns of a table (default: every column but the id, all of which must then be
        floating point).

    Returns
    -------
    ids : list of str, length N
    values : (N, D) float64 array

    Raises
    ------
    StoreError
        If the file is missing, of another type, or lacks ids or vectors; if a table column
        besides the id is not floating point (integer, boolean, text) and ``columns`` does not
        leave it out; if the values are complex; if a row holds NaN or inf; if every row is the
        same vector; if ids repeat. The message names the file and the column or row.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"embedding file {path} does not exist" + (
            " (it is a folder)" if path.is_dir() else ""))
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise StoreError(f"{path}: unknown embedding file type {suffix!r}; use .npy (with an ids "
                         "file), .npz (ids, embeddings), .parquet / .csv (id column + vector "
                         "columns) or .safetensors")
    if ids is not None and suffix != ".npy":
        raise StoreError(f"{path}: an ids file is for a .npy array; a {suffix} file holds its ids")
    if columns and suffix not in (".parquet", ".csv"):
        raise StoreError(f"{path}: feature columns are for a .parquet or .csv table")
    try:
        if suffix == ".npy":
            sample_ids, values = _npy(path, ids)
        elif suffix in (".parquet", ".csv"):
            sample_ids, values = _table(path, columns)
        elif suffix == ".npz":
            sample_ids, values = _npz(path)
        else:
            sample_ids, values = _safetensors(path)
    except StoreError:
        raise
    except Exception as error:  # empty, truncated or not this format at all
        raise StoreError(
            f"embedding file {path} cannot be read as {suffix}: {type(error).__name__}: {error}; "
            "check that the file is complete and of that format"
        ) from None
    return sample_ids, _checked(path, sample_ids, values)


def _checked(path: Path, ids: list[str], values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if np.iscomplexobj(values):
        raise StoreError(f"{path}: the embeddings are complex ({values.dtype}); give real "
                         "features (e.g. stack the real and imaginary parts as columns)")
    if values.dtype.kind != "f":
        raise StoreError(f"{path}: the embeddings are {values.dtype}, not floating point; "
                         "save them as float32 or float64")
    values = values.astype(np.float64)
    if values.ndim != 2 or values.shape[0] != len(ids):
        raise StoreError(f"{path}: {len(ids)} ids but embeddings of shape {values.shape}; expected "
                         "one (D,) row per id")
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise StoreError(f"{path}: no embeddings (shape {values.shape})")
    if len(set(ids)) != len(ids):
        repeated = next(i for i in ids if ids.count(i) > 1)
        raise StoreError(f"{path}: sample id {repeated!r} appears more than once; ids must be "
                         "unique")
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "NaN" if np.isnan(values[row]).any() else "inf"
        raise StoreError(f"{path}: row {row} (id {ids[row]!r}) holds {what}"
                         f"{f' ({int(bad.sum())} rows in all)' if bad.sum() > 1 else ''}")
    if values.shape[0] > 1 and (values == values[0]).all():
        raise StoreError(f"{path}: every row is the same vector (a constant embedding, e.g. row "
                         f"0, id {ids[0]!r}); it carries nothing to align")
    return values


def _npy(path: Path, ids: str | Path | None) -> tuple[list[str], np.ndarray]:
    values = np.load(path, allow_pickle=False)
    if ids is None:
        raise StoreError(f"{path}: a .npy array holds no sample ids; give an ids file (one id per "
                         "line, in row order), or save .npz with ids and embeddings")
    ids_path = Path(ids)
    if not ids_path.is_file():
        raise StoreError(f"ids file {ids_path} (for {path}) does not exist")
    lines = [line.strip() for line in ids_path.read_text(encoding="utf-8").rstrip().splitlines()]
    if "" in lines:
        raise StoreError(f"ids file {ids_path}: line {lines.index('') + 1} is empty")
    return lines, values


def _npz(path: Path) -> tuple[list[str], np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("ids", "embeddings") if k not in data.files]
        if missing:
            raise StoreError(f"{path} lacks array(s) {missing}; it has {data.files}. Save with "
                             "np.savez(path, ids=np.array(ids), embeddings=values)")
        return [str(i) for i in data["ids"].tolist()], data["embeddings"]


def _table(path: Path, columns: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    id_col = next((c for c in ID_COLUMNS if c in frame.columns), None)
    if id_col is None:
        raise StoreError(f"{path} has no id column (one of {list(ID_COLUMNS)}); columns: "
                         f"{list(frame.columns)[:10]}")
    ids = [str(i) for i in frame[id_col]]
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise StoreError(f"{path}: no column {missing[0]!r}; columns: "
                             f"{list(frame.columns)[:10]}")
        rest = frame[list(columns)]
    else:
        rest = frame.drop(columns=[id_col])
    if rest.shape[1] == 1 and rest.iloc[:, 0].dtype == object:
        first = rest.iloc[0, 0]
        if isinstance(first, np.ndarray | list):
            return ids, np.stack([np.asarray(v) for v in rest.iloc[:, 0]])
    for column in rest.columns:
        kind = rest[column].dtype.kind
        if kind == "c":
            raise StoreError(f"{path}: column {column!r} is complex; give real features")
        if kind != "f" and not (columns and kind in "iu"):
            raise StoreError(
                f"{path}: column {column!r} is {rest[column].dtype}, not a float feature; "
                "name the feature columns (--columns) to leave it out"
            )
    return ids, rest.to_numpy(dtype=np.float64)


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
