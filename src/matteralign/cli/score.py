"""``matteralign score``: place a new model, or a user's own embedding file, on a study's
leaderboard (null-calibrated alignment to the study's strongest models)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["score"]


def score(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset of the study to score "
                                         "on; the candidate's ids must be its sample ids.")],
    config: Annotated[str | None, typer.Argument(help="A study YAML file, or a preset name; "
                                                 "default: the study of --out.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The study folder (holding store/).")]
    = Path("results"),
    model: Annotated[str | None, typer.Option("--model", "-m", help="A registry model id already "
                                              "embedded into the store.")] = None,
    embeddings: Annotated[Path | None, typer.Option("--embeddings", "-e", help="Your own "
                          "embeddings: .npy (with --ids), .npz (ids, embeddings), .parquet / .csv "
                          "(id + float vector columns) or .safetensors (embeddings + ids "
                          "metadata).")] = None,
    ids: Annotated[Path | None, typer.Option("--ids", help="Sample ids of a .npy file, one per "
                                             "line in row order.")] = None,
    columns: Annotated[list[str] | None, typer.Option("--columns", help="Feature columns of a "
                       ".parquet/.csv file (repeat); default every column but the id, which "
                       "must then all be float.")] = None,
    name: Annotated[str | None, typer.Option(help="Label of the candidate (default: the model "
                                             "id or the file name).")] = None,
    reference: Annotated[list[str] | None, typer.Option("--reference", "-r", help="Reference "
                         "model ids (repeat); default the study's strongest models.")] = None,
    n_permutations: Annotated[int, typer.Option(rich_help_panel="Statistics")] = 50,
    n_bootstrap: Annotated[int, typer.Option(rich_help_panel="Statistics")] = 30,
    save: Annotated[Path | None, typer.Option(help="Write the leaderboard as CSV here.")] = None,
    data_root: Annotated[Path | None, typer.Option("--data-root", envvar="MATTERALIGN_DATA_ROOT",
                                                   help="Folder with data no package ships.")]
    = None,
) -> None:
    """Score a candidate against the study's reference models on one dataset."""
    from matteralign.cli.main import _guarded, _load

    if (model is None) == (embeddings is None):
        raise typer.BadParameter("give exactly one of --model or --embeddings")
    if save is not None and save.is_dir():
        raise typer.BadParameter(f"--save {save} is a folder; give a CSV file path")
    study = _load(config, data_root, out)
    try:
        result = _guarded(lambda: _score(study, out, dataset, model, embeddings, name,
                                         reference, n_permutations, n_bootstrap, ids, columns))
    except ValueError as error:  # a statistics setting the calibration cannot use
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    _guarded(lambda: _print(result, save))


def _score(study, out, dataset, model, embeddings, name, reference, n_permutations, n_bootstrap,
           ids=None, columns=None):
    from matteralign.analysis.embedding_file import load_embedding_file
    from matteralign.analysis.leaderboard import score_candidate
    from matteralign.analysis.study import AnalysisOptions, study_references
    from matteralign.models.registry import get_card
    from matteralign.store.embedding_store import EmbeddingStore

    store = EmbeddingStore(out / "store")
    if model is not None:
        stored = store.load_finished(dataset, model, get_card(model).last_layer)
        ids, values, label = stored.ids, stored.values, name or model
    else:
        ids, values = load_embedding_file(embeddings, ids=ids, columns=columns)
        label = name or embeddings.stem
    options = AnalysisOptions(n_permutations=n_permutations, n_bootstrap=n_bootstrap)
    refs, basis, metric = study_references(study, out, dataset, options, exclude=(label,))
    if reference:
        refs = {r: get_card(r).last_layer for r in reference}
        basis = "given on the command line"
    result = score_candidate(store, dataset, label, ids, values, refs, metric, study.preprocess,
                             n_permutations, n_bootstrap, seed=options.seed)
    return result, label, basis


def _print(outcome, save: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    result, label, basis = outcome
    console = Console()
    table = Table(title=f"leaderboard (references: {basis}; {result.n_shared} shared samples)")
    for column in ("model", "score", "95% CI", "raw", "null mean", "max p", "reference"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in result.table.itertuples():
        style = "bold green" if row.model == label else None
        table.add_row(row.model, f"{row.score:.3f}", f"[{row.ci_low:.3f}, {row.ci_high:.3f}]",
                      f"{row.raw:.3f}", f"{row.null_mean:.3f}", f"{row.max_p:.3g}",
                      "yes" if row.is_reference else "", style=style)
    console.print(table)
    for what, ids in (("ids of the references missing from the candidate",
                       result.missing_from_candidate),
                      ("ids of the candidate unknown to the store", result.unknown_to_store)):
        if ids:
            shown = ", ".join(ids[:5]) + (" …" if len(ids) > 5 else "")
            typer.secho(f"{len(ids)} {what}: {shown}", fg="yellow", err=True)
    if save is not None:
        from matteralign.store.embedding_store import atomic_write_bytes

        atomic_write_bytes(save, result.table.to_csv(index=False).encode())
        typer.echo(f"leaderboard written to {save}")
