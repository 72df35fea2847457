"""CB513 and TS115: PDB-derived protein sequences with per-residue DSSP secondary structure.

Read from ``<data_root>/proteins/ps4/{CB513,TS115}_HHblits.csv`` (PS4 dataset copy, CC0).
"""

from __future__ import annotations

import csv
from pathlib import Path

from matteralign.data.sample import Dataset, DatasetCard, Label, Sample
from matteralign.data.sources import read_source_line, require_data_files
from matteralign.errors import DatasetError

NAME = "cb513-ts115"
FOLDER = "proteins/ps4"
FILES = {"cb513": "CB513_HHblits.csv", "ts115": "TS115_HHblits.csv"}
LABELS = [
    Label(name="helix_fraction", unit="1", description="fraction of residues with DSSP3 H"),
    Label(name="strand_fraction", unit="1", description="fraction of residues with DSSP3 E"),
    Label(name="coil_fraction", unit="1", description="fraction of residues with DSSP3 C"),
]


def read_dssp(data_root: Path | None) -> dict[str, tuple[str, str]]:
    """Per-residue DSSP strings of every sequence: ``{id: (dssp3, dssp8)}``, one letter a residue.

    ``dssp3`` uses H/E/C, ``dssp8`` uses H/G/I/E/B/T/S/C; both have the sequence's length.
    """
    out: dict[str, tuple[str, str]] = {}
    for sample_id, _, dssp3, dssp8 in _rows(data_root):
        out[sample_id] = (dssp3, dssp8)
    return out


def _rows(data_root: Path | None) -> list[tuple[str, str, str, str]]:
    paths = require_data_files(data_root, [f"{FOLDER}/{f}" for f in FILES.values()], NAME)
    rows = []
    for (subset, _), path in zip(FILES.items(), paths, strict=True):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, skipinitialspace=True)
            for index, row in enumerate(reader):
                try:
                    sequence = "".join(row["input"].split())
                    dssp3 = "".join(row["dssp3"].split())
                    dssp8 = "".join(row["dssp8"].split())
                except (KeyError, AttributeError):
                    raise DatasetError(
                        f"{path}:{index + 2}: expected columns input, dssp3, dssp8"
                    ) from None
                if not (len(sequence) == len(dssp3) == len(dssp8)):
                    raise DatasetError(f"{path}:{index + 2}: sequence and DSSP lengths differ")
                rows.append((f"{subset}-{index:03d}", sequence, dssp3, dssp8))
    return rows


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """The 626 CB513 (511) and TS115 (115) sequences, ids ``cb513-<i>`` / ``ts115-<i>``.

    Labels are the DSSP3 helix/strand/coil fractions; the per-residue strings come from
    :func:`read_dssp`.
    """
    samples = []
    for sample_id, sequence, dssp3, _ in _rows(data_root):
        length = len(dssp3)
        labels = {
            "helix_fraction": dssp3.count("H") / length,
            "strand_fraction": dssp3.count("E") / length,
            "coil_fraction": dssp3.count("C") / length,
        }
        samples.append(Sample(id=sample_id, sequence=sequence, labels=labels))
    root = require_data_files(data_root, [f"{FOLDER}/{FILES['cb513']}"], NAME)[0].parent
    card = DatasetCard(
        name=NAME,
        version="ps4-e182026",
        domain="proteins",
        description="CB513 and TS115 protein sequences (20-1,111 residues) with DSSP secondary "
        "structure; per-residue strings via matteralign.data.ps4.read_dssp",
        provenance=read_source_line(root) or "omarperacha/ps4-dataset@e182026:ps4_data/data/",
        license="CC0-1.0",
        labels=LABELS,
        citation="Cuff & Barton, Proteins 34, 508 (1999); "
        "Yang et al., Brief. Bioinf. 19, 482 (2018)",
    )
    return Dataset(card, samples).subset(n, seed=seed)
