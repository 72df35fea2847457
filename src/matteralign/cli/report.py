"""``matteralign report``: analyse a finished study and write its self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["report"]


def report(
    config: Annotated[str | None, typer.Argument(help="A study YAML file, or a preset name; "
                                                 "default: the study of --out.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The study folder (holding store/); "
                                      "report.html, figures/ and tables/ are written here.")]
    = Path("results"),
    report_dir: Annotated[Path | None, typer.Option("--report-dir", help="Write the report "
                                                    "elsewhere than --out.")] = None,
    max_samples: Annotated[int, typer.Option(help="Seeded subsample of each dataset analysed.",
                                             rich_help_panel="Analysis")] = 2000,
    projection: Annotated[str, typer.Option(help="Embedding map: pca or umap (slow to compile).",
                                            rich_help_panel="Analysis")] = "pca",
    n_permutations: Annotated[int, typer.Option(
        help="Permutation rounds of the leaderboard's null where the matrices have no calibrated "
             "cells (matrices scored on a subsample); otherwise it reuses theirs.",
                                                rich_help_panel="Analysis")] = 20,
    n_bootstrap: Annotated[int, typer.Option(help="Leaderboard bootstrap rounds.",
                                             rich_help_panel="Analysis")] = 20,
    data_root: Annotated[Path | None, typer.Option("--data-root", envvar="MATTERALIGN_DATA_ROOT",
                                                   help="Folder with data no package ships.")]
    = None,
) -> None:
    """Analyse a study's store (all nine analyses) and write DIR/report.html."""
    from matteralign.analysis.study import AnalysisOptions
    from matteralign.cli.main import _guarded, _load
    from matteralign.run.study import write_report

    if projection not in ("pca", "umap"):
        raise typer.BadParameter("projection must be 'pca' or 'umap'")
    for name, value, least in (("--max-samples", max_samples, 1),
                               ("--n-permutations", n_permutations, 0),
                               ("--n-bootstrap", n_bootstrap, 0)):
        if value < least:
            typer.secho(f"error: {name} must be at least {least}, not {value}", fg="red",
                        err=True)
            raise typer.Exit(2)
    study = _load(config, data_root, out)
    options = AnalysisOptions(max_samples=max_samples, projection=projection,
                              n_permutations=n_permutations, n_bootstrap=n_bootstrap)
    path = _guarded(lambda: write_report(study, out, report_dir, options))
    typer.echo(f"report in {path}")
