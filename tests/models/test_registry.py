"""``runs_here`` asks for the packages a card's path imports: a ``transformers`` encoder needs
fair-esm's ``esm`` only when its checkpoint is a fair-esm ``.pt`` file, ESM-IF1 always."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from matteralign.cli.main import app
from matteralign.models.registry import card_packages, get_card, runs_here

#: What fair_esm imports for fair-esm's models (esm.pretrained, esm.inverse_folding) and what the
#: transformers encoders import whatever their checkpoint.
FAIR_ESM = {"esm", "biotite", "torch_geometric"}
TRANSFORMERS_ENCODER = {"torch", "transformers", "huggingface_hub"}


@pytest.fixture
def without_esm(monkeypatch: pytest.MonkeyPatch) -> None:
    """``esm`` (fair-esm's module) is not importable, everything else as installed."""
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name.split(".")[0] == "esm" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def fair_esm_checkpoint_card(model_id: str):
    """The hub card ``model_id`` reading a fair-esm ``.pt`` checkpoint instead."""
    card = get_card(model_id)
    return card.model_copy(update={
        "id": f"{model_id}-fair-esm", "options": {**card.options, "path": "~/esm2_t6_8M_UR50D.pt"}})


@pytest.mark.parametrize("model_id", ["chemberta-zinc-base-v1", "esm2-t6-8m", "prostt5-aa"])
def test_a_transformers_card_does_not_need_fair_esm(model_id: str, without_esm: None):
    packages = card_packages(get_card(model_id))
    assert TRANSFORMERS_ENCODER <= packages and not packages & FAIR_ESM
    assert "esm" not in runs_here(get_card(model_id))[1]


def test_a_fair_esm_checkpoint_or_model_needs_esm(without_esm: None):
    pt_card = fair_esm_checkpoint_card("esm2-t6-8m")
    assert FAIR_ESM | TRANSFORMERS_ENCODER <= card_packages(pt_card)
    # fair-esm's esm comes from the fair-esm model environment, not the card's pip extra
    assert runs_here(pt_card) == (
        False, "missing package esm (a copy of the card with environment: fair-esm; "
        "matteralign env create fair-esm)")

    # ESM-IF1 runs in its model environment; in this one it would need fair-esm, and the
    # torch_geometric of the torch_scatter stand-in that fair_esm imports inside a function.
    if1 = get_card("esm-if1").model_copy(update={"environment": None})
    assert FAIR_ESM <= card_packages(if1)
    assert runs_here(if1)[0] is False and "missing package esm" in runs_here(if1)[1]
    assert runs_here(get_card("esm-if1"))[1] == "in environment 'fair-esm'"


def test_an_adapter_still_needs_the_package_its_load_imports():
    # chemprop_dmpnn imports chemprop and rdkit only inside its methods.
    assert {"chemprop", "rdkit", "torch"} <= card_packages(get_card("chemprop-admet"))


def test_models_list_does_not_say_missing_esm_for_transformers_cards(without_esm: None):
    result = CliRunner().invoke(app, ["models", "list", "--family", "string"],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if " chemberta-zinc-base-v1 " in line)
    assert "missing package" not in row


def test_models_list_prints_the_pip_extra_in_brackets(monkeypatch: pytest.MonkeyPatch):
    """rich would read ``[molecules]`` as markup and drop it."""
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name.split(".")[0] == "transformers" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = CliRunner().invoke(app, ["models", "list", "--family", "string"],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if " chemberta-zinc-base-v1 " in line)
    assert "missing package transformers (pip install" in row
    assert "'matteralign[molecules]')" in result.output  # the runs-here column wraps
    assert "'matteralign')" not in result.output
