"""``matteralign compare A B [C ...]``: score files of embeddings of the same samples against
each other, with no study: every registered measure, calibrated, and a small report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["compare"]


def compare(
    files: Annotated[list[Path], typer.Argument(help="Two or more embedding files of the same "
                     "samples: .npy (with --ids), .npz, .parquet, .csv or .safetensors.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for pairs.csv, per_model.csv, "
                                      "matrices/ and compare.md.")] = Path("comparison"),
    ids: Annotated[list[Path] | None, typer.Option(
        "--ids", help="Ids file of a .npy (one id per line); one for all .npy files, or one "
        "per .npy file in order.")] = None,
    columns: Annotated[list[str] | None, typer.Option(
        "--columns", help="Feature columns of .parquet/.csv tables (repeat); default every "
        "column but the id.")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="A measure (repeat); default every registered one "
        "(`matteralign.metrics.list_metrics`).")] = None,
    n_permutations: Annotated[int, typer.Option(
        "--permutations", min=0, help="Rounds of the permutation null of each pair; 0: raw "
        "scores only.")] = 100,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    preprocess: Annotated[list[str] | None, typer.Option(
        "--preprocess", help="Preprocessing step (repeat); default l2.")] = None,
) -> None:
    """Score embedding files of the same samples against each other (no study needed)."""
    from matteralign.cli.main import _guarded

    if len(files) < 2:
        raise typer.BadParameter("give at least two embedding files")
    outcome = _guarded(lambda: _compare(files, out, ids or [], columns, metric, n_permutations,
                                        seed, preprocess or ["l2"]))
    _print(*outcome)


def _names(files: list[Path]) -> list[str]:
    stems = [path.name.split(".")[0] for path in files]
    return stems if len(set(stems)) == len(stems) else [str(path) for path in files]


def _compare(files, out, ids, columns, metrics, n_permutations, seed, preprocess):
    from matteralign.analysis.embedding_file import load_embedding_file
    from matteralign.analysis.file_comparison import (
        compare_embeddings,
        joined,
        write_comparison,
    )
    from matteralign.errors import StoreError

    npy = [path for path in files if path.suffix.lower() == ".npy"]
    if len(ids) not in (0, 1, len(npy)):
        raise StoreError(f"{len(ids)} --ids files for {len(npy)} .npy files; give one for all "
                         "or one per .npy file")
    ids_of = dict(zip(npy, ids if len(ids) == len(npy) else ids * len(npy), strict=False))
    names = _names(files)
    loaded = {name: load_embedding_file(path, ids=ids_of.get(path), columns=columns
                                        if path.suffix.lower() in (".csv", ".parquet") else None)
              for name, path in zip(names, files, strict=True)}
    if out.exists() and not out.is_dir():
        raise StoreError(f"--out {out} is a file; give a folder")
    result = compare_embeddings(joined(loaded), metrics, n_permutations, seed, preprocess)
    report = write_comparison(result, out, dict(zip(names, files, strict=True)))
    return result, report


def _print(result, report: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{result.n_samples} shared samples")
    for column in ("metric", "a", "b", "raw", "calibrated", "p"):
        table.add_column(column, justify="left" if column in ("metric", "a", "b") else "right")
    for row in result.pairs.itertuples():
        table.add_row(row.metric, row.model_a, row.model_b, f"{row.raw:.3f}",
                      f"{row.calibrated:.3f}", f"{row.p_value:.3g}")
    console.print(table)
    for what, why in result.skipped:
        typer.secho(f"not scored: {what}: {why}", fg="yellow", err=True)
    typer.echo(f"report in {report}")
