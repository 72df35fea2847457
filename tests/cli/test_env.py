"""``matteralign env list|create``: what the user sees."""

from __future__ import annotations

from typer.testing import CliRunner

from matteralign.cli.main import app


def test_env_list_shows_every_environment_its_models_and_whether_it_is_built(monkeypatch,
                                                                          tmp_path):
    monkeypatch.setenv("MATTERALIGN_ENV_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["env", "list"])
    assert result.exit_code == 0, result.output
    for name in ("mace", "orb", "mattersim"):
        assert name in result.output
    assert "e3nn==0.4.4" in result.output and "mace-mp-0-medium" in result.output
    assert " no " in result.output  # nothing is built in an empty environment folder


def test_env_create_needs_one_name_or_all_and_names_an_unknown_environment(monkeypatch,
                                                                           tmp_path):
    monkeypatch.setenv("MATTERALIGN_ENV_DIR", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(app, ["env", "create"])
    assert result.exit_code == 2 and "give one environment name or --all" in result.output
    result = runner.invoke(app, ["env", "create", "macee"])
    assert result.exit_code == 1
    assert "unknown model environment 'macee'; defined: " in result.output
    assert "Traceback" not in result.output
