"""A small FASTA reader that reports malformed records instead of failing on them."""

from __future__ import annotations

from pathlib import Path

from matteralign.errors import DatasetError

AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWYXBZUO")


def read_fasta(path: Path | str) -> tuple[list[tuple[str, str, int]], list[str]]:
    """Records of a protein FASTA file.

    Returns
    -------
    records : list of (header, sequence, line number)
        Header without ``>``, sequence upper-cased with whitespace and a trailing ``*`` removed.
    skipped : list of str
        ``"<file>:<line>: <reason>"`` for records that are empty or hold non-amino-acid letters.

    Raises
    ------
    DatasetError
        If the file is missing, empty or not FASTA (no ``>`` header before the first sequence).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"FASTA file {path}: cannot read ({error})") from None
    records: list[tuple[str, str, int]] = []
    skipped: list[str] = []
    header: str | None = None
    start = 0
    chunks: list[str] = []

    def close() -> None:
        if header is None:
            return
        sequence = "".join(chunks).upper().rstrip("*")
        bad = set(sequence) - AMINO_ACIDS
        if not sequence:
            skipped.append(f"{path}:{start}: record {header!r} has no sequence")
        elif bad:
            skipped.append(
                f"{path}:{start}: record {header!r} has non-amino-acid letters {sorted(bad)}"
            )
        else:
            records.append((header, sequence, start))

    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            close()
            header, start, chunks = line[1:].strip(), number, []
        elif header is None:
            raise DatasetError(f"FASTA file {path}:{number}: sequence before the first '>' header")
        else:
            chunks.append("".join(line.split()))
    close()
    if not records and not skipped:
        raise DatasetError(f"FASTA file {path} holds no records")
    return records, skipped
