"""Commands that find their study, --version, models that say whether they run here, broken
plugin cards, user cards, and models kept to their card's domain."""

from __future__ import annotations

import warnings
from importlib.metadata import version

import pytest
import yaml
from typer.testing import CliRunner

from matteralign.cli.main import app
from matteralign.config import StudyConfig, load_config
from matteralign.errors import ConfigError

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"matteralign {version('matteralign')}"


def test_without_a_config_commands_use_the_study_of_out_never_the_default(tmp_path):
    result = runner.invoke(app, ["align", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'config.yaml'} does not exist" in " ".join(result.output.split())
    for command in (["report"], ["score", "--dataset", "x", "--model", "composition"]):
        result = runner.invoke(app, [*command, "--out", str(tmp_path)])
        assert result.exit_code == 2 and "does not exist" in result.output


def test_a_folder_named_like_a_preset_does_not_shadow_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smoke").mkdir()
    assert load_config("smoke").name == "smoke"


def test_models_list_says_whether_a_model_runs_here(tmp_path, monkeypatch):
    from matteralign.models.registry import get_card, runs_here

    monkeypatch.delenv("MATTERALIGN_DATA_ROOT", raising=False)
    assert runs_here(get_card("composition")) == (True, "")
    ok, why = runs_here(get_card("m3gnet-matpes-pbe"), data_root=tmp_path)
    assert not ok and "weights/matgl/M3GNet-MatPES-PBE-v2025.1-PES not found" in why
    missing = get_card("composition").model_copy(
        update={"id": "needs-a-package", "adapter": "matteralign_test_absent_module:Adapter"})
    assert runs_here(missing)[0] is False
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "runs here" in result.output


def test_models_list_says_an_unbuilt_model_environment_does_not_run_here(tmp_path, monkeypatch):
    from matteralign.models.registry import get_card, runs_here

    monkeypatch.setenv("MATTERALIGN_ENV_DIR", str(tmp_path / "no-environments"))
    assert runs_here(get_card("mace-mp-0-small")) == (True, "in environment 'mace'")
    result = runner.invoke(app, ["models", "list", "--family", get_card("mace-mp-0-small").family],
                           env={"COLUMNS": "400"})
    row = next(line for line in result.output.splitlines() if "mace-mp-0-small " in line)
    assert "no (environment 'mace' not built: matteralign env create mace)" in row


def test_a_broken_plugin_card_is_one_warning_and_everything_else_works(monkeypatch):
    from matteralign.models import registry

    class Entry:
        name, value = "broken-plugin", "broken_plugin:cards"

        def load(self):
            return lambda: [{"id": "plugin-model", "name": "x", "family": "baseline",
                             "input": "atoms", "domain": ["materials"], "adapter": "a:B",
                             "layers": [{"name": "l"}], "license": "MIT", "famly": "typo"}]

    monkeypatch.setattr(registry, "entry_points", lambda group: [Entry()])
    registry._builtin_and_plugin_cards.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cards = registry.list_cards()
        assert "composition" in {card.id for card in cards}
        assert "plugin-model" not in {card.id for card in cards}
        [warning] = [w for w in caught if issubclass(w.category, registry.PluginCardWarning)]
        assert "'broken-plugin'" in str(warning.message) and "'famly'" in str(warning.message)
        result = runner.invoke(app, ["models", "list"])
        assert result.exit_code == 0
    finally:
        registry._builtin_and_plugin_cards.cache_clear()


def test_a_user_card_is_registered_and_a_broken_one_names_file_and_field(tmp_path):
    card = yaml.safe_load(open(_builtin_card("random-gaussian")))
    card["id"] = "my-random"
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(card))
    config = StudyConfig.model_validate(
        {"name": "x", "datasets": [{"name": "g2"}], "models": [{"card": "mine.yaml"}]},
        context={"base": tmp_path})
    assert config.models[0].id == "my-random"
    from matteralign.models.registry import get_card

    assert get_card("my-random").adapter == card["adapter"]
    card["input"] = "pixels"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(card))
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(
        {"name": "x", "datasets": [{"name": "g2"}], "models": [{"card": "broken.yaml"}]}))
    with pytest.raises(ConfigError, match=r"broken.yaml: field 'input'"):
        load_config(tmp_path / "study.yaml")


def _builtin_card(model_id):
    from matteralign.models.registry import CARD_DIR

    return CARD_DIR / f"{model_id}.yaml"


def test_a_model_is_not_run_outside_its_cards_domain_unless_named(tmp_path):
    from matteralign.run.study import StudyOutcome, _plan_jobs
    from matteralign.store.embedding_store import EmbeddingStore

    config = StudyConfig.model_validate({
        "name": "x", "datasets": [{"name": "elemental-crystals", "n": 4}, {"name": "g2", "n": 4}],
        "models": [{"id": "ani-1x"}, {"id": "composition"}]})
    from matteralign.data import load_dataset

    datasets = [load_dataset("elemental-crystals", n=4), load_dataset("g2", n=4)]
    outcome = StudyOutcome(tmp_path)
    jobs = _plan_jobs(config, datasets, EmbeddingStore(tmp_path / "store"), "cpu", 1, outcome)
    assert {(j.model, j.dataset) for j in jobs} == {
        ("ani-1x", "g2"), ("composition", "g2"), ("composition", "elemental-crystals")}
    [(what, why)] = outcome.skipped
    assert what == "model ani-1x on elemental-crystals" and "excludes" in why
    named = config.model_copy(update={"models": [
        config.models[0].model_copy(update={"datasets": ["elemental-crystals"]})]})
    jobs = _plan_jobs(named, datasets, EmbeddingStore(tmp_path / "store"), "cpu", 1)
    assert {(j.model, j.dataset) for j in jobs} == {("ani-1x", "elemental-crystals")}


def test_readme_pairwise_example_asks_for_auto_device():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert 'device="cuda"' not in readme


def test_a_user_adapter_runs_from_its_card_its_banner_stays_out_and_piped_progress_is_text(
        tmp_path, monkeypatch):
    (tmp_path / "loud_adapter.py").write_text(
        "from matteralign.models.random_baseline import RandomGaussianAdapter\n\n\n"
        "class LoudAdapter(RandomGaussianAdapter):\n"
        "    def load(self, device='cpu', dtype='float32'):\n"
        "        print('LOUD MODEL v1 initialised with 42 parameters')\n"
        "        super().load(device, dtype)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    card = yaml.safe_load(open(_builtin_card("random-gaussian")))
    card.update(id="loud", adapter="loud_adapter:LoudAdapter")
    (tmp_path / "loud.yaml").write_text(yaml.safe_dump(card))
    study = {"name": "loud", "datasets": [{"name": "g2", "n": 12}],
             "models": [{"card": "loud.yaml"}, {"id": "composition"}],
             "layers": "last", "metrics": ["cknna-k10"], "device": "cpu"}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["run", str(tmp_path / "study.yaml"), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "LOUD MODEL" not in result.output
    assert "loud · g2: 12/12 (" in result.output  # not a terminal: one plain line per advance
    assert "report: done in" in result.output
