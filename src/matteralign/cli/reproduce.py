"""``matteralign reproduce``: the paper's claims as numbers, from a finished study or its tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["reproduce"]

SETTINGS = "settings.json"


def _pairs(values: list[str], sep: str, name: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        left, found, right = value.partition(sep)
        if not found or not left or not right:
            raise typer.BadParameter(f"{name} takes LEFT{sep}RIGHT, got {value!r}")
        out.append((left, right))
    return out


def reproduce(
    config: Annotated[str | None, typer.Argument(help="The study YAML (or preset) of --out; "
                                                 "default: the study written into --out.")]
    = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="A finished study (store/ and "
                                             "alignment/): analyse it and write --tables. "
                                             "Without it, the claims come from --tables.")]
    = None,
    tables: Annotated[Path, typer.Option("--tables", help="Folder of the compact result tables "
                                         "(Parquet, with settings.json).")]
    = Path("reproduction"),
    doc: Annotated[Path | None, typer.Option("--doc", help="A Markdown document whose generated "
                                             "block is rewritten with the claims.")] = None,
    analogue: Annotated[list[str] | None, typer.Option("--analogue", help="DATASET=PAPER: the "
                                                       "paper's dataset (QM9, sAlex, OMat24, "
                                                       "OMol25) a dataset stands in for (repeat).")]
    = None,
    across: Annotated[str | None, typer.Option("--across", help="CRYSTALS:MOLECULES: materials "
                                               "potentials in and out of their domain.")] = None,
    ladder: Annotated[Path | None, typer.Option("--ladder", help="The training ladder's JSON "
                                                "(benchmarks/training_ladder.py): its block of "
                                                "--doc is rewritten too.")] = None,
    max_samples: Annotated[int, typer.Option(help="Seeded subsample for the embedding-level "
                                             "analyses of larger datasets.")] = 2000,
    rounds: Annotated[int, typer.Option(help="Permutation rounds of the nulls that relabel "
                                        "(CKNNA, II; smallest p = 1 / (rounds + 1)).")] = 1000,
    data_root: Annotated[Path | None, typer.Option("--data-root", envvar="MATTERALIGN_DATA_ROOT",
                                                   help="Folder with data no package ships.")]
    = None,
) -> None:
    """Compute every claim of the paper that the study can test; print it as Markdown.

    With --out: analyse the study (all analyses, calibrated scores, FDR, intervals), write the
    compact tables to --tables, then compute the claims from those tables. Without --out: only
    the last step, from the stored tables (what the tests rerun).
    """
    from matteralign.analysis.reproduction import ReproductionTables, reproduction_claims
    from matteralign.analysis.study import AnalysisOptions
    from matteralign.cli.main import _guarded, _load
    from matteralign.report.reproduction import (
        claims_markdown,
        ladder_markdown,
        replace_generated_block,
    )

    if out is not None:
        study = _load(config, data_root, out)
        settings = {"analogues": dict(_pairs(analogue or [], "=", "--analogue")),
                    "across": list(_pairs([across], ":", "--across")[0]) if across else None}
        from matteralign.analysis.reproduction import reproduction_tables

        result = _guarded(lambda: reproduction_tables(study, out,
                                                      AnalysisOptions(max_samples=max_samples,
                                                                      n_calibration=rounds)))
        result.write(tables)
        (tables / SETTINGS).write_text(json.dumps(settings, indent=1) + "\n")
    elif analogue or across:
        raise typer.BadParameter("--analogue and --across are stored with the tables; give them "
                                 "with --out")
    settings_path = tables / SETTINGS
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
    stored = _guarded(lambda: ReproductionTables.read(tables))
    across_pair = tuple(settings["across"]) if settings.get("across") else None
    claims = reproduction_claims(stored, settings.get("analogues"), across_pair)
    block = claims_markdown(claims)
    if doc is None:
        typer.echo(block)
        return
    text = _guarded(lambda: doc.read_text())
    blocks = [("claims", block)]
    if ladder is not None:
        blocks.append(("ladder", ladder_markdown(json.loads(_guarded(lambda: ladder.read_text())))))
    try:
        for name, body in blocks:
            text = replace_generated_block(text, body, name)
    except ValueError as error:
        typer.secho(f"error: {doc}: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    doc.write_text(text)
    typer.echo(f"claims written into {doc}")
