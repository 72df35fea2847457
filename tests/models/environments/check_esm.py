"""ESM C and ESM3 (sequence, and sequence with structure) adapter checks that run inside the
``esm`` model environment.

Not collected by the main suite (the name does not start with ``test_``):
``tests/models/test_esm_models.py`` runs this file with the environment's Python. Tiny twins
(d_model 32, 2 heads, the cards' layer counts) are built with the esm package's own constructors
and saved as state dicts; ``INFRA_PROVIDER`` keeps ESM3's tokenizer collection off the hub.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.data.ideal_backbones import ideal_backbone
from matteralign.data.sample import ProteinStructure, Sample
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


# --- ESM3 with the structure track ------------------------------------------------------------

def _chain(sequence: str, pattern: str, seed: int) -> ProteinStructure:
    """An ideal backbone with 0.1 Å noise (so residues differ in their local structure)."""
    backbone = ideal_backbone(sequence, pattern).backbone
    noise = np.random.default_rng(seed).normal(0.0, 0.1, backbone.shape)
    return ProteinStructure(sequence, backbone + noise)


CHAINS = [Sample("helix", protein=_chain("MKTAYIAKQRQISFVKSHFSRQ", "H" * 22, 0)),
          Sample("strand", protein=_chain("ACDEFGHIKLMNPQRSTVWY", "C" * 3 + "E" * 17, 1)),
          Sample("loop", protein=_chain("GSGSGSGSG", "C" * 9, 2))]
TINY_STRUCTURE_ENCODER = [32, 1, 4, 2, 16, 4096]


@pytest.fixture(scope="module")
def structure_twin(tmp_path_factory):
    """(tiny ESM3 with the tiny structure encoder set, adapter reading both state dicts)."""
    from esm.models.vqvae import StructureTokenEncoder

    d_model, n_heads, v_heads, n_layers, d_out, n_codes = TINY_STRUCTURE_ENCODER
    torch.manual_seed(2)
    model = build_model("esm3_sm_open_v1", TWINS["esm3-sm-open-v1"][1])
    encoder = StructureTokenEncoder(d_model=d_model, n_heads=n_heads, v_heads=v_heads,
                                    n_layers=n_layers, d_out=d_out, n_codes=n_codes).eval()
    folder = tmp_path_factory.mktemp("esm3-structure")
    torch.save(model.state_dict(), folder / "model.pth")
    model._structure_encoder = encoder  # what ESM3.get_structure_encoder returns from now on
    # random codes all lie far from the untrained encoder's outputs, which then share one code:
    # the chains' own pre-quantisation vectors become codes, so each residue gets its own token
    vectors: list[torch.Tensor] = []
    hook = encoder.pre_vq_proj.register_forward_hook(lambda m, a, out: vectors.append(out[0]))
    for sample in CHAINS:
        _encode(model, sample.protein)
    hook.remove()
    rows = torch.cat(vectors)
    encoder.codebook.embeddings[: len(rows)] = rows
    torch.save(encoder.state_dict(), folder / "encoder.pth")
    adapter = create_adapter(
        "esm3-sm-open-v1-structure", path=str(folder / "model.pth"),
        architecture=TWINS["esm3-sm-open-v1"][1], structure_encoder=str(folder / "encoder.pth"),
        structure_encoder_architecture=TINY_STRUCTURE_ENCODER)
    adapter.load()
    return model, adapter, folder


def test_structure_adapter_validates(structure_twin):
    _, adapter, _ = structure_twin
    report = validate_adapter(adapter, CHAINS, layers=["0", "1", "24", "48"])
    assert report.ok, report.failed


def _encode(model, structure: ProteinStructure):
    """The esm package's ``ESM3.encode`` of a chain given as atom37 (N, CA, C, O set)."""
    from esm.sdk.api import ESMProtein

    atom37 = np.full((len(structure.sequence), 37, 3), np.nan, dtype=np.float32)
    atom37[:, [0, 1, 2, 4]] = structure.backbone
    with torch.inference_mode():
        return model.encode(ESMProtein(sequence=structure.sequence,
                                       coordinates=torch.from_numpy(atom37)))


def test_structure_tokens_and_mean_match_the_packages_encode_and_logits(structure_twin):
    from esm.sdk.api import LogitsConfig

    model, adapter, _ = structure_twin
    items = [adapter.prepare(s) for s in CHAINS]
    pooled = adapter.embed(items, ["48"], "mean").pooled["48"]
    for row, sample in enumerate(CHAINS):
        encoded = _encode(model, sample.protein)
        with torch.inference_mode():
            out = model.logits(encoded, LogitsConfig(return_embeddings=True))
        assert list(items[row].structure) == encoded.structure.tolist()
        assert len(set(items[row].structure[1:-1])) > 1  # the residues' tokens differ
        np.testing.assert_allclose(pooled[row], out.embeddings[0, 1:-1].mean(0).numpy(),
                                   atol=2e-5)


def test_structure_track_changes_the_embedding_of_the_same_weights(structure_twin):
    _, adapter, folder = structure_twin
    sequence_only = create_adapter("esm3-sm-open-v1", path=str(folder / "model.pth"),
                                   architecture=TWINS["esm3-sm-open-v1"][1])
    sequence_only.load()
    sample = CHAINS[0]
    with_structure = adapter.embed([adapter.prepare(sample)], ["48"], "mean").pooled["48"]
    without = sequence_only.embed(
        [sequence_only.prepare(Sample("seq", sequence=sample.protein.sequence))], ["48"], "mean",
    ).pooled["48"]
    assert np.abs(with_structure - without).max() > 1e-2


def test_structure_adapter_errors_name_the_sample_or_the_file(structure_twin, tmp_path):
    _, adapter, folder = structure_twin
    with pytest.raises(SampleError, match="'seq'.*no protein backbone.*esm3-sm-open-v1-structure"):
        adapter.prepare(Sample("seq", sequence="MKT"))
    with pytest.raises(ModelNotFoundError, match="structure encoder weights not found"):
        create_adapter("esm3-sm-open-v1-structure", path=str(folder / "model.pth"),
                       architecture=TWINS["esm3-sm-open-v1"][1],
                       structure_encoder=str(tmp_path / "none.pth")).load()
