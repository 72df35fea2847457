"""Shared base of adapters for token encoders: tokenised string in, pooled hidden states out.

A subclass tokenises (:meth:`TokenEncoderAdapter.tokenize`) and runs its network over a padded
batch (:meth:`TokenEncoderAdapter.hidden_states`); padding, pooling, per-token output and the
overlapping windows of sequences longer than the model's context are here.
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
from matteralign.models.protein_sequence import rare_residues_as_x, three_di_sequence
from matteralign.models.smiles import canonical_smiles, to_selfies


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


def window_starts(n: int, window: int, overlap: int) -> list[int]:
    """First positions of the windows that cover ``n`` tokens.

    Windows hold ``window`` tokens; consecutive windows share at least ``overlap`` of them
    (stride ``window - overlap``); the last window ends at the last token, so it may share more.

    Parameters
    ----------
    n : int
        Tokens to cover.
    window : int
        Tokens per window, ``window > overlap >= 0``.
    overlap : int

    Returns
    -------
    list of int
        ``[0]`` when ``n <= window``; otherwise ``0, s, 2s, ..., n - window`` with
        ``s = window - overlap``.

    Examples
    --------
    >>> window_starts(1500, 1022, 511)
    [0, 478]
    >>> window_starts(10, 4, 2)
    [0, 2, 4, 6]
    """
    if not 0 <= overlap < window:
        raise ValueError(f"window overlap {overlap} must be in [0, {window})")
    if n <= window:
        return [0]
    return [*range(0, n - window, window - overlap), n - window]


@dataclass(frozen=True)
class _Segment:
    """One row of the padded forward batch: a whole item or one window of a long one.

    ``positions[j]`` is the index, in the item's full token sequence, of the segment's token j.
    """

    row: int
    ids: tuple[int, ...]
    positions: tuple[int, ...]


def _segments(item: TokenizedText, row: int, max_tokens: int, window: int,
              overlap: int) -> list[_Segment]:
    """The item itself if it fits ``max_tokens``; else overlapping windows of its real tokens.

    Each window is the item's leading special tokens, ``window`` consecutive real tokens and its
    trailing special tokens, as the model would read a sequence of that length.
    """
    n = len(item.ids)
    if n <= max_tokens:
        return [_Segment(row, item.ids, tuple(range(n)))]
    real = [i for i, flag in enumerate(item.real) if flag]
    first, last = real[0], real[-1]
    if last - first + 1 != len(real):
        raise AdapterError(f"cannot window {item.text!r}: its real tokens are not contiguous")
    head, tail = tuple(range(first)), tuple(range(last + 1, n))
    if len(head) + window + len(tail) > max_tokens:
        raise AdapterError(
            f"windows of {window} tokens plus {len(head) + len(tail)} special tokens exceed the "
            f"model's {max_tokens}"
        )
    return [
        _Segment(row, tuple(item.ids[i] for i in positions), positions)
        for start in window_starts(len(real), window, overlap)
        for positions in [(*head, *range(first + start, first + start + window), *tail)]
    ]


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

    Sequences longer than :attr:`max_tokens` fail the sample, unless the ``window`` option is
    set: then the model reads overlapping windows of ``window`` real tokens (each with the
    sequence's leading and trailing special tokens), consecutive windows sharing
    ``window_overlap`` tokens (default ``window // 2``; see :func:`window_starts`). The hidden
    state of each token of the full sequence, special tokens included, is the mean over the
    windows that hold it, and pooling runs on these merged states. This is how ESM-2's authors
    embed proteins longer than its 1,022-residue context. :meth:`provenance` names the windowed
    samples.

    Options
    -------
    reactions : bool
        Accept reaction SMILES (``a.b>>c``); default False.
    selfies : bool
        Read SMILES as SELFIES (:func:`~matteralign.models.smiles.to_selfies`); default False.
    rare_residues : str
        Protein letters read as ``X`` (ProstT5: ``"UZOB"``); default none.
    lowercase : bool
        Lower-case the text (ProstT5 writes 3Di states in lower case); default False.
    unknown_tokens : {"error", "keep"}
        What a token outside the vocabulary does: ``error`` (default) raises
        :class:`SampleError` naming the tokens; ``keep`` embeds it as the unknown token.
    window, window_overlap : int
        Windowing of long sequences, in real tokens (see above).

    Inputs: ``smiles`` samples are RDKit-canonicalised; ``sequence`` samples are upper-cased;
    ``backbone`` samples are turned into their Foldseek 3Di state sequence
    (:func:`~matteralign.models.protein_sequence.three_di_sequence`).
    """

    #: Longest sequence, special tokens included, that the position embeddings allow.
    max_tokens: int = 512

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self._model: Any = None
        self._windowed: dict[str, int] = {}

    def sample_text(self, sample: Sample) -> str:
        """The string the model reads for ``sample``, before its own special tokens and spacing.

        Raises
        ------
        SampleError
            If the sample lacks the model's input or it cannot be converted (invalid SMILES,
            a SMILES that SELFIES cannot write, a backbone without usable coordinates).
        """
        content = super().prepare(sample)
        if self.card.input == "smiles":
            if self.options.get("selfies", False):
                text = to_selfies(content, sample.id)
            else:
                text = canonical_smiles(
                    content, sample.id, bool(self.options.get("reactions", False))
                )
        elif self.card.input == "backbone":
            text = three_di_sequence(content, sample.id)
        else:
            if not content:
                raise SampleError(sample.id, "has an empty protein sequence")
            text = rare_residues_as_x(  # one-letter codes: case carries no meaning in FASTA
                content.upper(), str(self.options.get("rare_residues", ""))
            )
        return text.lower() if self.options.get("lowercase", False) else text

    def prepare(self, sample: Sample) -> TokenizedText:
        """The sample's text (:meth:`sample_text`), tokenised; SampleError if invalid or too long
        for a model that does not window."""
        text = self.sample_text(sample)
        item = self.tokenize(text, sample.id)
        if len(item.ids) > self.max_tokens:
            window = self.options.get("window")
            if not window:
                raise SampleError(
                    sample.id,
                    f"{self.card.input} {text!r} has {len(item.ids)} tokens; {self.id} reads at "
                    f"most {self.max_tokens}",
                )
            n_windows = len(window_starts(sum(item.real), *self._window()))
            self._windowed[sample.id] = n_windows
        return item

    def _window(self) -> tuple[int, int]:
        """(real tokens per window, overlap); the overlap is checked here, the window's length
        against :attr:`max_tokens` where windows are cut."""
        window = int(self.options.get("window") or self.max_tokens)
        overlap = int(self.options.get("window_overlap", window // 2))
        if not 0 <= overlap < window:
            raise AdapterError(
                f"model {self.id}: window_overlap {overlap} must be in [0, window={window})"
            )
        return window, overlap

    def provenance(self, sample_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """How long sequences were read, for a shard's provenance.

        Parameters
        ----------
        sample_ids : sequence of str, optional
            The shard's samples; default every sample prepared since load.

        Returns
        -------
        dict
            ``long_sequences``: the rule (windows and overlap, or "fail the sample");
            ``windowed_samples``: sample id → number of windows, for those of ``sample_ids``
            that were longer than :attr:`max_tokens`.
        """
        if not self.options.get("window"):
            rule = f"longer than {self.max_tokens} tokens: sample fails"
        else:
            window, overlap = self._window()
            rule = (f"longer than {self.max_tokens} tokens: windows of {window} tokens, "
                    f"overlap >= {overlap}, overlapping positions averaged")
        wanted = self._windowed if sample_ids is None else set(sample_ids)
        windowed = {key: n for key, n in self._windowed.items() if key in wanted}
        return {"long_sequences": rule, "windowed_samples": windowed}

    def cost(self, item: TokenizedText) -> int:
        """Number of tokens the model reads, special tokens (of every window) included."""
        if len(item.ids) <= self.max_tokens:
            return len(item.ids)
        window, overlap = self._window()
        n_windows = len(window_starts(sum(item.real), window, overlap))
        return n_windows * (window + len(item.ids) - sum(item.real))

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
        window, overlap = self._window()
        segments = [segment for row, item in enumerate(batch)
                    for segment in _segments(item, row, self.max_tokens, window, overlap)]
        longest = max(len(segment.ids) for segment in segments)
        ids = torch.full((len(segments), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(segments), longest), dtype=torch.bool)
        for index, segment in enumerate(segments):
            ids[index, : len(segment.ids)] = torch.tensor(segment.ids, dtype=torch.long)
            mask[index, : len(segment.ids)] = True
        full = max(len(item.ids) for item in batch)
        real = torch.zeros((len(batch), full), dtype=torch.bool)
        for row, item in enumerate(batch):
            real[row, : len(item.ids)] = torch.tensor(item.real, dtype=torch.bool)
        last = [len(item.ids) - 1 for item in batch]
        windowed = len(segments) > len(batch)
        with torch.inference_mode():
            states = self.hidden_states(ids.to(self.device), mask.to(self.device))
            if len(states) != len(self.layer_names):
                raise AdapterError(
                    f"model {self.id} returned {len(states)} hidden states; its card lists "
                    f"{len(self.layer_names)} layers"
                )
            merge = _merge_windows(segments, mask, len(batch), full) if windowed else None
            hidden = (  # pooled where the states are; only (B, D) rows go to the host
                (layer, merge(state) if merge else state)
                for layer in layers
                for state in [states[self.layer_names.index(layer)]]
            )
            return pooled_hidden_output(hidden, real, last, pooling, per_item)

    def _ready(self) -> Any:
        """Raise :class:`AdapterError` unless :meth:`load` was called."""
        model = getattr(self, "_model", None)
        self._check_loaded(model)
        return model

    def unload(self) -> None:
        self._model = None
        self._windowed.clear()


def _merge_windows(segments: Sequence[_Segment], mask: torch.Tensor, batch: int,
                   length: int) -> Any:
    """A function taking (S, T, D) segment states to (B, length, D) per-item states.

    Each item position gets the mean, in float32, of the states of the segment tokens mapped
    onto it; unfilled positions (padding) are zero.
    """
    index = torch.cat([
        torch.tensor(segment.positions, dtype=torch.long) + segment.row * length
        for segment in segments
    ])
    flat_mask = mask.reshape(-1)

    def merge(states: torch.Tensor) -> torch.Tensor:
        width = states.shape[-1]
        rows = states.reshape(-1, width)[flat_mask.to(states.device)].to(torch.float32)
        target = index.to(states.device)
        sums = torch.zeros((batch * length, width), dtype=torch.float32, device=states.device)
        sums.index_add_(0, target, rows)
        counts = torch.bincount(target, minlength=batch * length).clamp_min(1)
        return (sums / counts.unsqueeze(1)).reshape(batch, length, width)

    return merge
