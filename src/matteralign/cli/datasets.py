"""``matteralign datasets list|show|export``: the built-in datasets, a preview of a file, and
a built-in set written out for outside models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Built-in datasets and their cards; previews of your files.",
                  no_args_is_help=True)


@app.command("list")
def list_datasets() -> None:
    """List the built-in datasets with their domain, modalities and size."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from matteralign.data.registry import dataset_names, get_dataset_spec

    table = Table(title="matteralign datasets", box=box.SIMPLE_HEAD)
    names = dataset_names()
    table.add_column("name", no_wrap=True, min_width=max(len(name) for name in names))
    for column in ("domain", "modalities", "samples", "OOD", "source"):
        table.add_column(column, no_wrap=True, min_width=len(column),
                         justify="right" if column == "samples" else "left")
    table.add_column("description", overflow="ellipsis", no_wrap=True, max_width=60)
    for name in names:
        spec = get_dataset_spec(name)
        table.add_row(spec.name, spec.domain, ",".join(spec.modalities), f"{spec.size:,}",
                      "yes" if spec.out_of_distribution else "", spec.source, spec.description)
    Console().print(table)


@app.command("show")
def show_dataset(
    name: Annotated[str, typer.Argument(help="A dataset name, or a file or folder to preview.")],
    n: Annotated[int | None, typer.Option(help="Build a seeded subset of this size.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset.")] = 0,
    format: Annotated[str | None, typer.Option(help="Format of a file (default: its suffix).",
                                               rich_help_panel="File")] = None,
    id_key: Annotated[str | None, typer.Option(help="Key or column of the ids.",
                                               rich_help_panel="File")] = None,
    smiles_column: Annotated[str | None, typer.Option(rich_help_panel="File")] = None,
    label: Annotated[list[str] | None, typer.Option(help="A key or column read as a label "
                                                    "(repeat).", rich_help_panel="File")] = None,
    energy_key: Annotated[str | None, typer.Option(rich_help_panel="File")] = None,
    forces_key: Annotated[str | None, typer.Option(rich_help_panel="File")] = None,
    frames: Annotated[str | None, typer.Option(help="Frames of a trajectory ('::10').",
                                               rich_help_panel="File")] = None,
    data_root: Annotated[Path | None, typer.Option(envvar="MATTERALIGN_DATA_ROOT")] = None,
) -> None:
    """Build a dataset (or read a file) and print its card, size, labels and fingerprint; for a
    file, also the first records skipped and why. The file options are those of a study's
    dataset entry (docs/datasets.md)."""
    import yaml

    from matteralign.cli.main import _guarded
    from matteralign.data.readers import ReadOptions, read_file
    from matteralign.data.registry import load_dataset

    if Path(name).exists() or "/" in name or "." in name:  # a file (built-in names have no dot)
        options = ReadOptions(id_key=id_key, smiles_column=smiles_column, labels=label,
                              energy_key=energy_key, forces_key=forces_key, frames=frames)
        dataset = _guarded(lambda: read_file(name, format=format, n=n, seed=seed,
                                             options=options)).dataset
    else:
        dataset = _guarded(lambda: load_dataset(name, n=n, seed=seed, data_root=data_root))
    card = dataset.card.model_dump(mode="json", exclude_defaults=True)
    card.update(samples=len(dataset), modalities=sorted(dataset.modalities),
                fingerprint=dataset.fingerprint(), first_ids=dataset.ids[:5])
    if dataset.skipped:
        card.update(skipped=len(dataset.skipped), first_skipped=list(dataset.skipped[:5]))
    typer.echo(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))


@app.command("export")
def export_dataset(
    name: Annotated[str, typer.Argument(help="A built-in dataset name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .extxyz/.xyz "
                                      "(structures), .csv (SMILES) or .fasta (sequences).")],
    n: Annotated[int | None, typer.Option(help="A seeded subset of this size.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset.")] = 0,
    data_root: Annotated[Path | None, typer.Option(envvar="MATTERALIGN_DATA_ROOT")] = None,
) -> None:
    """Write a built-in set's structures with their sample ids, to embed with an outside model
    and come back with `matteralign score --embeddings` (the ids join the two)."""
    from matteralign.cli.main import _guarded
    from matteralign.data.export import dataset_text
    from matteralign.data.registry import load_dataset
    from matteralign.store.embedding_store import atomic_write_bytes

    dataset = _guarded(lambda: load_dataset(name, n=n, seed=seed, data_root=data_root))
    text = _guarded(lambda: dataset_text(dataset, out))
    _guarded(lambda: atomic_write_bytes(out, text.encode()))
    typer.echo(f"{len(dataset)} samples of {name} written to {out}")
