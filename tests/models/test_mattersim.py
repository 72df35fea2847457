"""MatterSim: the cards, and ``environments/check_mattersim.py`` run in its environment."""

from __future__ import annotations

import pytest

from matteralign.models.registry import get_card
from matteralign.run.environments import build_environment, card_environment
from tests.models.environments import run_checks, tiny_model


def test_mattersim_cards_name_the_published_checkpoints_and_the_environment():
    for size in ("1M", "5M"):
        card = get_card(f"mattersim-v1-{size.lower()}")
        assert card.options == {"checkpoint": f"mattersim-v1.0.0-{size}"}
        assert card_environment(card).spec.name == "mattersim"
        assert card.last_layer == "interaction_3"


@pytest.mark.slow  # the mattersim environment's imports take 10-20 s
def test_mattersim_adapter_checks_pass_inside_the_mattersim_environment(request):
    environment = build_environment("mattersim")
    checkpoint = tiny_model(request.config, environment, "mattersim", "tiny.pth")
    output = run_checks(environment, "mattersim", {"MATTERALIGN_TINY_MATTERSIM": str(checkpoint)})
    assert "3 passed" in output
