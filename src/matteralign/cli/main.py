"""Entry point of the ``matteralign`` command; imports no model package until a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matteralign.cli import compare as compare_command
from matteralign.cli import datasets, env, models
from matteralign.cli import report as report_command
from matteralign.cli import reproduce as reproduce_command
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
app.add_typer(env.app, name="env")
app.command(rich_help_panel="Results")(report_command.report)
app.command(rich_help_panel="Results")(score_command.score)
app.command(rich_help_panel="Results")(compare_command.compare)
app.command(rich_help_panel="Results")(reproduce_command.reproduce)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"matteralign {version('matteralign')}")
        raise typer.Exit()


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"warning: {message}\n"


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Do models of matter learn the same representation? Embed, align, report."""
    import warnings

    warnings.formatwarning = _one_line_warning  # a plugin's broken card: one line, not a trace

ConfigArgument = Annotated[
    str, typer.Argument(help="A study YAML file, or a preset name (default, smoke).")
]
FoundConfigArgument = Annotated[
    str | None, typer.Argument(help="A study YAML file, or a preset name; default: the study "
                               "of --out (OUT/config.yaml).")
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Folder for the store and results.")]
DataRootOption = Annotated[
    Path | None,
    typer.Option("--data-root", help="Folder with data and weights that no package ships.",
                 envvar="MATTERALIGN_DATA_ROOT"),
]


def _load(config: str | None, data_root: Path | None, out: Path | None = None):  # -> StudyConfig
    """The study ``config`` names or, when None, the one written into ``out`` by its run."""
    from matteralign.config import load_config
    from matteralign.errors import MatterAlignError

    if config is None:
        found = (out or Path("results")) / "config.yaml"
        if not found.is_file():
            typer.secho(f"error: no study given and {found} does not exist; pass the study YAML "
                        "(or preset) that made this folder, or --out the folder of a run",
                        fg="red", err=True)
            raise typer.Exit(2)
        config = str(found)
    try:
        study = load_config(config)
    except MatterAlignError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    if data_root is not None:
        study = study.model_copy(update={"data_root": data_root})
    return study


def _quick_study(config: str | None, data: list[Path], models: list[str],
                 metrics: list[str] | None, n: int | None, format: str | None,
                 data_root: Path | None):  # -> StudyConfig
    from pydantic import ValidationError

    from matteralign.config import StudyConfig

    if config is not None:
        raise typer.BadParameter(f"give a study ({config}) or --data, not both")
    if len(models) < 2:
        raise typer.BadParameter("a quick study needs at least two --model ids to compare")
    datasets = [{"path": str(path.resolve()), "n": n, **({"format": format} if format else {})}
                for path in data]
    try:
        return StudyConfig.model_validate({
            "name": data[0].name.split(".")[0], "datasets": datasets,
            "models": [{"id": m} for m in models], "layers": "last",
            "metrics": metrics or ["cknna-k10", "dcor"], "data_root": data_root,
        })
    except ValidationError as error:
        problems = "; ".join(issue["msg"].removeprefix("Value error, ")
                             for issue in error.errors())
        typer.secho(f"error: {problems}", fg="red", err=True)
        raise typer.Exit(2) from None


def _guarded(action):  # run an API call, turning our errors into a clean exit
    from matteralign.errors import MatterAlignError

    try:
        return action()
    except MatterAlignError as error:
        typer.secho(f"error: {' '.join(str(error).splitlines())}", fg="red", err=True)
        raise typer.Exit(1) from None
    except OSError as error:  # the file system refused (permissions, a file for a folder)
        where = f": {error.filename}" if error.filename else ""
        typer.secho(f"error: {error.strerror or error}{where}", fg="red", err=True)
        raise typer.Exit(1) from None


@app.command(rich_help_panel="Study")
def run(
    config: Annotated[str | None, typer.Argument(
        help="A study YAML file, or a preset name (default, smoke); default: default, or the "
        "quick study of --data.")] = None,
    out: OutOption = Path("results"),
    data_root: DataRootOption = None,
    data: Annotated[list[Path] | None, typer.Option(
        "--data", help="A file or folder of structures, SMILES or sequences (repeat for more): "
        "a quick study of it without YAML.", rich_help_panel="Quick study")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="A model id for the quick study (repeat).",
        rich_help_panel="Quick study")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="A metric for the quick study (repeat; default cknna-k10, dcor).",
        rich_help_panel="Quick study")] = None,
    n: Annotated[int | None, typer.Option(
        "--n", help="Seeded subset of each --data file.", rich_help_panel="Quick study")] = None,
    format: Annotated[str | None, typer.Option(
        "--format", help="Format of the --data files (default: from the suffix).",
        rich_help_panel="Quick study")] = None,
) -> None:
    """Run a whole study: embed every model, score every pair, write results.

    With --data FILE --model ID --model ID, the study is those files and models (no YAML); its
    resolved configuration is written to OUT/config.yaml like any other.
    """
    from matteralign.run.study import run_study

    if data:
        study = _quick_study(config, data, model or [], metric, n, format, data_root)
    elif model or metric or n is not None or format is not None:
        raise typer.BadParameter("--model, --metric, --n and --format make a quick study "
                                 "together with --data")
    else:
        study = _load(config or "default", data_root)
    outcome = _guarded(lambda: run_study(study, out))
    _report_outcome(outcome, out)


@app.command(rich_help_panel="Study")
def embed(
    config: ConfigArgument = "default",
    out: OutOption = Path("results"),
    data_root: DataRootOption = None,
) -> None:
    """Embed every dataset with every model into the store (resumable)."""
    from matteralign.run.study import embed_into

    study = _load(config, data_root)
    outcome = _guarded(lambda: embed_into(study, out))
    _report_outcome(outcome, out)


@app.command(rich_help_panel="Study")
def align(
    config: FoundConfigArgument = None,
    out: OutOption = Path("results"),
) -> None:
    """Score all model pairs from stored embeddings; write the matrices as Parquet."""
    from matteralign.run.study import align_study

    study = _load(config, None, out)
    outcome = _guarded(lambda: align_study(study, out))
    _report_outcome(outcome, out)


def _study_of(out: Path) -> str:
    """`` of study NAME`` as OUT/config.yaml names it (read only, nothing registered); else
    empty."""
    import yaml

    try:
        name = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))["name"]
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return ""
    return f" of study {name!r}"


@app.command(rich_help_panel="Study")
def status(out: OutOption = Path("results")) -> None:
    """Show what the store holds: shards per dataset and model, corrupt shards, files the store
    did not write, and failed samples. Reads only: works on a read-only store."""
    from rich.console import Console
    from rich.table import Table

    from matteralign.run.study import existing_store

    store = _guarded(lambda: existing_store(out))
    manifest = store.scan(verify=True)
    console = Console()
    table = Table(title=f"store {store.root}{_study_of(out)}")
    for column in ("dataset", "model", "shards", "embedded", "failed", "corrupt", "finished"):
        table.add_column(column, justify="right" if column not in ("dataset", "model") else "left")
    if len(manifest):
        grouped = manifest.groupby(["dataset", "model"])
        for (dataset, model), group in grouped:
            finished = store.completed_shards(dataset, model)
            table.add_row(dataset, model, str(len(group)), str(int(group.n_samples.sum())),
                          str(int(group.n_failed.sum())), str(int((group.status != "ok").sum())),
                          "no" if finished is None else f"{finished} shards")
    console.print(table)
    for problem in [*manifest.status[manifest.status != "ok"], *store.embedding_problems()]:
        typer.secho(problem, fg="red", err=True)
    for path in store.foreign_files():
        typer.secho(f"foreign file {path}: not written by matteralign; the store ignores it "
                    "(move it out of the store)", fg="yellow", err=True)
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
