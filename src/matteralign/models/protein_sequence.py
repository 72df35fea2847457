"""Protein sequences for protein language models: the 20-letter checks, rare residues read as X,
the Foldseek 3Di states of a backbone, the vocabulary file and the padded token batch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from matteralign.data.sample import ProteinStructure, Sample
from matteralign.errors import SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.hidden_state_pooling import pooled_hidden_output

STANDARD_AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWY")


def standard_sequence(sample: Sample, model_id: str, max_length: int | None = None) -> str:
    """The sample's sequence, upper case, for a model whose vocabulary has only the 20 standard
    amino acids (no ``X``).

    Parameters
    ----------
    sample : Sample
        Its ``sequence`` (or its structure's sequence) is read.
    model_id : str
        Named in the error messages.
    max_length : int, optional
        Longest sequence, in residues, the model's position embeddings allow.

    Raises
    ------
    SampleError
        If the sample has no sequence, an empty one, a too-long one, or letters outside the 20
        standard amino acids (the message names them and their first position).
    """
    if sample.sequence is None:
        raise SampleError(
            sample.id, f"has no protein sequence or structure, which {model_id} reads"
        )
    sequence = sample.sequence.upper()
    if not sequence:
        raise SampleError(sample.id, "has an empty protein sequence")
    bad = sorted(set(sequence) - STANDARD_AMINO_ACIDS)
    if bad:
        first = min(sequence.index(c) for c in bad)
        raise SampleError(
            sample.id,
            f"residue(s) {', '.join(repr(c) for c in bad)} (first at position {first + 1}) are "
            f"not among the 20 standard amino acids that {model_id}'s vocabulary holds",
        )
    if max_length is not None and len(sequence) > max_length:
        raise SampleError(
            sample.id, f"has {len(sequence)} residues; {model_id} takes at most {max_length}"
        )
    return sequence


def rare_residues_as_x(sequence: str, rare: str) -> str:
    """``sequence`` with every letter of ``rare`` replaced by ``X``.

    ProstT5's model card maps the rare amino acids U, Z, O and B to X before tokenising
    (``re.sub(r"[UZOB]", "X", sequence)``).

    Examples
    --------
    >>> rare_residues_as_x("MUKZB", "UZOB")
    'MXKXX'
    """
    return sequence.translate(str.maketrans(rare, "X" * len(rare))) if rare else sequence


def three_di_sequence(structure: ProteinStructure, sample_id: str) -> str:
    """Foldseek's 3Di structural alphabet state of every residue of a backbone.

    The states come from mini3di, a NumPy port of Foldseek's encoder; C-beta positions are
    placed from N, CA and C as Foldseek does for residues without one.

    Parameters
    ----------
    structure : ProteinStructure
        Backbone (L, 4, 3) of N, CA, C, O in Å.
    sample_id : str
        Named in the error.

    Returns
    -------
    str
        L upper-case letters of Foldseek's 20-state alphabet (``"ACDEFGHIKLMNPQRSTVWY"``);
        residues without a full neighbourhood (the chain ends) get ``D``, as in Foldseek.

    Raises
    ------
    SampleError
        If a residue lacks N, CA or C coordinates, or the chain is shorter than 3 residues.
    """
    import numpy as np
    from mini3di import Encoder

    backbone = np.asarray(structure.backbone, dtype=np.float64)
    missing = np.flatnonzero(np.isnan(backbone[:, :3]).any(axis=(1, 2)))
    if len(missing):
        raise SampleError(
            sample_id, f"residue {missing[0] + 1} lacks N, CA or C coordinates, which the 3Di "
            "states need"
        )
    if len(backbone) < 3:
        raise SampleError(sample_id, f"has {len(backbone)} residues; 3Di states need at least 3")
    encoder = Encoder()
    n, ca, c = backbone[:, 0], backbone[:, 1], backbone[:, 2]
    states = encoder.encode_atoms(ca, np.full_like(ca, np.nan), n, c)
    return str(encoder.build_sequence(states))


def read_vocabulary(path: str | os.PathLike[str]) -> dict[str, int]:
    """Token → id of a one-token-per-line vocabulary file (blank lines skipped, ids by line)."""
    with open(path) as handle:
        return {token.strip(): i for i, token in enumerate(handle) if token.strip()}


def residue_token_batch(
    batch: Sequence[str], vocab: Mapping[str, int], prefix: Sequence[str]
) -> tuple[Any, Any, Any, list[int]]:
    """Token ids ``[*prefix, *residues, "[SEP]"]`` of each sequence, right-padded with [PAD].

    Parameters
    ----------
    batch : sequence of B str
        Sequences of standard amino acids (see :func:`standard_sequence`).
    vocab : mapping of str to int
        Holds every residue letter, the ``prefix`` tokens, ``[SEP]`` and ``[PAD]``.
    prefix : sequence of str
        Tokens before the residues ([CLS], or conditioning tokens).

    Returns
    -------
    ids : (B, T) long tensor
    attention : (B, T) long tensor
        1 at real tokens, 0 at padding.
    residues : (B, T) bool tensor
        True at the residue tokens only.
    last : list of B int
        Position of each sequence's [SEP] token.
    """
    import torch

    lengths = [len(sequence) for sequence in batch]
    width = max(lengths) + len(prefix) + 1
    ids = torch.full((len(batch), width), vocab["[PAD]"], dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    residues = torch.zeros((len(batch), width), dtype=torch.bool)
    for b, sequence in enumerate(batch):
        tokens = [*prefix, *sequence, "[SEP]"]
        ids[b, : len(tokens)] = torch.tensor([vocab[t] for t in tokens])
        attention[b, : len(tokens)] = 1
        residues[b, len(prefix) : len(sequence) + len(prefix)] = True
    return ids, attention, residues, [n + len(prefix) for n in lengths]


class ResidueTokenAdapter(ModelAdapter):
    """Base of the antibody language models that read ``prefix tokens, residues, [SEP]``.

    Subclasses load ``model_`` and ``vocab_`` in ``load`` and give the prefix tokens; this class
    prepares sequences, costs them in tokens and embeds a padded batch, pooling every requested
    hidden state over the residue tokens (see :func:`pooled_hidden_output`).
    """

    max_residues: int
    forward_options: dict[str, Any] = {}

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self.model_: Any = None
        self.vocab_: dict[str, int] = {}

    def prefix_tokens(self) -> list[str]:
        """Tokens before the residues."""
        raise NotImplementedError

    def unload(self) -> None:
        self.model_ = None

    def prepare(self, sample: Sample) -> str:
        return standard_sequence(sample, self.id, max_length=self.max_residues)

    def cost(self, item: str) -> int:
        return len(item) + len(self.prefix_tokens()) + 1

    def embed(
        self,
        batch: Sequence[str],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        import torch

        self._check_loaded(self.model_)
        self._check_layers(layers)
        ids, attention, residues, last = residue_token_batch(
            batch, self.vocab_, self.prefix_tokens()
        )
        with torch.no_grad():
            out = self.model_(
                input_ids=ids.to(self.device),
                attention_mask=attention.to(self.device),
                output_hidden_states=True,
                **self.forward_options,
            )
        hidden = ((layer, out.hidden_states[int(layer)].cpu()) for layer in layers)
        return pooled_hidden_output(hidden, residues, last, pooling, per_item)
