"""``models list`` says "needs download" for a model whose published weights are not cached here,
"yes" once they are, and keeps saying when its model environment is not built."""

from __future__ import annotations

from huggingface_hub import constants
from typer.testing import CliRunner

from matteralign.cli.main import app
from matteralign.models.registry import get_card
from matteralign.run.environments import READY, card_environment
from tests.models.test_weights_cached import place_in_hub_cache

runner = CliRunner()


def runs_here_column(model_id: str) -> str:
    family = get_card(model_id).family
    result = runner.invoke(app, ["models", "list", "--family", family], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if f" {model_id} " in line)
    return " ".join(row.split())


def test_a_hub_loaded_model_needs_download_until_its_weights_are_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("MATTERALIGN_ENV_DIR", str(tmp_path / "environments"))
    card = get_card("pet-mad-s-v1.6.0")
    assert "no (environment 'pet' not built: matteralign env create pet)" in runs_here_column(
        card.id)

    environment = card_environment(card)
    environment.path.mkdir(parents=True)
    (environment.path / READY).write_text("{}")  # what a finished build leaves
    assert runs_here_column(card.id).endswith("needs download (in environment 'pet')")

    place_in_hub_cache(tmp_path / "hub", "lab-cosmo/upet", "models/pet-mad-s-v1.6.0.ckpt")
    assert runs_here_column(card.id).endswith("yes (in environment 'pet')")
    assert "needs download" in runs_here_column("pet-mad-xs-v1.6.0")
