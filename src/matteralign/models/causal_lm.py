"""Large language models as a family: any Hugging Face causal LM reading a molecule as text.

The paper's three prompt variants (default scientific-encoder prompt, "Blank", "Blank Atomistic")
are built here; embeddings are hidden states before generation, pooled over the sample's tokens
or taken at the last prompt token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.hidden_state_pooling import pooled_hidden_output
from matteralign.models.transformer_encoders import checkpoint_source

BLANK_SYSTEM_PROMPT = "You are a domain-agnostic scientific encoder."

# The paper (App. B.2) describes its extended system prompt but does not print it in full; this
# text is a reconstruction from that description (first sentence verbatim), not the original.
DEFAULT_SYSTEM_PROMPT = (
    "You are a domain-agnostic scientific encoder. You read descriptions of matter and turn "
    "them into internal representations; you do not answer questions or chat. Inputs come in "
    "one of these forms: small molecules as SMILES or SELFIES strings; proteins as amino-acid "
    "sequences in one-letter code; materials as normalised structural text giving the chemical "
    "formula, space group, lattice parameters and fractional coordinates of the atoms. Treat a "
    "SMILES string as a molecular graph: atoms, bonds, rings, charges and stereochemistry. "
    "Ignore differences of formatting, such as atom order, whitespace or equivalent notations, "
    "that do not change the structure. Emphasise chemistry, composition and structure. Your "
    "output is used only as hidden-state embeddings."
)

PROMPTS = ("default", "blank", "blank-atomistic")
TORCH_DTYPES = ("float32", "float64", "bfloat16", "float16")


def atoms_as_text(atoms: Any) -> str:
    """A plain-text dump of a molecule's ``ase.Atoms`` for the "Blank Atomistic" prompt.

    Symbols, atomic numbers and positions in Å (4 decimals), with a zero cell and no periodic
    boundaries, as in the paper's example.

    Parameters
    ----------
    atoms : ase.Atoms
        n atoms.

    Returns
    -------
    str
    """
    numbers = [int(z) for z in atoms.numbers]
    positions = ", ".join(
        "[" + ", ".join(f"{x:.4f}" for x in row) + "]" for row in np.asarray(atoms.positions)
    )
    return (
        f"symbols: {atoms.get_chemical_formula(mode='hill')}\n"
        f"numbers: {numbers}\n"
        f"positions (Å): [{positions}]\n"
        "cell: [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]\n"
        "pbc: [False, False, False]"
    )


@dataclass(frozen=True)
class PromptItem:
    """One sample's tokenised prompt.

    Attributes
    ----------
    input_ids : tuple of int
        Prompt tokens, T of them, special tokens included.
    sample_tokens : tuple of bool
        True at the T tokens that overlap the sample's own text (SMILES or atoms dump).
    """

    input_ids: tuple[int, ...]
    sample_tokens: tuple[bool, ...]


class CausalLMAdapter(ModelAdapter):
    """Hidden states of a Hugging Face causal LM given a molecule in one of three prompts.

    Options
    -------
    path : str
        Local folder of a ``transformers`` checkpoint, or a hub name (resolved from the local
        Hugging Face cache when offline). Required.
    prompt : {"default", "blank", "blank-atomistic"}
        ``default``: the extended scientific-encoder system prompt and ``SMILES: <smiles>``;
        ``blank``: the one-sentence system prompt and ``SMILES: <smiles>``; ``blank-atomistic``:
        the one-sentence system prompt and a text dump of the sample's 3D atoms.
    chat_template : bool, default True
        Render system + user messages with the tokenizer's chat template (generation prompt
        added) when it has one; otherwise, or when False, ``system + "\\n\\n" + user``.
    canonicalize : bool, default True
        Canonicalise SMILES with RDKit first.
    device_map : str, optional
        Passed to ``from_pretrained`` for models that need several devices.

    Notes
    -----
    Layers are ``"0"`` (embedding output) to ``"L"``, read from the checkpoint's config;
    ``"last"`` is an alias of ``"L"`` (the paper's last hidden state before generation), so the
    family card names only ``last``. Poolings: ``mean`` over the tokens that overlap the sample's
    text (the system prompt, the ``SMILES:`` label, template and special tokens excluded),
    ``last`` (the final prompt token, where generation would start) and ``cls`` (the first
    token). Batches are right-padded; the model is causal, so padding never reaches a real token.
    """

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self.model_: Any = None
        self.tokenizer_: Any = None
        self._n_layers: int | None = None

    # --- where the weights are and what layers they have -------------------------------------
    def source(self) -> str:
        """Local folder or hub name of the checkpoint.

        Raises
        ------
        ModelNotFoundError
            If the ``path`` option is missing, or names neither an existing folder nor a hub
            name.
        """
        path = self.options.get("path")
        if not path:
            raise ModelNotFoundError(
                f"model {self.id} is a family template: pass the option path=<local checkpoint "
                "folder or cached hub name> of a Hugging Face causal LM"
            )
        return checkpoint_source(str(path), self.id)

    @property
    def layer_names(self) -> list[str]:
        """``"0"`` .. ``"L"``: a checkpoint's own card lists them; the family template reads them
        from the checkpoint's config once ``path`` is given."""
        if self.card.layer_names != ["last"]:
            return self.card.layer_names
        if self._n_layers is None:
            if not self.options.get("path"):
                return self.card.layer_names
            from transformers import AutoConfig

            try:
                config = AutoConfig.from_pretrained(self.source())
            except OSError as error:
                raise ModelNotFoundError(
                    f"model {self.id}: no readable transformers config at {self.source()!r} "
                    f"({error}); pass path=<local checkpoint folder>"
                ) from error
            config = getattr(config, "text_config", None) or config
            self._n_layers = int(config.num_hidden_layers)
        return [str(i) for i in range(self._n_layers + 1)]

    def _layer_index(self, layer: str) -> int:
        names = self.layer_names
        if layer == "last":
            return len(names) - 1
        if layer not in names:
            raise ValueError(f"model {self.id} has no layer {layer!r}; it has {names} and 'last'")
        return int(layer)

    # --- loading -----------------------------------------------------------------------------
    def _load_tokenizer(self) -> None:
        if self.tokenizer_ is not None:
            return
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.source())
        if not tokenizer.is_fast:
            raise AdapterError(
                f"model {self.id}: the tokenizer at {self.source()} is not a fast tokenizer; "
                "token offsets are needed to find the sample's tokens"
            )
        self.tokenizer_ = tokenizer

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self.model_ is not None:
            return
        prompt = self.options.get("prompt", "default")
        if prompt not in PROMPTS:
            raise AdapterError(f"model {self.id}: prompt must be one of {PROMPTS}, not {prompt!r}")
        if dtype not in TORCH_DTYPES:
            raise AdapterError(
                f"model {self.id}: dtype must be one of {TORCH_DTYPES}, not {dtype!r}"
            )
        import torch
        import transformers
        from packaging.version import Version
        from transformers import AutoModelForCausalLM

        self._load_tokenizer()
        # transformers 4.56 renamed torch_dtype to dtype
        new_name = Version(transformers.__version__) >= Version("4.56")
        kwargs: dict[str, Any] = {"dtype" if new_name else "torch_dtype": getattr(torch, dtype)}
        if self.options.get("device_map"):
            kwargs["device_map"] = self.options["device_map"]
        model = AutoModelForCausalLM.from_pretrained(self.source(), **kwargs)
        if not self.options.get("device_map"):
            model = model.to(device)
        self.model_ = model.eval()
        config = getattr(model.config, "text_config", None) or model.config
        self._n_layers = int(config.num_hidden_layers)
        if self.card.layer_names != ["last"]:
            self._check_layer_count(self._n_layers)
        self.device, self.dtype = device, dtype

    def unload(self) -> None:
        self.model_ = None
        self.tokenizer_ = None

    # --- prompts -----------------------------------------------------------------------------
    def sample_text(self, sample: Sample) -> tuple[str, str]:
        """The sample's own text and the user message that carries it.

        Raises
        ------
        SampleError
            If the sample lacks what the prompt needs (SMILES, or 3D atoms for
            ``blank-atomistic``) or its SMILES does not parse.
        """
        if self.options.get("prompt", "default") == "blank-atomistic":
            if sample.atoms is None:
                raise SampleError(
                    sample.id, "has no 3D atoms, which the blank-atomistic prompt dumps as text"
                )
            if sample.atoms.pbc.any():
                raise SampleError(
                    sample.id, "is periodic; the blank-atomistic prompt dumps molecules "
                    "(zero cell, pbc False)"
                )
            text = atoms_as_text(sample.atoms)
            return text, text
        if sample.smiles is None:
            raise SampleError(sample.id, f"has no SMILES, which {self.id} reads")
        smiles = sample.smiles
        if self.options.get("canonicalize", True):
            from rdkit import Chem, RDLogger

            RDLogger.DisableLog("rdApp.*")
            molecule = Chem.MolFromSmiles(smiles)
            if molecule is None:
                raise SampleError(sample.id, f"RDKit cannot parse the SMILES {smiles!r}")
            smiles = Chem.MolToSmiles(molecule)
        return smiles, f"SMILES: {smiles}"

    def render(self, user: str) -> tuple[str, bool]:
        """The full prompt text for one user message, and whether special tokens must be added
        by the tokenizer (False when a chat template already wrote them)."""
        prompt = self.options.get("prompt", "default")
        system = DEFAULT_SYSTEM_PROMPT if prompt == "default" else BLANK_SYSTEM_PROMPT
        tokenizer = self.tokenizer_
        if self.options.get("chat_template", True) and getattr(tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            try:
                text = tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
            except Exception:  # templates without a system role: fold it into the user turn
                messages = [{"role": "user", "content": f"{system}\n\n{user}"}]
                text = tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
            return text, False
        return f"{system}\n\n{user}", True

    def prepare(self, sample: Sample) -> PromptItem:
        self._load_tokenizer()
        content, user = self.sample_text(sample)
        text, add_special = self.render(user)
        start = text.rfind(user)
        if start < 0:
            raise AdapterError(f"model {self.id}: the chat template altered the user message")
        start += user.rfind(content)
        end = start + len(content)
        encoded = self.tokenizer_(
            text, add_special_tokens=add_special, return_offsets_mapping=True
        )
        inside = tuple(
            bool(b > a and a < end and b > start) for a, b in encoded["offset_mapping"]
        )
        if not any(inside):
            raise SampleError(sample.id, "no token of the prompt covers the sample's text")
        return PromptItem(tuple(encoded["input_ids"]), inside)

    def cost(self, item: PromptItem) -> int:
        return len(item.input_ids)

    # --- forward -----------------------------------------------------------------------------
    def embed(
        self,
        batch: Sequence[PromptItem],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        import torch

        self._check_loaded(self.model_)
        indices = {layer: self._layer_index(layer) for layer in layers}
        lengths = [len(item.input_ids) for item in batch]
        width = max(lengths)
        tokenizer = self.tokenizer_
        pad = tokenizer.pad_token_id
        pad = pad if pad is not None else (tokenizer.eos_token_id or 0)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.bool)
        for b, item in enumerate(batch):
            ids[b, : lengths[b]] = torch.tensor(item.input_ids)
            attention[b, : lengths[b]] = 1
            mask[b, : lengths[b]] = torch.tensor(item.sample_tokens)
        device = self.model_.device
        with torch.no_grad():
            out = self.model_(
                input_ids=ids.to(device),
                attention_mask=attention.to(device),
                output_hidden_states=True,
                use_cache=False,
            )
        last = [n - 1 for n in lengths]
        hidden = ((layer, out.hidden_states[index]) for layer, index in indices.items())
        return pooled_hidden_output(hidden, mask, last, pooling, per_item)
