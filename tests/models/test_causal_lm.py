"""Tests of models/causal_lm.py on tiny randomly initialised causal LMs built offline."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
from matteralign.models.causal_lm import (
    BLANK_SYSTEM_PROMPT,
    DEFAULT_SYSTEM_PROMPT,
    atoms_as_text,
)
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def _tokenizer(chat_template: str | None) -> transformers.PreTrainedTokenizerFast:
    """A character-level tokenizer over printable ASCII plus Å, BOS added in front."""
    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate(specials + sorted(set(string.printable + "Å")))}
    model = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = tokenizers.pre_tokenizers.Split(
        tokenizers.Regex(r"[\s\S]"), behavior="isolated"
    )
    model.post_processor = tokenizers.processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=model, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", model_input_names=["input_ids", "attention_mask"],
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    return tokenizer


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-layer GPT-2 (no chat template) and a 2-layer Llama (with one), random weights."""
    root = tmp_path_factory.mktemp("llm")
    torch.manual_seed(0)
    gpt2_tok = _tokenizer(None)
    gpt2 = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(
            vocab_size=len(gpt2_tok), n_positions=2048, n_embd=32, n_layer=2, n_head=4
        )
    )
    llama_tok = _tokenizer(CHAT_TEMPLATE)
    llama = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            vocab_size=len(llama_tok), hidden_size=32, intermediate_size=64,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=2048,
        )
    )
    paths = {}
    for name, model, tokenizer in (("gpt2", gpt2, gpt2_tok), ("llama", llama, llama_tok)):
        paths[name] = root / name
        model.save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    return paths


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return [
        Sample("ethanol", smiles="OCC", atoms=molecule("CH3CH2OH")),
        Sample("benzene", smiles="c1ccccc1", atoms=molecule("C6H6")),
        Sample("water", smiles="O", atoms=molecule("H2O")),
    ]


def _reference(adapter, text: str, add_special: bool) -> tuple[np.ndarray, np.ndarray]:
    """Last hidden states of one prompt, run straight through the model."""
    ids = adapter.tokenizer_(text, add_special_tokens=add_special, return_tensors="pt")
    with torch.no_grad():
        out = adapter.model_(input_ids=ids["input_ids"], output_hidden_states=True)
    offsets = adapter.tokenizer_(
        text, add_special_tokens=add_special, return_offsets_mapping=True
    )["offset_mapping"]
    return out.hidden_states[-1][0].numpy(), np.array(offsets)


def test_card_is_a_family_template_that_needs_a_path() -> None:
    card = get_card("llm-causal")
    assert card.input == "smiles" and card.domain == ["molecules"] and card.family == "llm"
    adapter = create_adapter("llm-causal")
    assert adapter.layer_names == ["last"]
    with pytest.raises(ModelNotFoundError, match="path="):
        adapter.load()
    with pytest.raises(ModelNotFoundError, match="not found"):
        create_adapter("llm-causal", path="/nonexistent/llm").load()


def test_gpt2_default_prompt_mean_is_mean_over_smiles_tokens(checkpoints, samples) -> None:
    adapter = create_adapter("llm-causal", path=str(checkpoints["gpt2"]))
    assert adapter.layer_names == ["0", "1", "2"]
    adapter.load()
    item = adapter.prepare(samples[0])
    text = f"{DEFAULT_SYSTEM_PROMPT}\n\nSMILES: CCO"  # RDKit canonical form of OCC
    hidden, offsets = _reference(adapter, text, add_special=True)
    assert item.input_ids[0] == adapter.tokenizer_.bos_token_id
    assert len(item.input_ids) == len(text) + 1  # one token per character, plus BOS
    inside = np.array(item.sample_tokens)
    assert inside.sum() == 3 and (offsets[inside, 0] >= len(text) - 3).all()
    out = adapter.embed([item], ["last", "2"], "mean", per_item=True)
    expected = hidden[-3:].mean(axis=0)
    np.testing.assert_allclose(out.pooled["last"][0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.pooled["last"], out.pooled["2"])
    np.testing.assert_allclose(out.per_item["2"][0], hidden[-3:], rtol=1e-5, atol=1e-6)
    last = adapter.embed([item], ["last"], "last")
    np.testing.assert_allclose(last.pooled["last"][0], hidden[-1], rtol=1e-5, atol=1e-6)


def test_gpt2_passes_validation_for_all_prompts(checkpoints, samples) -> None:
    for prompt, pooling in (("default", "mean"), ("blank", "last"), ("blank-atomistic", "mean")):
        adapter = create_adapter("llm-causal", path=str(checkpoints["gpt2"]), prompt=prompt)
        report = validate_adapter(adapter, samples, pooling=pooling, check_invariance=False)
        assert report.ok and "determinism" in report.passed
        assert "batched==single[2]" in report.passed


def test_prompt_variants_differ_and_blank_atomistic_reads_atoms(checkpoints, samples) -> None:
    pooled = {}
    for prompt in ("default", "blank", "blank-atomistic"):
        adapter = create_adapter("llm-causal", path=str(checkpoints["gpt2"]), prompt=prompt)
        adapter.load()
        pooled[prompt] = adapter.embed([adapter.prepare(samples[0])], ["last"], "last").pooled
    assert not np.allclose(pooled["default"]["last"], pooled["blank"]["last"])
    assert not np.allclose(pooled["blank"]["last"], pooled["blank-atomistic"]["last"])
    dump = atoms_as_text(samples[2].atoms)
    assert dump.startswith("symbols: H2O\nnumbers: [8, 1, 1]\npositions (Å): [[0.0000, ")
    assert dump.endswith("pbc: [False, False, False]")
    atomistic = create_adapter("llm-causal", path=str(checkpoints["gpt2"]),
                               prompt="blank-atomistic")
    item = atomistic.prepare(samples[2])
    assert sum(item.sample_tokens) == len(dump)
    with pytest.raises(SampleError, match="no 3D atoms"):
        atomistic.prepare(Sample("smiles-only", smiles="CCO"))


def test_llama_chat_template_prompt(checkpoints, samples) -> None:
    adapter = create_adapter("llm-causal", path=str(checkpoints["llama"]), prompt="blank")
    adapter.load()
    item = adapter.prepare(samples[1])
    text = f"<s><system>{BLANK_SYSTEM_PROMPT}\n<user>SMILES: c1ccccc1\n<assistant>"
    hidden, _ = _reference(adapter, text, add_special=False)
    assert len(item.input_ids) == len(text) - 2  # "<s>" is one token
    inside = np.flatnonzero(item.sample_tokens)
    assert len(inside) == len("c1ccccc1")
    out = adapter.embed([item], ["last"], "mean")
    np.testing.assert_allclose(out.pooled["last"][0], hidden[inside].mean(axis=0),
                               rtol=1e-5, atol=1e-6)
    assert validate_adapter(adapter, samples, check_invariance=False).ok


def test_invalid_smiles_fails_the_sample(checkpoints) -> None:
    adapter = create_adapter("llm-causal", path=str(checkpoints["gpt2"]))
    with pytest.raises(SampleError, match="cannot parse"):
        adapter.prepare(Sample("bad", smiles="C1CC(("))
    with pytest.raises(SampleError, match="no SMILES"):
        adapter.prepare(Sample("none", sequence="MKT"))


# --- the paper's three LLMs, as tiny twins with each card's layer count ------------------------
PAPER_LLMS = {
    "deepseek-r1-distill-llama-8b": lambda n: transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            vocab_size=n, hidden_size=16, intermediate_size=32, num_hidden_layers=32,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
        )
    ),
    "qwen3-30b-a3b-thinking-2507": lambda n: transformers.Qwen3MoeForCausalLM(
        transformers.Qwen3MoeConfig(
            vocab_size=n, hidden_size=16, intermediate_size=32, moe_intermediate_size=8,
            num_hidden_layers=48, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
            num_experts=4, num_experts_per_tok=2, max_position_embeddings=4096,
        )
    ),
    "gpt-oss-20b": lambda n: transformers.GptOssForCausalLM(
        transformers.GptOssConfig(
            vocab_size=n, hidden_size=16, intermediate_size=16, num_hidden_layers=24,
            num_attention_heads=2, num_key_value_heads=1, head_dim=8, num_local_experts=4,
            num_experts_per_tok=2, sliding_window=8, max_position_embeddings=4096,
            rope_scaling=None,
        )
    ),
}


@pytest.mark.parametrize("model_id", [
    "deepseek-r1-distill-llama-8b",
    # the mixture-of-experts twins: transformers' CPU expert dispatch (index_add_) takes 1-2 min
    pytest.param("qwen3-30b-a3b-thinking-2507", marks=pytest.mark.slow),
    pytest.param("gpt-oss-20b", marks=pytest.mark.slow),
])
def test_paper_llm_cards_on_tiny_twins(model_id, samples, tmp_path) -> None:
    tokenizer = _tokenizer(CHAT_TEMPLATE)
    torch.manual_seed(0)
    folder = tmp_path / model_id
    PAPER_LLMS[model_id](len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    card = get_card(model_id)
    assert card.options["path"].count("/") == 1  # the hub name
    n_layers = len(card.layers) - 1
    for suffix, prompt, modality in (("", "default", "smiles"), ("-blank", "blank", "smiles"),
                                     ("-blank-atomistic", "blank-atomistic", "atoms")):
        variant = get_card(model_id + suffix)
        assert variant.options["prompt"] == prompt and variant.input == modality
        assert variant.layer_names == card.layer_names
    adapter = create_adapter(model_id + "-blank", path=str(folder))  # the short prompt: fast
    assert adapter.layer_names == [str(i) for i in range(n_layers + 1)]  # no config read
    report = validate_adapter(adapter, samples[1:], layers=["0", str(n_layers)],
                              check_invariance=False)
    assert report.ok and f"batched==single[{n_layers}]" in report.passed
    atomistic = create_adapter(model_id + "-blank-atomistic", path=str(folder))
    atomistic.load()
    out = atomistic.embed([atomistic.prepare(samples[2])], ["last"], "last")
    assert out.pooled["last"].shape == (1, 16)
    with pytest.raises(SampleError, match="'si'.*periodic"):
        atomistic.prepare(Sample("si", atoms=bulk("Si", "diamond", a=5.43)))


def test_a_checkpoint_with_other_layers_than_its_card_fails_to_load(checkpoints) -> None:
    adapter = create_adapter("gpt-oss-20b", path=str(checkpoints["gpt2"]))
    with pytest.raises(AdapterError, match="gpt-oss-20b.*weights have layers"):
        adapter.load()
