"""ESM C and ESM3 (sequence track, and sequence with structure tracks): the cards, and the adapter
checks of ``environments/check_esm.py`` run in the ``esm`` model environment (esm 3.2 pins
transformers<4.48.2, which the main environment is not).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from matteralign.models.registry import get_card
from matteralign.run.environments import card_environment

HERE = Path(__file__).resolve().parent
LAYERS = {"esmc-300m": 30, "esmc-600m": 36, "esm3-sm-open-v1": 48}


def test_cards_name_the_esm_environment_and_every_layer():
    for model_id, n_layers in LAYERS.items():
        card = get_card(model_id)
        assert card_environment(card).spec.name == "esm"
        assert card.layer_names == [str(i) for i in range(n_layers + 1)]
        assert card.adapter == "matteralign.models.esm_models:EsmSequenceAdapter"
        assert card.input == "sequence" and card.default_pooling == "mean"


def test_esm3_structure_card_reads_backbones_in_the_esm_environment():
    card, sequence_card = get_card("esm3-sm-open-v1-structure"), get_card("esm3-sm-open-v1")
    assert card_environment(card).spec.name == "esm"
    assert card.adapter == "matteralign.models.esm_models:Esm3StructureAdapter"
    assert card.input == "backbone" and card.family == "protein-structure"
    assert card.options == sequence_card.options == {"model": "esm3_sm_open_v1"}
    assert card.layer_names == sequence_card.layer_names
    assert card.parameters == sequence_card.parameters


@pytest.mark.slow  # builds (or finds) the esm environment; the esm package imports in ~10 s
def test_esm_adapter_checks_pass_inside_the_esm_environment():
    from matteralign.run.environments import build_environment

    environment = build_environment("esm")
    done = subprocess.run(
        [str(environment.python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         str(HERE / "environments" / "check_esm.py")],
        env={**os.environ, "INFRA_PROVIDER": "1", "HF_HUB_OFFLINE": "1"},
        capture_output=True, text=True, cwd=HERE.parents[1],
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "11 passed" in done.stdout
