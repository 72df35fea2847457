"""``matteralign datasets list|show``: the built-in datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Built-in datasets and their cards.", no_args_is_help=True)


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
    name: Annotated[str, typer.Argument(help="A dataset name.")],
    n: Annotated[int | None, typer.Option(help="Build a seeded subset of this size.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset.")] = 0,
    data_root: Annotated[Path | None, typer.Option(envvar="MATTERALIGN_DATA_ROOT")] = None,
) -> None:
    """Build a dataset and print its card, size and fingerprint."""
    import yaml

    from matteralign.data.registry import load_dataset
    from matteralign.errors import MatterAlignError

    try:
        dataset = load_dataset(name, n=n, seed=seed, data_root=data_root)
    except MatterAlignError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    card = dataset.card.model_dump(mode="json")
    card.update(samples=len(dataset), modalities=sorted(dataset.modalities),
                fingerprint=dataset.fingerprint(), first_ids=dataset.ids[:5])
    typer.echo(yaml.safe_dump(card, sort_keys=False))
