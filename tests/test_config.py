"""Study configuration: presets, YAML files and clear errors for bad keys."""

from __future__ import annotations

import pytest

from matteralign.config import StudyConfig, load_config, preset_names
from matteralign.errors import ConfigError


def test_presets_load_and_validate():
    assert {"default", "smoke"} <= set(preset_names())
    for name in preset_names():
        config = load_config(name)
        assert config.models and config.datasets


def test_yaml_roundtrip_is_exact(tmp_path):
    config = load_config("smoke")
    path = tmp_path / "study.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path) == config


def test_typo_key_names_the_key_and_file(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: x\ndatasets: [{name: qm9}]\nmodels: [{id: chgnet-0.3.0}]\nshard_sise: 3\n")
    with pytest.raises(ConfigError, match=r"study.yaml: shard_sise: Extra inputs"):
        load_config(path)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="presets: .*default"):
        load_config("no-such-study")


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_auto_device_is_cpu_without_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = StudyConfig(name="x", datasets=[{"name": "d"}], models=[{"id": "m"}])
    assert config.resolved_device() == "cpu"
