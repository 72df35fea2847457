"""Tests of the ANNalog encoder adapter (checkpoint and vocabulary ship in the annalog wheel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("annalog")
pytest.importorskip("rdkit")

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import SampleError  # noqa: E402
from matteralign.models.registry import create_adapter  # noqa: E402
from matteralign.models.validate import validate_adapter  # noqa: E402

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]


@pytest.fixture(scope="module")
def adapter():
    model = create_adapter("annalog-encoder")
    model.load("cpu", "float32")
    return model


def _samples(smiles: list[str]) -> list[Sample]:
    return [Sample(id=f"mol{i}", smiles=s) for i, s in enumerate(smiles)]


def test_validate_adapter(adapter) -> None:
    report = validate_adapter(adapter, _samples(SMILES), check_invariance=False)
    assert report.ok
    assert "batched==single[3]" in report.passed
    assert validate_adapter(adapter, _samples(SMILES), pooling="cls",
                            check_invariance=False).ok


def test_tokens_follow_the_package_field(adapter) -> None:
    item = adapter.prepare(Sample(id="p", smiles="c1ccccc1O"))
    assert item.text == "Oc1ccccc1"
    # the package's own field: <sos> tokens <eos>, batch_first
    reference = adapter._handler.SRC.process([adapter._handler.SRC.preprocess("Oc1ccccc1")])
    assert list(item.ids) == reference[0].tolist()
    assert adapter.cost(item) == 11
    chloro = adapter.prepare(Sample(id="c", smiles="ClCCBr"))
    assert adapter._handler.SRC.vocab.itos[chloro.ids[1]] in {"Cl", "Br"}
    assert adapter.cost(chloro) == 2 + 4


def test_last_layer_is_the_encoder_output(adapter) -> None:
    items = [adapter.prepare(s) for s in _samples(SMILES)]
    out = adapter.embed(items, ["0", "3"], "mean", per_item=True)
    assert {k: v.shape for k, v in out.pooled.items()} == {"0": (3, 256), "3": (3, 256)}
    model = adapter._model
    for row, item in enumerate(items):
        src = torch.tensor([item.ids])
        with torch.inference_mode():
            memory = model.encoder(src, model.make_src_mask(src))[0]
        np.testing.assert_allclose(out.pooled["3"][row], memory[1:-1].mean(0).numpy(), atol=1e-5)
        np.testing.assert_allclose(out.per_item["3"][row], memory[1:-1].numpy(), atol=1e-5)
        # layer 0: sqrt(256) * token embedding + position embedding
        embedding = model.encoder.tok_embedding(src[0]) * 16.0 + model.encoder.pos_embedding(
            torch.arange(len(item.ids)))
        np.testing.assert_allclose(out.pooled["0"][row],
                                   embedding[1:-1].mean(0).detach().numpy(), atol=1e-5)


def test_sample_errors(adapter) -> None:
    with pytest.raises(SampleError, match=r"\[Na\+\] outside the vocabulary"):
        adapter.prepare(Sample(id="salt", smiles="[Na+].[Cl-]"))
    with pytest.raises(SampleError, match="'long'.*103 tokens.*at most 102"):
        adapter.prepare(Sample(id="long", smiles="C" * 101))
    assert adapter.cost(adapter.prepare(Sample(id="ok", smiles="C" * 100))) == 102
    with pytest.raises(SampleError, match="invalid SMILES"):
        adapter.prepare(Sample(id="bad", smiles="c1cccc1"))
    # the package's vocabulary must not have grown from the failed look-ups
    assert len(adapter._handler.SRC.vocab.stoi) == len(adapter._handler.SRC.vocab.itos) == 59


def test_parameter_count(adapter) -> None:
    model = adapter._model
    assert sum(p.numel() for p in model.parameters()) == adapter.card.parameters
    assert sum(p.numel() for p in model.encoder.parameters()) == 1_622_528
