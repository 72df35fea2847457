"""``configs/paper.yaml``: the paper's line-up with the paper's settings, valid as a study."""

from __future__ import annotations

from pathlib import Path

from matteralign.config import load_config
from matteralign.data.registry import get_dataset_spec
from matteralign.models.registry import get_card
from matteralign.run.environments import card_environment
from matteralign.run.study import validate_study

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"


def test_paper_config_is_a_valid_study_with_the_papers_settings():
    config = load_config(str(PAPER))
    validate_study(config)  # every dataset, model and metric exists
    assert config.layers == "last"
    assert "cknna-k25" in config.metrics
    assert {d.name: d.n for d in config.datasets}["qm9"] == 50_000
    assert all(d.n is None or d.n <= 50_000 for d in config.datasets)
    assert all(model.pooling == "mean" for model in config.models)
    ids = [model.id for model in config.models]
    assert len(ids) == len(set(ids))
    for checkpoint in ("mace-mp-0-medium", "mace-omat-0-medium", "mace-off23-large",
                       "orb-v3-conservative-inf-omat", "orb-v2", "sevennet-0", "esm2-t33-650m",
                       "esen-30m-oam", "eqv2-31m-omat"):
        assert checkpoint in ids
    for model in config.models:  # every named environment is defined (built by env create)
        card_environment(get_card(model.id))
    modalities = {d.name: set(get_dataset_spec(d.name).modalities) for d in config.datasets}
    for model in config.models:  # every model reads at least one of its datasets
        chosen = model.datasets or list(modalities)
        assert any(get_card(model.id).input in modalities[name] for name in chosen), model.id
    for structure_model in ("prostt5-3di", "proteinmpnn-v48-020", "esm-if1",
                            "esm3-sm-open-v1-structure"):
        assert structure_model in ids
    molecular = [m for m in config.models if m.id.startswith("mace-off23")]
    assert molecular and all(m.datasets == ["qm9"] for m in molecular)
    uma = {m.id: m for m in config.models if m.id.startswith("uma-")}
    assert sorted(uma) == ["uma-m-1p1-omat", "uma-m-1p1-omol", "uma-s-1p1-omat", "uma-s-1p1-omol"]
    for model in uma.values():  # the paper's heads: omat on materials, omol on molecules
        task = get_card(model.id).options["task"]
        domain = "materials" if task == "omat" else "molecules"
        assert model.datasets and all(
            get_dataset_spec(name).domain == domain for name in model.datasets), model.id
