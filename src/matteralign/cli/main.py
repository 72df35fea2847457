"""Entry point of the ``matteralign`` command; imports no model package until a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matteralign.cli import datasets, models
from matteralign.cli import report as report_command
from matteralign.cli import score as score_command

app = typer.Typer(
    name="matteralign",
    help="Do models of matter learn the same representation? Embed, align, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(datasets.app, name="datasets")
app.command(rich_help_panel="Results")(report_command.report)
app.command(rich_help_panel="Results")(score_command.score)

ConfigArgument = Annotated[
    str, typer.Argument(help="A study YAML file, or a preset name (default, smoke).")
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Folder for the store and results.")]
DataRootOption = Annotated[
    Path | None,
    typer.Option("--data-root", help="Folder with data and weights that no package ships.",
                 envvar="MATTERALIGN_DATA_ROOT"),
]


def _load(config: str, data_root: Path | None):  # -> StudyConfig
    from matteralign.config import load_config
    from matteralign.errors import MatterAlignError

    try:
        study = load_config(config)
    except MatterAlignError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    if data_root is not None:
        study = study.model_copy(update={"data_root": data_root})
    return study


def _guarded(action):  # run an API call, turning our errors into a clean exit
    from matteralign.errors import MatterAlignError

    try:
        return action()
    except MatterAlignError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from None


@app.command(rich_help_panel="Study")
def run(
    config: ConfigArgument = "default",
    out: OutOption = Path("results"),
    data_root: DataRootOption = None,
) -> None:
    """Run a whole study: embed every model, score every pair, write results."""
    from matteralign.run.study import run_study

    study = _load(config, data_root)
    outcome = _guarded(lambda: run_study(study, out))
    _report_outcome(outcome, out)


@app.command(rich_help_panel="Study")
def embed(
    config: ConfigArgument = "default",
    out: OutOption = Path("results"),
    data_root: DataRootOption = None,
) -> None:
    """Embed every dataset with every model into the store (resumable)."""
    from matteralign.run.study import embed_study, write_resolved_config

    study = _load(config, data_root)
    out.mkdir(parents=True, exist_ok=True)
    _guarded(lambda: write_resolved_config(study, out))
    outcome = _guarded(lambda: embed_study(study, out))
    _report_outcome(outcome, out)


@app.command(rich_help_panel="Study")
def align(
    config: ConfigArgument = "default",
    out: OutOption = Path("results"),
) -> None:
    """Score all model pairs from stored embeddings; write the matrices as Parquet."""
    from matteralign.run.study import align_study

    study = _load(config, None)
    outcome = _guarded(lambda: align_study(study, out))
    _report_outcome(outcome, out)


@app.command(rich_help_panel="Study")
def status(out: OutOption = Path("results")) -> None:
    """Show what the store holds: shards per dataset and model, and failed samples."""
    from rich.console import Console
    from rich.table import Table

    from matteralign.store.embedding_store import EmbeddingStore

    if not (out / "store").is_dir():
        typer.secho(f"no store under {out}; run `matteralign embed` first", fg="red", err=True)
        raise typer.Exit(1)
    store = EmbeddingStore(out / "store")
    manifest = __import__("pandas").read_parquet(store.write_manifest())
    console = Console()
    table = Table(title=f"store {store.root}")
    for column in ("dataset", "model", "shards", "embedded", "failed", "corrupt"):
        table.add_column(column, justify="right" if column not in ("dataset", "model") else "left")
    if len(manifest):
        grouped = manifest.groupby(["dataset", "model"])
        for (dataset, model), group in grouped:
            table.add_row(dataset, model, str(len(group)), str(int(group.n_samples.sum())),
                          str(int(group.n_failed.sum())), str(int((group.status != "ok").sum())))
    console.print(table)
    failures = store.failures()
    if failures:
        failed = Table(title=f"{len(failures)} failed samples")
        for column in ("dataset", "model", "sample_id", "reason"):
            failed.add_column(column)
        for row in failures[:50]:
            failed.add_row(row["dataset"], row["model"], row["sample_id"], row["reason"])
        console.print(failed)


def _report_outcome(outcome, out: Path) -> None:
    n_failed = sum(summary.n_failed for summary in outcome.embedded)
    if n_failed:
        typer.secho(f"{n_failed} samples failed; `matteralign status --out {out}` lists them",
                    fg="yellow", err=True)
    for what, why in outcome.skipped:
        typer.secho(f"skipped {what}: {why}", fg="yellow", err=True)
    typer.echo(f"results in {out}")


if __name__ == "__main__":
    app()
