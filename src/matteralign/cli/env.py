"""``matteralign env list|create``: the model environments, what they hold, and building them."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Model environments (models that cannot share the main one).",
                  no_args_is_help=True)


@app.command("list")
def list_environments() -> None:
    """List every model environment: its requirements, models, folder and whether it is built."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from matteralign.models.registry import list_cards
    from matteralign.run.environments import environment_specs, get_environment

    table = Table(title="matteralign model environments", box=box.SIMPLE_HEAD)
    for column in ("name", "built", "requirements", "models", "folder"):
        table.add_column(column, overflow="fold")
    for name in environment_specs():
        environment = get_environment(name)
        spec = environment.spec
        held = " ".join(spec.requirements + [f"{pkg} (no deps)" for pkg in spec.no_deps])
        models = " ".join(card.id for card in list_cards() if card.environment == name)
        record = environment.record()
        built = f"yes ({len(record['packages'])} packages)" if record else "no"
        table.add_row(name, built, held, models, str(environment.path))
    Console().print(table)


@app.command("create")
def create_environment(
    name: Annotated[str | None, typer.Argument(help="Environment name (see `env list`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Build every environment.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if built.")] = False,
) -> None:
    """Build a model environment (or all of them) layered on this one; built ones are kept."""
    from matteralign.errors import MatterAlignError
    from matteralign.run.environments import build_environment, environment_specs

    if all_ == (name is not None):
        typer.secho("error: give one environment name or --all", fg="red", err=True)
        raise typer.Exit(2)
    try:
        names = list(environment_specs()) if all_ else [name]
        for each in names:
            environment = build_environment(
                each, force=force, log=lambda line: typer.echo(line, err=True))
            typer.echo(f"{each}: {environment.path}")
    except MatterAlignError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
