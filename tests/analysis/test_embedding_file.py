"""Reading a user's embeddings from .npz, .parquet and .safetensors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from matteralign.analysis.embedding_file import load_embedding_file
from matteralign.errors import StoreError

IDS = ["s0", "s1", "s2"]
X = np.arange(6, dtype=float).reshape(3, 2)


def test_npz(tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path, ids=np.array(IDS), embeddings=X)
    ids, values = load_embedding_file(path)
    assert ids == IDS
    np.testing.assert_array_equal(values, X)


def test_parquet_with_vector_columns_and_with_a_list_column(tmp_path):
    wide = tmp_path / "wide.parquet"
    pd.DataFrame({"sample_id": IDS, "d0": X[:, 0], "d1": X[:, 1]}).to_parquet(wide)
    listed = tmp_path / "list.parquet"
    pd.DataFrame({"id": IDS, "vector": [list(r) for r in X]}).to_parquet(listed)
    for path in (wide, listed):
        ids, values = load_embedding_file(path)
        assert ids == IDS
        np.testing.assert_array_equal(values, X)


def test_safetensors_with_ids_in_metadata(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "e.safetensors"
    save_file({"embeddings": X}, str(path), metadata={"ids": json.dumps(IDS)})
    ids, values = load_embedding_file(path)
    assert ids == IDS
    np.testing.assert_array_equal(values, X)


def test_bad_files_say_what_is_expected(tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path, names=np.array(IDS), embeddings=X)
    with pytest.raises(StoreError, match="lacks array"):
        load_embedding_file(path)
    dup = tmp_path / "dup.npz"
    np.savez(dup, ids=np.array(["a", "a", "b"]), embeddings=X)
    with pytest.raises(StoreError, match="appears more than once"):
        load_embedding_file(dup)
    with pytest.raises(StoreError, match="unknown embedding file type"):
        (tmp_path / "e.txt").write_text("x")
        load_embedding_file(tmp_path / "e.txt")
    with pytest.raises(StoreError, match="does not exist"):
        load_embedding_file(tmp_path / "missing.npz")
