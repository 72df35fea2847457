"""Samples (one molecule, material or protein in any modality) and datasets of them.

Alignment always joins on sample ids, never on positions, so ids must be unique and stable.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from matteralign.data.structure_checks import MAX_CELL_LENGTH, MIN_DISTANCE, structure_problem
from matteralign.errors import DatasetError

Modality = Literal["atoms", "smiles", "sequence", "backbone"]
Domain = Literal["molecules", "materials", "proteins"]

BACKBONE_ATOMS = ("N", "CA", "C", "O")


@dataclass(frozen=True, eq=False)
class ProteinStructure:
    """Backbone of one protein chain.

    Attributes
    ----------
    sequence : str
        One-letter amino-acid sequence, length L (``X`` for non-standard residues).
    backbone : (L, 4, 3) float array
        Cartesian coordinates in Å of the atoms N, CA, C, O of each residue; NaN where missing.
    """

    sequence: str
    backbone: np.ndarray

    def __post_init__(self) -> None:
        backbone = np.asarray(self.backbone, dtype=np.float64)
        if backbone.shape != (len(self.sequence), 4, 3):
            raise DatasetError(
                f"protein backbone has shape {backbone.shape}; expected "
                f"({len(self.sequence)}, 4, 3) for a sequence of length {len(self.sequence)}"
            )
        object.__setattr__(self, "backbone", backbone)


@dataclass(frozen=True, eq=False)
class Sample:
    """One structure in every modality a dataset knows for it.

    Attributes
    ----------
    id : str
        Stable identifier, unique within its dataset.
    atoms : ase.Atoms, optional
        3D structure (periodic or not), positions in Å.
    smiles : str, optional
        SMILES string (canonicalised by the adapters that read it).
    sequence : str, optional
        Protein sequence, one-letter code.
    protein : ProteinStructure, optional
        Protein backbone.
    labels : dict of str to float
        Per-sample targets, in the units that the dataset card's labels declare.
    """

    id: str
    atoms: object | None = None
    smiles: str | None = None
    sequence: str | None = None
    protein: ProteinStructure | None = None
    labels: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise DatasetError(f"sample id must be a non-empty string, got {self.id!r}")
        if self.sequence is None and self.protein is not None:
            object.__setattr__(self, "sequence", self.protein.sequence)

    @property
    def modalities(self) -> frozenset[Modality]:
        """The modalities this sample can be given to a model in."""
        present: list[Modality] = []
        if self.atoms is not None:
            present.append("atoms")
        if self.smiles is not None:
            present.append("smiles")
        if self.sequence is not None:
            present.append("sequence")
        if self.protein is not None:
            present.append("backbone")
        return frozenset(present)

    def structure_problem(
        self, min_distance: float = MIN_DISTANCE, max_cell_length: float = MAX_CELL_LENGTH
    ) -> str | None:
        """Why ``atoms`` cannot be a model's input, or None when it can (see
        :func:`~matteralign.data.structure_checks.structure_problem`).

        Computed once per sample and arguments, then remembered (pickled with the sample, so
        worker processes and model environments reuse it): every model of a study asks, and
        the overlap search costs about 0.3 ms for a 90-atom crystal.
        """
        if self.atoms is None:
            raise DatasetError(f"sample {self.id} has no atoms to check")
        remembered = self.__dict__.setdefault("_structure_problems", {})
        key = (float(min_distance), float(max_cell_length))
        if key not in remembered:
            remembered[key] = structure_problem(self.atoms, *key)
        return remembered[key]

    def content_hash(self) -> str:
        """SHA-256 over the id and every modality's exact content (positions to the bit)."""
        digest = hashlib.sha256(self.id.encode())
        if self.atoms is not None:
            atoms = self.atoms
            digest.update(b"atoms")
            digest.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
            digest.update(np.ascontiguousarray(atoms.cell[:], dtype=np.float64).tobytes())
            digest.update(np.ascontiguousarray(atoms.pbc, dtype=np.bool_).tobytes())
        for name, text in (("smiles", self.smiles), ("sequence", self.sequence)):
            if text is not None:
                digest.update(name.encode() + text.encode())
        if self.protein is not None:
            digest.update(b"backbone" + np.ascontiguousarray(self.protein.backbone).tobytes())
        for key in sorted(self.labels):
            digest.update(key.encode() + np.float64(self.labels[key]).tobytes())
        return digest.hexdigest()


class Label(BaseModel):
    """A per-sample target that a dataset provides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    unit: str
    description: str = ""


class SourceFile(BaseModel):
    """A file a dataset was read from: where it was, how large, and its SHA-256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    size: int
    sha256: str


class DatasetCard(BaseModel):
    """What a dataset is, where it came from and under which license."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    domain: Domain
    description: str
    provenance: str
    license: str
    labels: list[Label] = []
    out_of_distribution: bool = False
    citation: str = ""
    files: list[SourceFile] = []


class Dataset:
    """An ordered collection of samples with unique ids.

    Parameters
    ----------
    card : DatasetCard
        Name, version, provenance, license and labels.
    samples : sequence of Sample
        Samples in a fixed order; ids must be unique.
    skipped : sequence of str
        Records of the source that were left out, one ``"<file>: <record>: <reason>"`` each.

    Raises
    ------
    DatasetError
        If two samples share an id (the message names the duplicated ids).
    """

    def __init__(
        self, card: DatasetCard, samples: Sequence[Sample], skipped: Sequence[str] = ()
    ) -> None:
        self.card = card
        self.samples: tuple[Sample, ...] = tuple(samples)
        self.skipped: tuple[str, ...] = tuple(skipped)
        self._fingerprint: str | None = None
        counts = Counter(sample.id for sample in self.samples)
        duplicates = sorted(sample_id for sample_id, n in counts.items() if n > 1)
        if duplicates:
            shown = ", ".join(repr(d) for d in duplicates[:5])
            raise DatasetError(
                f"dataset {card.name!r} has {len(duplicates)} duplicated sample id(s): {shown}"
                f"{' ...' if len(duplicates) > 5 else ''}; ids must be unique"
            )
        self._index = {sample.id: i for i, sample in enumerate(self.samples)}

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def ids(self) -> list[str]:
        return [sample.id for sample in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, sample_id: str) -> Sample:
        try:
            return self.samples[self._index[sample_id]]
        except KeyError:
            raise DatasetError(f"dataset {self.name!r} has no sample {sample_id!r}") from None

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, version={self.card.version!r}, n={len(self)})"

    @property
    def modalities(self) -> frozenset[Modality]:
        """Modalities that every sample of the dataset has."""
        if not self.samples:
            return frozenset()
        return frozenset.intersection(*(sample.modalities for sample in self.samples))

    def subset(self, n: int | None, seed: int = 0) -> Dataset:
        """A seeded random subset of ``n`` samples, kept in the dataset's order.

        ``n=None`` or ``n >= len(self)`` returns the dataset itself.
        """
        if n is None or n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(self), size=n, replace=False))
        card = self.card.model_copy(update={"version": f"{self.card.version}+n{n}s{seed}"})
        return Dataset(card, [self.samples[i] for i in keep], skipped=self.skipped)

    def fingerprint(self) -> str:
        """SHA-256 over the name, version, source files' digests and every sample's content
        hash, in order: what a stored embedding or score was computed from.

        Computed once per Dataset (samples are immutable).
        """
        if self._fingerprint is None:
            digest = hashlib.sha256(f"{self.name}\0{self.card.version}".encode())
            for source in self.card.files:
                digest.update(source.sha256.encode())
            for sample in self.samples:
                digest.update(sample.content_hash().encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint
