"""Seeded, stratified samples of atoms for atom-level alignment, and their row keys.

The sample depends on the structures and the seed only (never on a model), so every model embeds
the same atoms; each stored row is keyed by (sample id, atom index, element).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from matteralign.data.sample import Sample
from matteralign.errors import DatasetError

__all__ = ["AtomSampling", "atom_row_id", "atom_row_ids", "parse_atom_row_id", "sample_atoms"]

_SEP = "#"


@dataclass(frozen=True)
class AtomSampling:
    """How atoms are sampled from a set of structures.

    Attributes
    ----------
    per_structure : int, optional
        At most this many atoms of one structure, spread over its elements round-robin
        (None: all atoms).
    per_stratum : int, optional
        At most this many atoms of one (subset, element) stratum over the whole set (None: no cap).
    seed : int
    subset_key : str
        ``atoms.info`` key holding a structure's subset label (MAD's "subset", say); structures
        without it form one subset, "".
    """

    per_structure: int | None = 8
    per_stratum: int | None = None
    seed: int = 0
    subset_key: str = "subset"

    def __post_init__(self) -> None:
        for name in ("per_structure", "per_stratum"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise DatasetError(f"atom sampling: {name} must be a positive integer or None, "
                                   f"got {value!r}")

    def record(self) -> dict[str, object]:
        """The settings as a plain dict, for provenance and configuration hashes."""
        return asdict(self)


def sample_atoms(samples: Sequence[Sample], sampling: AtomSampling) -> dict[str, np.ndarray]:
    """Atoms to embed: {sample id: sorted atom indices}, stratified by subset and element.

    Every atom gets a priority u ~ U(0, 1) from ``numpy.random.default_rng(seed)``, drawn in
    dataset order. Within a structure its atoms are ranked by (round, u), the round of an atom
    being its position among the atoms of its element sorted by u, so the first
    ``per_structure`` atoms cover the structure's elements evenly. Within each (subset, element)
    stratum the ``per_stratum`` candidates of lowest u are kept. Structures without atoms (not
    structure samples) are skipped.

    Parameters
    ----------
    samples : sequence of Sample
        The dataset's samples, in dataset order.
    sampling : AtomSampling

    Returns
    -------
    dict of str to (n_i,) int64 array; samples with no atom chosen are absent.
    """
    rng = np.random.default_rng(sampling.seed)
    candidates: list[tuple[str, int, float, int, int]] = []  # (subset, Z, u, sample, atom)
    for position, sample in enumerate(samples):
        if sample.atoms is None:
            continue
        numbers = np.asarray(sample.atoms.numbers)
        u = rng.random(len(numbers))
        rounds = np.empty(len(numbers), dtype=np.int64)
        for z in np.unique(numbers):
            members = np.flatnonzero(numbers == z)
            rounds[members[np.argsort(u[members], kind="stable")]] = np.arange(len(members))
        order = np.lexsort((u, rounds))
        if sampling.per_structure is not None:
            order = order[: sampling.per_structure]
        subset = str(sample.atoms.info.get(sampling.subset_key, ""))
        candidates.extend((subset, int(numbers[i]), float(u[i]), position, int(i)) for i in order)
    if sampling.per_stratum is not None:
        strata: dict[tuple[str, int], list[tuple[str, int, float, int, int]]] = {}
        for c in candidates:
            strata.setdefault((c[0], c[1]), []).append(c)
        candidates = [c for group in strata.values()
                      for c in sorted(group, key=lambda c: c[2])[: sampling.per_stratum]]
    chosen: dict[int, list[int]] = {}
    for _, _, _, position, atom in candidates:
        chosen.setdefault(position, []).append(atom)
    return {samples[p].id: np.sort(np.asarray(chosen[p], dtype=np.int64)) for p in sorted(chosen)}


def atom_row_id(sample_id: str, atom_index: int, element: str) -> str:
    """The stored row id of one atom: ``"<sample id>#<atom index>:<element>"``."""
    return f"{sample_id}{_SEP}{int(atom_index)}:{element}"


def atom_row_ids(sample: Sample, indices: np.ndarray) -> list[str]:
    """Row ids of the atoms ``indices`` of one structure sample."""
    symbols = sample.atoms.get_chemical_symbols()
    return [atom_row_id(sample.id, int(i), symbols[int(i)]) for i in indices]


def parse_atom_row_id(row_id: str) -> tuple[str, int, str]:
    """(sample id, atom index, element) of a row id made by :func:`atom_row_id`.

    Raises
    ------
    DatasetError
        If ``row_id`` is not an atom row id.
    """
    head, sep, tail = row_id.rpartition(_SEP)
    index, colon, element = tail.partition(":")
    if not sep or not colon or not index.isdigit() or not element.isalpha():
        raise DatasetError(f"{row_id!r} is not an atom row id (<sample id>#<atom index>:<element>)")
    return head, int(index), element
