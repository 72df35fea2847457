"""Tests of the token-encoder base: padding, pooling over real tokens, per-token rows, limits.

A toy character encoder with a known closed form stands in for a real network, so the padding
and pooling logic is checked against values computed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import AdapterError, SampleError  # noqa: E402
from matteralign.models.card import ModelCard  # noqa: E402
from matteralign.models.token_encoder import (  # noqa: E402
    TokenEncoderAdapter,
    TokenizedText,
    torch_dtype,
)
from matteralign.models.validate import validate_adapter  # noqa: E402

VOCAB = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "C": 3, "O": 4, "c": 5, "1": 6, "N": 7}


class CharEncoder(TokenEncoderAdapter):
    """Layer 0: one-hot of the token id (dim 8). Layer 1: layer 0 + masked mean of layer 0."""

    max_tokens = 12

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._model = "loaded"

    def tokenize(self, text: str, sample_id: str) -> TokenizedText:
        self.check_unknown(sample_id, text, list(text), [ch in VOCAB for ch in text])
        ids = [1] + [VOCAB.get(ch, 0) for ch in text] + [2]
        return TokenizedText(text, tuple(ids), (False,) + (True,) * len(text) + (False,))

    @property
    def pad_id(self) -> int:
        return 0

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> Sequence[torch.Tensor]:
        onehot = torch.nn.functional.one_hot(ids, len(VOCAB)).to(torch.float32)
        weights = mask.to(torch.float32).unsqueeze(-1)
        context = (onehot * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True)
        return [onehot, onehot + context]


@pytest.fixture
def adapter() -> CharEncoder:
    card = ModelCard(
        id="toy-chars", name="toy", family="string", input="smiles", domain=["molecules"],
        adapter="tests:CharEncoder", layers=[{"name": "0"}, {"name": "1"}], license="MIT",
    )
    model = CharEncoder(card)
    model.load()
    return model


def _samples(*smiles: str) -> list[Sample]:
    return [Sample(id=f"m{i}", smiles=s) for i, s in enumerate(smiles)]


def test_prepare_canonicalises_and_marks_special_tokens(adapter) -> None:
    item = adapter.prepare(Sample(id="e", smiles="OCC"))
    assert item.text == "CCO"
    assert item.ids == (1, 3, 3, 4, 2)
    assert item.real == (False, True, True, True, False)
    assert adapter.cost(item) == 5


def test_mean_pooling_excludes_special_tokens_and_padding(adapter) -> None:
    items = [adapter.prepare(s) for s in _samples("CCO", "Oc1ccccc1")]
    out = adapter.embed(items, ["0", "1"], "mean", per_item=True)
    # layer 0 is one-hot: the mean over C, C, O is (2/3, 1/3) at ids 3 and 4
    expected = np.zeros(8)
    expected[[3, 4]] = [2 / 3, 1 / 3]
    np.testing.assert_allclose(out.pooled["0"][0], expected, atol=1e-7)
    assert out.pooled["0"].dtype == np.float32
    assert [rows.shape for rows in out.per_item["0"]] == [(3, 8), (9, 8)]
    for b in range(2):
        np.testing.assert_allclose(out.per_item["1"][b].mean(0), out.pooled["1"][b], atol=1e-6)


def test_cls_and_last_pick_the_special_tokens(adapter) -> None:
    items = [adapter.prepare(s) for s in _samples("CCO", "Oc1ccccc1")]
    cls = adapter.embed(items, ["0"], "cls").pooled["0"]
    last = adapter.embed(items, ["0"], "last").pooled["0"]
    assert np.argmax(cls, axis=1).tolist() == [1, 1]  # <bos> in both rows
    assert np.argmax(last, axis=1).tolist() == [2, 2]  # <eos>, not padding of the short row


def test_validate_adapter_batched_equals_single(adapter) -> None:
    report = validate_adapter(adapter, _samples("CCO", "Oc1ccccc1", "CCCN"),
                              check_invariance=False)
    assert "batched==single[1]" in report.passed


def test_padding_leaves_context_layer_unchanged(adapter) -> None:
    short, long = (adapter.prepare(s) for s in _samples("CCO", "CCCCCCCCO"))
    alone = adapter.embed([short], ["1"], "mean").pooled["1"][0]
    padded = adapter.embed([short, long], ["1"], "mean").pooled["1"][0]
    np.testing.assert_allclose(padded, alone, atol=1e-7)


def test_errors(adapter) -> None:
    with pytest.raises(SampleError, match="outside the vocabulary"):
        adapter.prepare(Sample(id="s", smiles="CS"))
    with pytest.raises(SampleError, match="'long'.*has 13 tokens"):
        adapter.prepare(Sample(id="long", smiles="C" * 11))
    with pytest.raises(SampleError, match="has no 'smiles' input"):
        adapter.prepare(Sample(id="x", sequence="MKV"))
    item = adapter.prepare(Sample(id="e", smiles="CCO"))
    with pytest.raises(ValueError, match="pools tokens"):
        adapter.embed([item], ["0"], "per_element_mean")
    with pytest.raises(ValueError, match="no layer"):
        adapter.embed([item], ["7"], "mean")
    adapter.unload()
    with pytest.raises(AdapterError, match="not loaded"):
        adapter._ready()


def test_unknown_tokens_keep_option(adapter) -> None:
    keeping = CharEncoder(adapter.card, unknown_tokens="keep")
    item = keeping.prepare(Sample(id="s", smiles="CS"))
    assert item.ids == (1, 3, 0, 2)


def test_torch_dtype() -> None:
    assert torch_dtype("float64") is torch.float64
    with pytest.raises(ValueError, match="int64"):
        torch_dtype("int64")
