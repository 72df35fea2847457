"""IgLM and IgLM-S (Shuai et al. 2023), GPT-2 antibody language models bundled in iglm 0.1.0.

Layers ``"0"`` (embedding output) to ``"n"`` are GPT-2 hidden states (the last one after the
final layer norm). Academic, non-commercial use only (JHU license): see the cards.
"""

from __future__ import annotations

from matteralign.errors import AdapterError
from matteralign.models.protein_sequence import (
    ResidueTokenAdapter,
    read_vocabulary,
)

TORCH_DTYPES = ("float32", "float64", "bfloat16", "float16")
CHAIN_TOKENS = {"heavy": "[HEAVY]", "light": "[LIGHT]"}
SPECIES_TOKENS = {
    name: f"[{name.upper()}]" for name in ("camel", "human", "mouse", "rabbit", "rat", "rhesus")
}


class IgLMAdapter(ResidueTokenAdapter):
    """IgLM hidden states of every layer, input ``[chain] [species] residues [SEP]``.

    Options
    -------
    variant : {"IgLM", "IgLM-S"}
        Which bundled checkpoint.
    chain : {"heavy", "light"}, default "heavy"
        The conditioning chain token.
    species : {"human", "mouse", "camel", "rabbit", "rat", "rhesus"}, default "human"
        The conditioning species token.

    Notes
    -----
    Poolings: ``mean`` over the residue tokens (the two conditioning tokens, [SEP] and padding
    excluded), ``cls`` (the chain token: the model is causal, so it is the same for every
    sequence) and ``last`` (the [SEP] token, which has seen the whole sequence). Per-item output
    has one row per residue. Batches are right-padded; the model is causal, so padding never
    reaches a real token. Only the 20 standard amino acids are in the vocabulary.
    """

    max_residues = 509
    forward_options = {"use_cache": False}

    def prefix_tokens(self) -> list[str]:
        chain = str(self.options.get("chain", "heavy")).lower()
        species = str(self.options.get("species", "human")).lower()
        if chain not in CHAIN_TOKENS:
            raise AdapterError(f"model {self.id}: chain must be one of {list(CHAIN_TOKENS)}")
        if species not in SPECIES_TOKENS:
            raise AdapterError(f"model {self.id}: species must be one of {list(SPECIES_TOKENS)}")
        return [CHAIN_TOKENS[chain], SPECIES_TOKENS[species]]

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self.model_ is not None:
            return
        if dtype not in TORCH_DTYPES:
            raise AdapterError(
                f"model {self.id}: dtype must be one of {TORCH_DTYPES}, not {dtype!r}"
            )
        import torch
        import transformers
        from iglm.model.IgLM import CHECKPOINT_DICT, VOCAB_FILE

        variant = str(self.options.get("variant", "IgLM"))
        if variant not in CHECKPOINT_DICT:
            raise AdapterError(
                f"model {self.id}: variant must be one of {list(CHECKPOINT_DICT)}, not {variant!r}"
            )
        self.prefix_tokens()
        model = transformers.GPT2Model.from_pretrained(CHECKPOINT_DICT[variant])
        self.model_ = model.to(device=device, dtype=getattr(torch, dtype)).eval()
        self.vocab_ = read_vocabulary(VOCAB_FILE)
        self._check_layer_count(model.config.n_layer)
        self.device, self.dtype = device, dtype
