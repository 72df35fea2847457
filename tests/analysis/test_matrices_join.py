"""join_on_ids when every model embedded the same ids in the same order (the usual store)."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.analysis.matrices import join_on_ids
from matteralign.errors import StoreError
from matteralign.store.embedding_store import StoredEmbeddings


def _stored(model, ids, width=3):
    values = np.arange(len(ids) * width, dtype=np.float32).reshape(len(ids), width)
    return StoredEmbeddings(model, "toy", "h", list(ids), values, None, [])


def test_identical_ids_join_without_copies():
    ids = [f"s{i}" for i in range(50)]
    models = [_stored(m, ids, w) for m, w in (("a", 3), ("b", 5), ("c", 2))]
    joined = join_on_ids(models)
    assert joined.ids == ids and joined.dropped == {"a": 0, "b": 0, "c": 0}
    for stored in models:
        assert joined.values[stored.model] is stored.values


def test_identical_duplicated_ids_name_the_first_model():
    with pytest.raises(StoreError, match="model 'a' has duplicated sample ids in 'toy'"):
        join_on_ids([_stored("a", ["x", "x"]), _stored("b", ["x", "x"])])


def test_same_ids_in_another_order_are_reordered():
    joined = join_on_ids([_stored("a", ["x", "y", "z"]), _stored("b", ["z", "x", "y"])])
    assert joined.ids == ["x", "y", "z"]
    np.testing.assert_array_equal(joined.values["b"], _stored("b", "zxy").values[[1, 2, 0]])
