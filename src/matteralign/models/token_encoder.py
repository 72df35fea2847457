"""Shared base of adapters for token encoders: tokenised string in, pooled hidden states out.

A subclass tokenises (:meth:`TokenEncoderAdapter.tokenize`) and runs its network over a padded
batch (:meth:`TokenEncoderAdapter.hidden_states`); padding, pooling and per-token output are here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.hidden_state_pooling import TOKEN_POOLINGS, pooled_hidden_output
from matteralign.models.smiles import canonical_smiles


@dataclass(frozen=True)
class TokenizedText:
    """One prepared input of a token encoder.

    Attributes
    ----------
    text : str
        The string the model reads (canonical SMILES for the chemistry models).
    ids : tuple of int, length T
        Token ids, special tokens included, no padding.
    real : tuple of bool, length T
        True for tokens of the string itself, False for special tokens (CLS, SEP, BOS, EOS);
        ``mean``/``sum`` pooling and per-token output use the real tokens only.
    """

    text: str
    ids: tuple[int, ...]
    real: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.real):
            raise ValueError(f"{len(self.ids)} token ids but {len(self.real)} real-token flags")


def torch_dtype(name: str) -> torch.dtype:
    """The torch floating-point dtype called ``name`` (``"float32"``, ``"float64"``, ...)."""
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"unknown floating-point dtype {name!r}")
    return dtype


class TokenEncoderAdapter(ModelAdapter):
    """Adapter of an encoder over token sequences, pooled over real tokens.

    Layer ``"0"`` is the embedding output and ``"1"`` … ``"L"`` the outputs of the L blocks
    (the Hugging Face ``hidden_states`` convention). Pooling: ``mean`` (default) over real
    tokens, special tokens and padding excluded; ``cls`` takes the first position (CLS / BOS
    token), ``last`` the last one (SEP / EOS token). Outputs are float32.

    Options
    -------
    reactions : bool
        Accept reaction SMILES (``a.b>>c``); default False.
    unknown_tokens : {"error", "keep"}
        What a token outside the vocabulary does: ``error`` (default) raises
        :class:`SampleError` naming the tokens; ``keep`` embeds it as the unknown token.
    """

    #: Longest sequence, special tokens included, that the position embeddings allow.
    max_tokens: int = 512

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self._model: Any = None

    def prepare(self, sample: Sample) -> TokenizedText:
        """Canonical SMILES of ``sample``, tokenised; SampleError if invalid or too long."""
        text = super().prepare(sample)
        if self.card.input == "smiles":
            text = canonical_smiles(text, sample.id, bool(self.options.get("reactions", False)))
        item = self.tokenize(text, sample.id)
        if len(item.ids) > self.max_tokens:
            raise SampleError(
                sample.id,
                f"{self.card.input} {text!r} has {len(item.ids)} tokens; {self.id} reads at "
                f"most {self.max_tokens}",
            )
        return item

    def cost(self, item: TokenizedText) -> int:
        """Number of tokens, special tokens included."""
        return len(item.ids)

    def check_unknown(self, sample_id: str, text: str, tokens: Sequence[str],
                      known: Sequence[bool]) -> None:
        """Raise SampleError for tokens outside the vocabulary unless ``unknown_tokens=keep``."""
        if self.options.get("unknown_tokens", "error") == "keep":
            return
        unknown = sorted({token for token, ok in zip(tokens, known, strict=True) if not ok})
        if unknown:
            raise SampleError(
                sample_id,
                f"{text!r} has token(s) {', '.join(unknown)} outside the vocabulary of "
                f"{self.id} (pass unknown_tokens='keep' to embed them as unknown)",
            )

    @abstractmethod
    def tokenize(self, text: str, sample_id: str) -> TokenizedText:
        """Token ids of ``text`` with the model's special tokens."""

    @property
    @abstractmethod
    def pad_id(self) -> int:
        """Token id used for padding."""

    @abstractmethod
    def hidden_states(
        self, ids: torch.Tensor, mask: torch.Tensor
    ) -> Sequence[torch.Tensor]:
        """Hidden states of every layer for a padded batch.

        Parameters
        ----------
        ids : (B, T) long tensor
            Token ids, right-padded with :attr:`pad_id`.
        mask : (B, T) bool tensor
            True at real positions (special tokens included), False at padding.

        Returns
        -------
        sequence of (B, T, D) tensors
            One per layer, in card order: embedding output first, then each block.
        """

    def embed(
        self,
        batch: Sequence[TokenizedText],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Pooled hidden states of ``layers`` for a batch of tokenised strings.

        Returns
        -------
        EmbeddingOutput
            ``pooled[layer]`` is (B, D) float32; with ``per_item``, ``per_item[layer][b]`` is
            (n_real_b, D), the rows that ``mean`` pooling averages.
        """
        if pooling not in TOKEN_POOLINGS:
            raise ValueError(
                f"model {self.id} pools tokens with one of {TOKEN_POOLINGS}, not {pooling!r}"
            )
        self._check_layers(layers)
        if not batch:
            raise ValueError(f"model {self.id} was given an empty batch")
        longest = max(len(item.ids) for item in batch)
        ids = torch.full((len(batch), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.bool)
        real = torch.zeros((len(batch), longest), dtype=torch.bool)
        for row, item in enumerate(batch):
            ids[row, : len(item.ids)] = torch.tensor(item.ids, dtype=torch.long)
            mask[row, : len(item.ids)] = True
            real[row, : len(item.ids)] = torch.tensor(item.real, dtype=torch.bool)
        last = [len(item.ids) - 1 for item in batch]
        with torch.inference_mode():
            states = self.hidden_states(ids.to(self.device), mask.to(self.device))
            if len(states) != len(self.layer_names):
                raise AdapterError(
                    f"model {self.id} returned {len(states)} hidden states; its card lists "
                    f"{len(self.layer_names)} layers"
                )
            hidden = ((layer, states[self.layer_names.index(layer)].to("cpu")) for layer in layers)
            return pooled_hidden_output(hidden, real, last, pooling, per_item)

    def _ready(self) -> Any:
        """Raise :class:`AdapterError` unless :meth:`load` was called."""
        model = getattr(self, "_model", None)
        self._check_loaded(model)
        return model

    def unload(self) -> None:
        self._model = None
