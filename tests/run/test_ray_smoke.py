"""The smoke study embedded through Ray equals the same study embedded locally, bit for bit."""

from __future__ import annotations

import pytest

from matteralign.config import StudyConfig, load_config
from matteralign.run import study as study_module
from tests.reliability.store_snapshot import store_content

ray = pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_smoke_study_equals_local(tmp_path):
    local_config = load_config("smoke")
    ray_config = local_config.model_copy(update={"executor": "ray"})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = study_module.embed_study(ray_config, tmp_path / "ray")
    finally:
        ray.shutdown()
    local = study_module.embed_study(local_config, tmp_path / "local")
    assert local.skipped == remote.skipped  # models left out by their card's domain only
    assert all("domain" in why for _, why in local.skipped), local.skipped
    assert [vars(s) for s in local.embedded] == [vars(s) for s in remote.embedded]
    assert store_content(tmp_path / "local" / "store") == store_content(tmp_path / "ray" / "store")


@pytest.mark.slow
def test_ray_chgnet_on_a_few_crystals_equals_local(tmp_path):
    """The reduced form (CHGNet, 8 crystals in 2 shards). 59 s on a shared 2-core machine,
    mostly starting Ray and loading CHGNet: too slow for the default suite, which checks the
    same executor path with toy models (``tests/run/test_executors.py``)."""
    config = StudyConfig(**{**load_config("smoke").model_dump(), "shard_size": 4,
                            "datasets": [{"name": "elemental-crystals", "n": 8, "seed": 0}],
                            "models": [{"id": "chgnet-0.3.0"}]})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        study_module.embed_study(config.model_copy(update={"executor": "ray"}), tmp_path / "ray")
    finally:
        ray.shutdown()
    study_module.embed_study(config, tmp_path / "local")
    assert store_content(tmp_path / "local" / "store") == store_content(tmp_path / "ray" / "store")
