"""docs/adding-a-model.md works as written: its adapter passes validate_adapter and its card
runs in a study from the YAML's models: [{card: ...}]."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from matteralign.cli.main import app

DOC = Path(__file__).parents[2] / "docs" / "adding-a-model.md"


def test_the_guide_adapter_validates_and_runs_from_its_card(tmp_path, monkeypatch):
    blocks = re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(), re.S)
    adapter_code, card_text, check_code = (text for _, text in blocks[:3])
    assert len(adapter_code.splitlines()) <= 55
    (tmp_path / "my_models").mkdir()
    (tmp_path / "my_models" / "__init__.py").write_text("")
    (tmp_path / "my_models" / "element_features.py").write_text(adapter_code)
    (tmp_path / "my_card.yaml").write_text(card_text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    exec(compile(check_code, "guide-check", "exec"), {})  # validate_adapter raises on failure
    study = {"name": "guide", "datasets": [{"name": "g2", "n": 8}],
             "models": [{"card": "my_card.yaml"}, {"id": "composition"}], "layers": "last",
             "device": "cpu"}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = CliRunner().invoke(app, ["embed", str(tmp_path / "study.yaml"), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "store" / "embeddings" / "g2" / "element-features").is_dir()
