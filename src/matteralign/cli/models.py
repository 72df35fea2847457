"""``matteralign models list|show``: the registered models, read from their cards only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Registered models and their cards.", no_args_is_help=True)


@app.command("list")
def list_models(
    family: Annotated[
        str | None, typer.Option(help="Only this family (mlip, string, ...).")] = None,
    data_root: Annotated[Path | None, typer.Option(
        "--data-root", envvar="MATTERALIGN_DATA_ROOT",
        help="Folder whose weights/ holds checkpoints no package ships.")] = None,
) -> None:
    """List every registered model with its family, input modality, license, and whether it
    can run here: "yes" when its packages are installed (or its model environment built) and its
    weights present; "needs download" when its weights load by published name and are not yet
    in their loader's cache (the first run fetches them, and fails offline). Model packages are
    not imported."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from matteralign.models.registry import list_cards, runs_here
    from matteralign.models.weights import weights_cached
    from matteralign.run.environments import card_environment

    table = Table(title="matteralign models", box=box.SIMPLE_HEAD)
    cards = [card for card in list_cards() if not family or card.family == family]
    table.add_column("id", no_wrap=True, min_width=max((len(c.id) for c in cards), default=2))
    for column in ("family", "input", "domain"):
        table.add_column(column, no_wrap=True, min_width=8)
    table.add_column("layers", justify="right", min_width=6)
    table.add_column("params", justify="right", no_wrap=True, min_width=6)
    table.add_column("license", overflow="ellipsis", no_wrap=True, max_width=20, min_width=7)
    table.add_column("runs here", overflow="fold", max_width=64, min_width=9)
    for card in cards:
        ok, why = runs_here(card, data_root)
        environment = card_environment(card)
        if ok and environment is not None and not environment.built:
            ok, why = False, f"environment {card.environment!r} not built: " \
                f"{environment.create_command()}"
        verdict = "yes" if ok else "no"
        if ok and weights_cached(card) is False:
            verdict = "needs download"
        table.add_row(card.id, card.family, card.input, ",".join(card.domain),
                      str(len(card.layers)), _compact(card.parameters), card.license,
                      escape(verdict + (f" ({why})" if why else "")))
    Console().print(table)


def _compact(count: int | None) -> str:
    """``12900000`` → ``12.9M``; unknown → ``?``."""
    if not count:
        return "?"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.1f}{suffix}"
    return str(count)


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
