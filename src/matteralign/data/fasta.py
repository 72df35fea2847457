"""Protein FASTA through Biopython (``Bio.SeqIO``), reporting malformed records with their line."""

from __future__ import annotations

from pathlib import Path

from matteralign.errors import DatasetError

AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWYXBZUO")


def read_fasta(path: Path | str) -> tuple[list[tuple[str, str, int]], list[str]]:
    """Records of a protein FASTA file, parsed by ``Bio.SeqIO`` (``fasta-pearson``: lines that
    start with ``;`` are comments).

    Returns
    -------
    records : list of (header, sequence, line number)
        Header without ``>``, sequence upper-cased with a trailing ``*`` removed, and the line
        of the header.
    skipped : list of str
        ``"<file>:<line>: <reason>"`` for records that are empty or hold non-amino-acid letters.

    Raises
    ------
    DatasetError
        If the file is missing, empty or not FASTA (text before the first ``>`` header).
    """
    from Bio import SeqIO

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"FASTA file {path}: cannot read ({error})") from None
    lines = text.splitlines()
    header_lines = [number for number, line in enumerate(lines, start=1) if line.startswith(">")]
    first_text = next((number for number, line in enumerate(lines, start=1)
                       if line.strip() and not line.lstrip().startswith(";")), None)
    if first_text is not None and (not header_lines or first_text < header_lines[0]):
        raise DatasetError(f"FASTA file {path}:{first_text}: sequence before the first '>' header")
    records: list[tuple[str, str, int]] = []
    skipped: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for record, line in zip(SeqIO.parse(handle, "fasta-pearson"), header_lines, strict=True):
            header = record.description
            sequence = str(record.seq).upper().rstrip("*")
            bad = set(sequence) - AMINO_ACIDS
            if not sequence:
                skipped.append(f"{path}:{line}: record {header!r} has no sequence")
            elif bad:
                skipped.append(
                    f"{path}:{line}: record {header!r} has non-amino-acid letters {sorted(bad)}"
                )
            else:
                records.append((header, sequence, line))
    if not records and not skipped:
        raise DatasetError(f"FASTA file {path} holds no records")
    return records, skipped
