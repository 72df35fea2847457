"""Checks of protein sequences against the 20-letter vocabularies of protein language models."""

from __future__ import annotations

from matteralign.data.sample import Sample
from matteralign.errors import SampleError

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
