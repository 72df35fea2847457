"""Orb: the cards, and the adapter checks of ``environments/check_orb.py`` in its environment."""

from __future__ import annotations

import pytest

from matteralign.models.registry import get_card, list_cards
from matteralign.run.environments import build_environment, card_environment
from tests.models.environments import run_checks, tiny_model


def test_orb_cards_name_the_orb_environment_and_the_package_checkpoint():
    cards = [card for card in list_cards() if card.adapter.endswith(":OrbAdapter")]
    assert len(cards) == 9
    for card in cards:
        assert card_environment(card).spec.name == "orb"
        assert card.options == {"checkpoint": card.id}
        steps = 15 if card.id == "orb-v2" else 5
        assert card.layer_names == [f"message_passing_{i}" for i in range(steps)]
    assert get_card("orb-v3-conservative-inf-omat").last_layer == "message_passing_4"


@pytest.mark.slow  # about a minute: two tiny models through every check in the orb environment
def test_orb_adapter_checks_pass_inside_the_orb_environment(request):
    environment = build_environment("orb")
    folder = tiny_model(request.config, environment, "orb", "tiny")
    output = run_checks(environment, "orb", {"MATTERALIGN_TINY_ORB": str(folder)})
    assert "5 passed" in output
