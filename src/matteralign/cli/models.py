"""``matteralign models list|show``: the registered models, read from their cards only."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Registered models and their cards.", no_args_is_help=True)


@app.command("list")
def list_models(
    family: Annotated[str | None, typer.Option(help="Only this family (mlip, string, ...).")] = None,
) -> None:
    """List every registered model with its family, input modality and license."""
    from rich.console import Console
    from rich.table import Table

    from matteralign.models.registry import list_cards

    table = Table(title="matteralign models")
    for column in ("id", "family", "input", "domain", "layers", "parameters", "license"):
        table.add_column(column)
    for card in list_cards():
        if family and card.family != family:
            continue
        table.add_row(card.id, card.family, card.input, ",".join(card.domain),
                      str(len(card.layers)),
                      f"{card.parameters:,}" if card.parameters else "?", card.license)
    Console().print(table)


@app.command("show")
def show_model(model_id: Annotated[str, typer.Argument(help="A model id.")]) -> None:
    """Print a model's full card as YAML."""
    import yaml

    from matteralign.errors import ModelNotFoundError
    from matteralign.models.registry import get_card

    try:
        card = get_card(model_id)
    except ModelNotFoundError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(yaml.safe_dump(card.model_dump(mode="json", exclude_defaults=True), sort_keys=False))
