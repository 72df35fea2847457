"""ESM-IF1 and fair-esm ESM-2 checkpoint checks that run inside the ``fair-esm`` model environment.

Not collected by the main suite (the name does not start with ``test_``):
``tests/models/test_fair_esm.py`` runs this file with the environment's Python. Tiny twins are
built with fair-esm's own constructors (``GVPTransformerModel`` from an argument namespace,
``ESM2``), with random weights, and saved in fair-esm's checkpoint format.
"""

from __future__ import annotations

from argparse import Namespace

import numpy as np
import pytest
import torch

from matteralign.data.ideal_backbones import ideal_backbone
from matteralign.data.sample import ProteinStructure, Sample
from matteralign.errors import ModelNotFoundError, SampleError
from matteralign.models.fair_esm import esm2_as_transformers, import_inverse_folding
from matteralign.models.registry import create_adapter
from matteralign.models.validate import validate_adapter

# GVPTransformerModel's arguments, sized down; 8 encoder layers as esm_if1_gvp4_t16_142M_UR50
IF1_ARGS = Namespace(
    arch="vt_tiny_invariant_gvp", encoder_embed_dim=16, decoder_embed_dim=16,
    encoder_layers=8, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
    encoder_ffn_embed_dim=32, decoder_ffn_embed_dim=32, dropout=0.1, attention_dropout=0.1,
    gvp_node_hidden_dim_scalar=16, gvp_node_hidden_dim_vector=4, gvp_edge_hidden_dim_scalar=8,
    gvp_edge_hidden_dim_vector=1, gvp_num_encoder_layers=2, gvp_dropout=0.1,
    gvp_top_k_neighbors=30,
)
HELIX = ideal_backbone("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "H" * 33)
STRAND = ideal_backbone("ACDEFGHIKLMNPQRSTVWYACDEFGHIKLMNPQRSTVWY", "C" * 4 + "E" * 36)
SHORT = ideal_backbone("GSGSGSGSGSG", "C" * 11)
SAMPLES = [Sample("helix", protein=HELIX), Sample("strand", protein=STRAND),
           Sample("short", protein=SHORT)]


@pytest.fixture(scope="module")
def if1(tmp_path_factory):
    """(fair-esm model in eval mode, its alphabet, adapter loaded from the saved checkpoint)."""
    import esm

    inverse_folding = import_inverse_folding()
    torch.manual_seed(0)
    alphabet = esm.data.Alphabet.from_architecture("invariant_gvp")
    model = inverse_folding.gvp_transformer.GVPTransformerModel(IF1_ARGS, alphabet).eval()
    path = tmp_path_factory.mktemp("if1") / "esm_if1_tiny.pt"
    torch.save({"args": IF1_ARGS, "model": model.state_dict()}, path)
    adapter = create_adapter("esm-if1", path=str(path))
    adapter.load()
    return model, alphabet, adapter


def _centred(structure: ProteinStructure) -> np.ndarray:
    """(L, 3, 3) N, CA, C minus the mean CA of the residues with all three, float32."""
    coords = structure.backbone[:, :3]
    whole = np.isfinite(coords).all(axis=(1, 2))
    return (coords - coords[whole, 1].mean(axis=0)).astype(np.float32)


def _reference(model, alphabet, structure: ProteinStructure) -> dict[str, torch.Tensor]:
    """Per-residue states of one chain from fair-esm's own ``get_encoder_output`` (last layer)
    and forward hooks on its encoder layers (the others); layer "0" is the layers' input."""
    util = import_inverse_folding().util
    states: dict[str, torch.Tensor] = {}

    def keep(name: str, hidden: torch.Tensor) -> None:  # (T, 1, D) → (L, D), slots dropped
        states[name] = hidden[1:-1, 0]

    hooks = [layer.register_forward_hook(lambda module, args, out, i=i: keep(str(i), out))
             for i, layer in enumerate(model.encoder.layers, start=1)]
    hooks.append(model.encoder.layers[0].register_forward_pre_hook(
        lambda module, args: keep("0", args[0])))
    try:
        with torch.inference_mode():
            states["8"] = util.get_encoder_output(model, alphabet, _centred(structure))
    finally:
        for hook in hooks:
            hook.remove()
    return states


def test_validate_adapter(if1):
    _, _, adapter = if1
    report = validate_adapter(adapter, SAMPLES, layers=adapter.layer_names)
    assert report.ok, report.failed
    assert "batched==single[8]" in report.passed


def test_rotation_and_translation_leave_the_embedding_unchanged(if1):
    from scipy.spatial.transform import Rotation

    _, _, adapter = if1
    rng = np.random.default_rng(0)  # noise: no dihedral is exactly 0 or 180 degrees
    noisy = HELIX.backbone + rng.normal(0.0, 0.1, HELIX.backbone.shape)
    moved = noisy @ Rotation.random(random_state=0).as_matrix().T + np.array([30.0, -12.0, 5.0])
    pooled = [adapter.embed([adapter.prepare(Sample(name, protein=ProteinStructure(
        HELIX.sequence, backbone)))], adapter.layer_names, "mean").pooled
        for name, backbone in (("noisy", noisy), ("moved", moved))]
    for layer in adapter.layer_names:
        np.testing.assert_allclose(pooled[0][layer], pooled[1][layer], atol=1e-4)


def test_every_layer_matches_fair_esms_own_encoder_output(if1):
    model, alphabet, adapter = if1
    items = [adapter.prepare(s) for s in SAMPLES]
    mean = adapter.embed(items, adapter.layer_names, "mean", per_item=True)
    last = adapter.embed(items, ["8"], "last").pooled["8"]
    cls = adapter.embed(items, ["8"], "cls").pooled["8"]
    for row, sample in enumerate(SAMPLES):
        reference = _reference(model, alphabet, sample.protein)
        assert sorted(reference, key=int) == adapter.layer_names
        for layer, states in reference.items():
            np.testing.assert_allclose(mean.pooled[layer][row], states.mean(0).numpy(),
                                       atol=2e-5)
        assert mean.per_item["8"][row].shape == (len(sample.protein.sequence), 16)
        np.testing.assert_allclose(cls[row], reference["8"][0].numpy(), atol=2e-5)
        np.testing.assert_allclose(last[row], reference["8"][-1].numpy(), atol=2e-5)


def test_residues_missing_an_atom_are_missing_to_the_model_and_out_of_the_mean(if1):
    model, alphabet, adapter = if1
    backbone = np.array(HELIX.backbone)
    backbone[[4, 20], 2] = np.nan  # two residues without C
    gapped = Sample("gapped", protein=ProteinStructure(HELIX.sequence, backbone))
    pooled = adapter.embed([adapter.prepare(gapped)], ["8"], "mean", per_item=True)
    states = _reference(model, alphabet, gapped.protein)["8"]
    kept = np.setdiff1d(np.arange(len(backbone)), [4, 20])
    np.testing.assert_allclose(pooled.pooled["8"][0], states[kept].mean(0).numpy(), atol=2e-5)
    assert pooled.per_item["8"][0].shape == (len(kept), 16)
    backbone[:, 1] = np.nan
    with pytest.raises(SampleError, match="'nothing'.*no residue with all of N, CA and C"):
        adapter.prepare(Sample("nothing", protein=ProteinStructure(HELIX.sequence, backbone)))
    with pytest.raises(SampleError, match="seq.*no protein backbone.*esm-if1"):
        adapter.prepare(Sample("seq", sequence="MKT"))


def test_published_name_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: fair-esm downloads
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _offline)
    with pytest.raises(ModelNotFoundError, match="esm-if1.*esm_if1_gvp4_t16_142M_UR50.*path="):
        create_adapter("esm-if1").load()
    with pytest.raises(ModelNotFoundError, match="esm-if1.*not found"):
        create_adapter("esm-if1", path=str(tmp_path / "missing.pt")).load()


def _offline(url: str, *args, **kwargs):
    """torch.hub's download as it fails without network."""
    raise OSError(f"cannot reach {url}: no network")


# --- ESM-2 from a fair-esm checkpoint ----------------------------------------------------------

PROTEINS = [Sample("p1", sequence="MKTAYIAKQRQISFVKSHFSRQ"),
            Sample("p2", sequence="ACDEFGHIKLMNPQRSTVWY"), Sample("p3", sequence="MUKZBO")]


@pytest.fixture(scope="module")
def esm2(tmp_path_factory):
    """(fair-esm ESM2 with 6 layers, hidden 16, its alphabet, the path of its fair-esm files)."""
    import esm
    from esm.model.esm2 import ESM2

    torch.manual_seed(1)
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = ESM2(num_layers=6, embed_dim=16, attention_heads=2, alphabet=alphabet,
                 token_dropout=True).eval()
    folder = tmp_path_factory.mktemp("esm2")
    state = model.state_dict()
    regression = {k: v for k, v in state.items() if k.startswith("contact_head.")}
    torch.save({"cfg": {"model": Namespace(encoder_layers=6, encoder_embed_dim=16,
                                           encoder_attention_heads=2, token_dropout=True)},
                "model": {f"encoder.sentence_encoder.{k}": v for k, v in state.items()
                          if k not in regression}}, folder / "esm2_t6_tiny.pt")
    torch.save({"model": regression}, folder / "esm2_t6_tiny-contact-regression.pt")
    return model, alphabet, folder / "esm2_t6_tiny.pt"


def test_esm2_from_a_fair_esm_checkpoint_matches_fair_esms_forward(esm2):
    model, alphabet, path = esm2
    adapter = create_adapter("esm2-t6-8m", path=str(path))
    report = validate_adapter(adapter, PROTEINS, layers=adapter.layer_names,
                              check_invariance=False)
    assert report.ok, report.failed
    items = [adapter.prepare(s) for s in PROTEINS]
    pooled = adapter.embed(items, adapter.layer_names, "mean").pooled
    cls = adapter.embed(items, ["6"], "cls").pooled["6"]
    converter = alphabet.get_batch_converter()
    for row, sample in enumerate(PROTEINS):
        _, _, tokens = converter([(sample.id, sample.sequence)])
        assert list(items[row].ids) == tokens[0].tolist()
        with torch.inference_mode():
            out = model(tokens, repr_layers=list(range(7)))["representations"]
        for layer in adapter.layer_names:
            np.testing.assert_allclose(pooled[layer][row], out[int(layer)][0, 1:-1].mean(0),
                                       atol=2e-5)
        np.testing.assert_allclose(cls[row], out[6][0, 0], atol=2e-5)


def test_esm2_from_a_fair_esm_checkpoint_equals_the_hugging_face_folder_path(esm2, tmp_path):
    _, _, path = esm2
    model, tokenizer = esm2_as_transformers(path, "esm2-t6-8m")
    model.save_pretrained(tmp_path / "hf")  # the same weights as a transformers checkpoint
    tokenizer.save_pretrained(tmp_path / "hf")
    pooled = []
    for source in (path, tmp_path / "hf"):
        adapter = create_adapter("esm2-t6-8m", path=str(source))
        adapter.load()
        items = [adapter.prepare(s) for s in PROTEINS]
        pooled.append(adapter.embed(items, adapter.layer_names, "mean").pooled)
    for layer in pooled[0]:
        np.testing.assert_allclose(pooled[0][layer], pooled[1][layer], atol=1e-6)


def test_esm2_checkpoint_that_fair_esm_cannot_read_names_the_file(esm2, tmp_path):
    _, _, path = esm2
    lonely = tmp_path / "esm2_t6_tiny.pt"  # no contact-regression file beside it
    lonely.write_bytes(path.read_bytes())
    with pytest.raises(ModelNotFoundError, match="esm2-t6-8m.*fair-esm could not load.*esm2_t6"):
        create_adapter("esm2-t6-8m", path=str(lonely)).load()
