"""Tests of the hub-hosted encoder cards (ESM-2, ProstT5, ChemBERTa, ChemGPT) on tiny twins.

Every twin is a randomly initialised model built from the package's own configuration class
(EsmConfig, T5Config, RobertaConfig, GPTNeoConfig) with the card's number of layers, and a tiny
tokenizer built offline: ESM's fixed vocabulary list, a sentencepiece word model for T5 with
ProstT5's two prefixes added as tokens, a byte-level BPE for RoBERTa and a word-level SELFIES
tokenizer for GPT-Neo. The real adapters load them from a local folder through the cards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
pytest.importorskip("rdkit")

from matteralign.data.sample import ProteinStructure, Sample  # noqa: E402
from matteralign.errors import ModelNotFoundError, SampleError  # noqa: E402
from matteralign.models.protein_sequence import three_di_sequence  # noqa: E402
from matteralign.models.registry import create_adapter, get_card  # noqa: E402
from matteralign.models.smiles import selfies_tokens, to_selfies  # noqa: E402
from matteralign.models.token_encoder import window_starts  # noqa: E402
from matteralign.models.validate import validate_adapter  # noqa: E402

# fair-esm's Alphabet for ESM-2, in id order (EsmTokenizer reads it from vocab.txt)
ESM_VOCAB = [
    "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P",
    "K", "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>",
    "<mask>",
]
SMILES = ["OCC", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C#N", "O=C=O"]
PROTEINS = [
    Sample("p1", sequence="MKTAYIAKQRQISFVKSHFSRQ"),
    Sample("p2", sequence="ACDEFGHIKLMNPQRSTVWY"),
    Sample("p3", sequence="MUKZBO"),
]
# 70 residues: with a context of 32 tokens (30 residues) it is read as four windows
LONG = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVV"


def _save(model: torch.nn.Module, tokenizer, folder: Path) -> str:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def esm_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ESM-2 twin: 6 layers (as esm2-t6-8m), hidden 16, context of 32 tokens."""
    folder = tmp_path_factory.mktemp("esm")
    (folder / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    tokenizer = transformers.EsmTokenizer(str(folder / "vocab.txt"))
    torch.manual_seed(0)
    config = transformers.EsmConfig(
        vocab_size=len(ESM_VOCAB), hidden_size=16, num_hidden_layers=6, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=34, position_embedding_type="rotary",
        token_dropout=True, mask_token_id=32, pad_token_id=1, emb_layer_norm_before=False,
    )
    return _save(transformers.EsmForMaskedLM(config), tokenizer, folder)


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ProstT5 twin: 24 encoder blocks, d_model 16; a sentencepiece word model of the 21 amino
    acid letters and 20 lower-case 3Di letters, plus the two prefixes as added tokens."""
    spm = pytest.importorskip("sentencepiece")
    folder = tmp_path_factory.mktemp("prostt5")
    sentences = [" ".join("ACDEFGHIKLMNPQRSTVWYX"), " ".join("acdefghiklmnpqrstvwy")] * 20
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(folder / "spiece"), vocab_size=44,
        model_type="word", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0,
        hard_vocab_limit=False, minloglevel=2,
    )
    tokenizer = transformers.T5Tokenizer(
        str(folder / "spiece.model"), extra_ids=0, legacy=True, do_lower_case=False
    )
    tokenizer.add_tokens(["<AA2fold>", "<fold2AA>"])
    torch.manual_seed(1)
    config = transformers.T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=24, num_heads=2,
        feed_forward_proj="relu", is_encoder_decoder=False,
    )
    return _save(transformers.T5EncoderModel(config), tokenizer, folder / "model")


@pytest.fixture(scope="module")
def roberta_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ChemBERTa-2 twin: 3 layers (as chemberta-2-77m-mlm), byte-level BPE trained on SMILES."""
    folder = tmp_path_factory.mktemp("chemberta")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        SMILES * 10, vocab_size=300, min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe.save_model(str(folder))
    tokenizer = transformers.RobertaTokenizerFast(
        str(folder / "vocab.json"), str(folder / "merges.txt")
    )
    torch.manual_seed(2)
    config = transformers.RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=515, type_vocab_size=1, pad_token_id=1,
    )
    return _save(transformers.RobertaForMaskedLM(config), tokenizer, folder / "model")


@pytest.fixture(scope="module")
def gpt_neo_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ChemGPT twin: 24 GPT-Neo layers (as chemgpt-4.7m), hidden 16; word-level tokenizer of
    bracketed SELFIES symbols with [CLS] ... [SEP] around each molecule."""
    folder = tmp_path_factory.mktemp("chemgpt")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    symbols = sorted({s for smiles in SMILES for s in selfies_tokens(to_selfies(smiles, "x"))})
    vocab = {token: i for i, token in enumerate(specials + symbols)}
    model = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    model.pre_tokenizer = tokenizers.pre_tokenizers.Split(
        tokenizers.Regex(r"\[[^\]]*\]"), behavior="isolated"
    )
    model.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=model, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]",
    )
    torch.manual_seed(3)
    config = transformers.GPTNeoConfig(
        vocab_size=len(vocab), hidden_size=16, num_layers=24, num_heads=2,
        attention_types=[[["global", "local"], 12]], window_size=4, max_position_embeddings=64,
    )
    return _save(transformers.GPTNeoForCausalLM(config), tokenizer, folder / "model")


def _direct(adapter, text: str) -> tuple[list[int], tuple[torch.Tensor, ...]]:
    """Token ids and hidden states of one text from the tokenizer's and model's own calls."""
    encoded = adapter._tokenizer(text, return_tensors="pt", return_token_type_ids=False)
    with torch.inference_mode():  # GPT-Neo would add wte(token_type_ids) to its embeddings
        out = adapter._model(**encoded, output_hidden_states=True)
    return encoded["input_ids"][0].tolist(), out.hidden_states


def _smiles_samples() -> list[Sample]:
    return [Sample(f"m{i}", smiles=s) for i, s in enumerate(SMILES)]


# --- ESM-2 -----------------------------------------------------------------------------------
def test_esm2_cards_layers_and_hub_names() -> None:
    for model_id, n in (("esm2-t6-8m", 6), ("esm2-t12-35m", 12), ("esm2-t30-150m", 30),
                        ("esm2-t33-650m", 33)):
        card = get_card(model_id)
        assert card.layer_names == [str(i) for i in range(n + 1)]
        assert card.options["hub"].startswith("facebook/esm2_t")
        assert card.options["window"] == 1022 and card.license == "MIT"


def test_esm2_validates_and_matches_the_direct_forward(esm_folder) -> None:
    adapter = create_adapter("esm2-t6-8m", path=esm_folder, max_tokens=32, window=30,
                             window_overlap=15)
    report = validate_adapter(adapter, PROTEINS[:2], check_invariance=False)
    assert report.ok and "batched==single[6]" in report.passed
    items = [adapter.prepare(s) for s in PROTEINS]
    mean = adapter.embed(items, adapter.layer_names, "mean", per_item=True)
    cls = adapter.embed(items, ["6"], "cls")
    last = adapter.embed(items, ["6"], "last")
    for row, sample in enumerate(PROTEINS):
        ids, states = _direct(adapter, sample.sequence)
        assert list(items[row].ids) == ids and ids[0] == 0 and ids[-1] == 2  # <cls> ... <eos>
        for layer in adapter.layer_names:
            hidden = states[int(layer)][0]
            np.testing.assert_allclose(mean.pooled[layer][row], hidden[1:-1].mean(0).numpy(),
                                       atol=2e-5)
        assert mean.per_item["6"][row].shape == (len(sample.sequence), 16)
        np.testing.assert_allclose(cls.pooled["6"][row], states[6][0][0].numpy(), atol=2e-5)
        np.testing.assert_allclose(last.pooled["6"][row], states[6][0][-1].numpy(), atol=2e-5)


def test_esm2_windows_a_sequence_longer_than_its_context(esm_folder) -> None:
    adapter = create_adapter("esm2-t6-8m", path=esm_folder, max_tokens=32, window=30,
                             window_overlap=15)
    adapter.load()
    long = Sample("long", sequence=LONG)
    item = adapter.prepare(long)
    assert len(item.ids) == len(LONG) + 2 > adapter.max_tokens  # kept whole, not truncated
    assert adapter.provenance()["windowed_samples"] == {"long": 4}
    assert adapter.provenance(["p1", "long"])["windowed_samples"] == {"long": 4}
    assert adapter.provenance(["p1"])["windowed_samples"] == {}
    assert "windows of 30 tokens" in adapter.provenance()["long_sequences"]
    # direct computation: each window through the tokenizer and model on its own, each residue's
    # state averaged over the windows holding it, then the mean over residues
    starts = window_starts(len(LONG), 30, 15)
    assert starts == [0, 15, 30, 40]
    sums = {layer: torch.zeros(len(LONG), 16, dtype=torch.float64) for layer in range(7)}
    counts = torch.zeros(len(LONG), 1, dtype=torch.float64)
    cls = torch.zeros(16, dtype=torch.float64)
    for start in starts:
        _, states = _direct(adapter, LONG[start:start + 30])
        for layer in range(7):
            sums[layer][start:start + 30] += states[layer][0][1:-1].double()
        counts[start:start + 30] += 1
        cls += states[6][0][0].double() / len(starts)
    batch = [adapter.prepare(PROTEINS[1]), item, adapter.prepare(PROTEINS[0])]
    out = adapter.embed(batch, adapter.layer_names, "mean", per_item=True)
    for layer in range(7):
        per_residue = sums[layer] / counts
        np.testing.assert_allclose(out.pooled[str(layer)][1], per_residue.mean(0).numpy(),
                                   atol=2e-5)
        np.testing.assert_allclose(out.per_item[str(layer)][1], per_residue.numpy(), atol=2e-5)
    np.testing.assert_allclose(adapter.embed([item], ["6"], "cls").pooled["6"][0], cls.numpy(),
                               atol=2e-5)
    # the short sequences beside it are unchanged by the windowed one
    alone = adapter.embed(batch[:1], ["6"], "mean").pooled["6"][0]
    np.testing.assert_allclose(out.pooled["6"][0], alone, atol=2e-5)
    assert adapter.cost(item) == 4 * 32
    report = validate_adapter(adapter, [long, PROTEINS[0]], check_invariance=False)
    assert report.ok


def test_esm2_without_windows_fails_long_sequences_by_name(esm_folder) -> None:
    adapter = create_adapter("esm2-t6-8m", path=esm_folder, max_tokens=32, window=None)
    adapter.load()
    with pytest.raises(SampleError, match="'long'.*72 tokens.*at most 32"):
        adapter.prepare(Sample("long", sequence=LONG))
    with pytest.raises(SampleError, match="'j'.*J.*outside the vocabulary"):
        adapter.prepare(Sample("j", sequence="MKJT"))
    assert adapter.prepare(Sample("lower", sequence="mkt")).text == "MKT"


def test_missing_hub_checkpoint_is_one_clear_error() -> None:
    adapter = create_adapter("esm2-t6-8m")
    with pytest.raises(ModelNotFoundError, match="esm2-t6-8m.*facebook/esm2_t6_8M_UR50D.*path="):
        adapter.load()
    with pytest.raises(ModelNotFoundError, match="not found"):
        create_adapter("esm2-t6-8m", path="/nonexistent/esm2").load()


# --- ProstT5 ---------------------------------------------------------------------------------
def _helix(n: int) -> ProteinStructure:
    """An ideal alpha-helix backbone of n alanines (N, CA, C, O)."""
    turn = np.deg2rad(100.0) * np.arange(n)
    rise = 1.5 * np.arange(n)
    atoms = []
    for radius, phase, shift in ((1.55, -0.5, -0.8), (2.3, 0.0, 0.0), (1.7, 0.5, 0.9),
                                 (1.9, 0.8, 1.9)):
        atoms.append(np.stack([radius * np.cos(turn + phase), radius * np.sin(turn + phase),
                               rise + shift], axis=1))
    return ProteinStructure("A" * n, np.stack(atoms, axis=1))


def test_prostt5_amino_acids_tokenised_as_rostlabs_card(t5_folder) -> None:
    adapter = create_adapter("prostt5-aa", path=t5_folder)
    adapter.load()
    item = adapter.prepare(PROTEINS[2])  # MUKZBO: U, Z, O, B read as X
    assert item.text == "MXKXXX"
    ids, states = _direct(adapter, "<AA2fold> M X K X X X")
    assert list(item.ids) == ids
    tokens = adapter._tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "<AA2fold>" and tokens[-1] == "</s>" and len(tokens) == 8
    assert item.real == (False,) + (True,) * 6 + (False,)
    out = adapter.embed([item], ["0", "24"], "mean")
    for layer in ("0", "24"):  # the card's per-residue slice [1:L+1], averaged
        np.testing.assert_allclose(out.pooled[layer][0],
                                   states[int(layer)][0][1:7].mean(0).numpy(), atol=2e-5)
    assert validate_adapter(adapter, PROTEINS, check_invariance=False).ok


def test_prostt5_3di_reads_the_backbone_as_lower_case_states(t5_folder) -> None:
    adapter = create_adapter("prostt5-3di", path=t5_folder)
    adapter.load()
    samples = [Sample("h12", protein=_helix(12)), Sample("h20", protein=_helix(20))]
    states = three_di_sequence(samples[0].protein, "h12")
    assert len(states) == 12 and set(states) <= set("ACDEFGHIKLMNPQRSTVWY")
    item = adapter.prepare(samples[0])
    assert item.text == states.lower()
    ids, hidden = _direct(adapter, "<fold2AA> " + " ".join(states.lower()))
    assert list(item.ids) == ids and ids[0] == adapter._tokenizer.convert_tokens_to_ids(
        "<fold2AA>")
    out = adapter.embed([item], ["24"], "mean")
    np.testing.assert_allclose(out.pooled["24"][0], hidden[24][0][1:-1].mean(0).numpy(),
                               atol=2e-5)
    assert validate_adapter(adapter, samples, check_invariance=False).ok
    broken = _helix(5).backbone.copy()
    broken[2, 1] = np.nan
    with pytest.raises(SampleError, match="'gap'.*residue 3 lacks"):
        adapter.prepare(Sample("gap", protein=ProteinStructure("AAAAA", broken)))


# --- ChemBERTa, ChemGPT ----------------------------------------------------------------------
def test_chemberta_reads_canonical_smiles_between_s_tokens(roberta_folder) -> None:
    adapter = create_adapter("chemberta-2-77m-mlm", path=roberta_folder)
    assert validate_adapter(adapter, _smiles_samples(), check_invariance=False).ok
    assert adapter.max_tokens == 512
    for sample in _smiles_samples():
        item = adapter.prepare(sample)
        ids, states = _direct(adapter, item.text)
        assert list(item.ids) == ids
        tokens = adapter._tokenizer.convert_ids_to_tokens(ids)
        assert tokens[0] == "<s>" and tokens[-1] == "</s>"
        out = adapter.embed([item], ["3"], "mean")
        np.testing.assert_allclose(out.pooled["3"][0], states[3][0][1:-1].mean(0).numpy(),
                                   atol=2e-5)
    assert adapter.prepare(Sample("e", smiles="OCC")).text == "CCO"


def test_chemgpt_reads_selfies_symbols(gpt_neo_folder) -> None:
    adapter = create_adapter("chemgpt-4.7m", path=gpt_neo_folder)
    assert validate_adapter(adapter, _smiles_samples(), check_invariance=False).ok
    item = adapter.prepare(Sample("e", smiles="OCC"))
    assert item.text == "[C][C][O]"
    tokens = adapter._tokenizer.convert_ids_to_tokens(list(item.ids))
    assert tokens == ["[CLS]", "[C]", "[C]", "[O]", "[SEP]"]
    ids, states = _direct(adapter, item.text)
    assert list(item.ids) == ids
    mean = adapter.embed([item], ["0", "24"], "mean")
    for layer in ("0", "24"):
        np.testing.assert_allclose(mean.pooled[layer][0],
                                   states[int(layer)][0][1:-1].mean(0).numpy(), atol=2e-5)
    last = adapter.embed([item], ["24"], "last").pooled["24"][0]
    np.testing.assert_allclose(last, states[24][0][-1].numpy(), atol=2e-5)
    with pytest.raises(SampleError, match="'bad'.*RDKit"):
        adapter.prepare(Sample("bad", smiles="C1CC"))


def test_molformer_card_needs_its_own_code() -> None:
    card = get_card("molformer-xl-both-10pct")
    assert card.options["trust_remote_code"] is True
    assert card.options["model_kwargs"] == {"deterministic_eval": True,
                                            "add_pooling_layer": False}
    assert card.layer_names == [str(i) for i in range(13)]
    with pytest.raises(ModelNotFoundError, match="molformer-xl-both-10pct"):
        create_adapter("molformer-xl-both-10pct").load()


def test_runner_stores_every_layer_of_a_windowed_protein(esm_folder, tmp_path) -> None:
    from matteralign.data.sample import Dataset, DatasetCard
    from matteralign.run.embed import embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    adapter = create_adapter("esm2-t6-8m", path=esm_folder, max_tokens=32, window=30,
                             window_overlap=15)
    adapter.load()
    samples = [PROTEINS[0], Sample("long", sequence=LONG), PROTEINS[1]]
    card = DatasetCard(name="proteins", version="1", domain="proteins", description="test",
                       provenance="test", license="CC0-1.0")
    store = EmbeddingStore(tmp_path / "store")
    summary = embed_dataset(adapter, Dataset(card, samples), store, layers="all",
                            batch_budget=100)
    assert (summary.n_embedded, summary.n_failed) == (3, 0)
    record = store.read_shard(store.shard_paths("proteins", "esm2-t6-8m")[0])
    assert record.ids == ["p1", "long", "p2"] and sorted(record.layers, key=int) == [
        str(i) for i in range(7)]
    direct = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    for layer, values in record.layers.items():
        np.testing.assert_allclose(values, direct.pooled[layer], atol=1e-6)


def test_shard_provenance_names_the_windowed_proteins_of_that_shard(esm_folder, tmp_path) -> None:
    from matteralign.data.sample import Dataset, DatasetCard
    from matteralign.run.embed import embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    adapter = create_adapter("esm2-t6-8m", path=esm_folder, max_tokens=32, window=30,
                             window_overlap=15)
    adapter.load()
    samples = [PROTEINS[0], Sample("long", sequence=LONG), PROTEINS[1]]
    card = DatasetCard(name="proteins", version="1", domain="proteins", description="test",
                       provenance="test", license="CC0-1.0")
    store = EmbeddingStore(tmp_path / "store")
    embed_dataset(adapter, Dataset(card, samples), store, shard_size=2, batch_budget=100)
    first, second = (store.read_shard(path).provenance
                     for path in store.shard_paths("proteins", "esm2-t6-8m"))
    assert first["windowed_samples"] == {"long": len(window_starts(len(LONG), 30, 15))} == {
        "long": 4}
    assert second["windowed_samples"] == {}
    for provenance in (first, second):
        assert provenance["long_sequences"] == (
            "longer than 32 tokens: windows of 30 tokens, overlap >= 15, overlapping positions "
            "averaged")
