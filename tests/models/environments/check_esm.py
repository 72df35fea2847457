"""ESM C and ESM3 adapter checks that run inside the ``esm`` model environment.

Not collected by the main suite (the name does not start with ``test_``):
``tests/models/test_esm_models.py`` runs this file with the environment's Python. Tiny twins
(d_model 32, 2 heads, the cards' layer counts) are built with the esm package's own constructors
and saved as state dicts; ``INFRA_PROVIDER`` keeps ESM3's tokenizer collection off the hub.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.data.sample import Sample
from matteralign.errors import ModelNotFoundError, SampleError
from matteralign.models.esm_models import build_model
from matteralign.models.registry import create_adapter
from matteralign.models.validate import validate_adapter

TWINS = {"esmc-300m": ("esmc_300m", [32, 2, None, 30]),
         "esm3-sm-open-v1": ("esm3_sm_open_v1", [32, 2, 2, 48])}
SAMPLES = [Sample("p1", sequence="MKTAYIAKQRQISFVKSHFSRQ"), Sample("p2", sequence="ACDEFGHIKLMNPQ"),
           Sample("p3", sequence="MKTXAYU")]


@pytest.fixture(scope="module", params=list(TWINS))
def twin(request, tmp_path_factory):
    """(card id, esm package model, adapter loaded from the model's saved state dict)."""
    name, architecture = TWINS[request.param]
    torch.manual_seed(0)
    model = build_model(name, architecture)
    path = tmp_path_factory.mktemp(request.param) / "weights.pth"
    torch.save(model.state_dict(), path)
    adapter = create_adapter(request.param, path=str(path), architecture=architecture)
    adapter.load()
    return request.param, model, adapter


def test_validate_adapter(twin):
    _, _, adapter = twin
    report = validate_adapter(adapter, SAMPLES, check_invariance=False)
    assert report.ok and f"batched==single[{adapter.layer_names[-1]}]" in report.passed


def test_tokens_and_mean_match_the_packages_own_forward(twin):
    model_id, model, adapter = twin
    from esm.utils.encoding import tokenize_sequence

    tokenizer = model.tokenizer if model_id.startswith("esmc") else model.tokenizers.sequence
    last = adapter.layer_names[-1]
    for sample in SAMPLES:
        ids = tokenize_sequence(sample.sequence, tokenizer, add_special_tokens=True)
        item = adapter.prepare(sample)
        assert list(item.ids) == ids.tolist()
        assert tokenizer.convert_ids_to_tokens([ids[0], ids[-1]]) == ["<cls>", "<eos>"]
        with torch.inference_mode():
            if model_id.startswith("esmc"):
                out = model(sequence_tokens=ids[None])
                reference = {"0": model.embed(ids[None])[0], last: out.embeddings[0],
                             "5": out.hidden_states[4][0]}
            else:
                out = model(sequence_tokens=ids[None])
                reference = {last: out.embeddings[0]}
        pooled = adapter.embed([item], list(reference), "mean").pooled
        for layer, hidden in reference.items():
            np.testing.assert_allclose(pooled[layer][0], hidden[1:-1].mean(0).numpy(), atol=2e-5)


def test_unknown_letters_fail_the_sample(twin):
    _, _, adapter = twin
    with pytest.raises(SampleError, match="'j'.*J.*outside the vocabulary"):
        adapter.prepare(Sample("j", sequence="MKJT"))


def test_missing_weights_name_the_model():
    with pytest.raises(ModelNotFoundError, match="esmc-600m.*not found"):
        create_adapter("esmc-600m", path="/nonexistent/esmc.pth").load()
    with pytest.raises(ModelNotFoundError, match="esmc-300m.*could not load 'esmc_300m'.*path="):
        create_adapter("esmc-300m").load()  # offline, nothing cached
