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


def test_npy_with_an_ids_file_and_csv(tmp_path):
    np.save(tmp_path / "e.npy", X.astype(np.float32))
    (tmp_path / "ids.txt").write_text("\n".join(IDS) + "\n")
    ids, values = load_embedding_file(tmp_path / "e.npy", ids=tmp_path / "ids.txt")
    assert ids == IDS and values.dtype == np.float64
    np.testing.assert_array_equal(values, X)
    with pytest.raises(StoreError, match="holds no sample ids; give an ids file"):
        load_embedding_file(tmp_path / "e.npy")
    pd.DataFrame({"id": IDS, "d0": X[:, 0], "d1": X[:, 1]}).to_csv(tmp_path / "e.csv",
                                                                  index=False)
    ids, values = load_embedding_file(tmp_path / "e.csv")
    assert ids == IDS
    np.testing.assert_array_equal(values, X)


def test_an_extra_integer_column_is_refused_unless_the_features_are_named(tmp_path):
    """It used to be scored as one more dimension (issue 17, item 5)."""
    path = tmp_path / "e.parquet"
    frame = pd.DataFrame({"id": IDS, "d0": X[:, 0], "d1": X[:, 1], "n_atoms": [3, 5, 8]})
    frame.to_parquet(path)
    with pytest.raises(StoreError, match=r"column 'n_atoms' is int64, not a float feature; "
                                         r"name the feature columns"):
        load_embedding_file(path)
    ids, values = load_embedding_file(path, columns=["d0", "d1"])
    np.testing.assert_array_equal(values, X)
    with pytest.raises(StoreError, match="no column 'd7'"):
        load_embedding_file(path, columns=["d0", "d7"])


def test_complex_values_are_refused(tmp_path):
    """Their imaginary part used to be dropped."""
    path = tmp_path / "c.npz"
    np.savez(path, ids=np.array(IDS), embeddings=X + 1j)
    with pytest.raises(StoreError, match=r"c.npz: the embeddings are complex"):
        load_embedding_file(path)
    table = tmp_path / "c.csv"  # parquet cannot hold complex; a CSV holds their text
    pd.DataFrame({"id": IDS, "d0": X[:, 0] + 1j}).to_csv(table, index=False)
    with pytest.raises(StoreError, match=r"column 'd0' is \w+, not a float feature"):
        load_embedding_file(table)


@pytest.mark.parametrize(("bad", "message"), [
    (lambda x: np.where(x == 3, np.nan, x), r"row 1 \(id 's1'\) holds NaN"),
    (lambda x: np.where(x == 4, np.inf, x), r"row 2 \(id 's2'\) holds inf"),
    (lambda x: np.ones_like(x), r"every row is the same vector"),
])
def test_nan_inf_and_constant_embeddings_name_file_and_row(tmp_path, bad, message):
    path = tmp_path / "bad.npz"
    np.savez(path, ids=np.array(IDS), embeddings=bad(X))
    with pytest.raises(StoreError, match=f"{path}: {message}"):
        load_embedding_file(path)


def test_a_folder_is_not_an_embedding_file(tmp_path):
    with pytest.raises(StoreError, match=r"does not exist \(it is a folder\)"):
        load_embedding_file(tmp_path)
