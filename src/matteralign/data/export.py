"""A dataset's samples as the text of a standard file (extxyz, SMILES CSV, FASTA) that carries
each sample's id, so outside models can embed them and the ids join the results back."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from matteralign.data.sample import Dataset
from matteralign.errors import DatasetError

__all__ = ["EXPORT_FORMATS", "dataset_text"]

#: suffix -> (format, the modality it writes)
EXPORT_FORMATS = {".extxyz": ("extxyz", "atoms"), ".xyz": ("extxyz", "atoms"),
                  ".csv": ("smiles", "smiles"), ".fasta": ("fasta", "sequence"),
                  ".fa": ("fasta", "sequence")}


def dataset_text(dataset: Dataset, path: Path | str) -> str:
    """The samples of ``dataset`` in the format of ``path``'s suffix, ids included.

    - ``.extxyz`` / ``.xyz``: one frame per sample, the id in the comment line (``id=...``),
      positions in Å, cell and pbc; read back by :func:`matteralign.data.read_file` with the
      same ids;
    - ``.csv``: columns ``id,smiles``;
    - ``.fasta``: ``>id`` then the sequence (Biopython's writer).

    Raises
    ------
    DatasetError
        If the suffix is none of these, or the dataset's samples lack the modality it writes.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise DatasetError(f"cannot export to {path}: use a suffix of "
                           f"{', '.join(EXPORT_FORMATS)}")
    format, modality = EXPORT_FORMATS[suffix]
    if modality not in dataset.modalities:
        raise DatasetError(f"dataset {dataset.name!r} has no {modality} for every sample "
                           f"(it has {', '.join(sorted(dataset.modalities))}); {suffix} "
                           "writes " + modality)
    handle = io.StringIO()
    if format == "extxyz":
        from ase.io import write

        frames = []
        for sample in dataset:
            atoms = sample.atoms.copy()
            atoms.calc = None
            atoms.info = {"id": sample.id}
            frames.append(atoms)
        write(handle, frames, format="extxyz")
    elif format == "smiles":
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "smiles"])
        writer.writerows([sample.id, sample.smiles] for sample in dataset)
    else:
        from Bio import SeqIO
        from Bio.Seq import Seq
        from Bio.SeqRecord import SeqRecord

        SeqIO.write([SeqRecord(Seq(s.sequence), id=s.id, description="") for s in dataset],
                    handle, "fasta")
    return handle.getvalue()
