"""PET-MAD / uPET: the cards, and the adapter checks of ``environments/check_pet.py`` in its
environment."""

from __future__ import annotations

import pytest

from matteralign.models.registry import get_card, list_cards
from matteralign.run.environments import build_environment, card_environment
from tests.models.environments import run_checks, tiny_model


def test_pet_cards_name_the_pet_environment_and_one_upet_checkpoint_each():
    cards = [card for card in list_cards() if card.adapter.endswith(":PETAdapter")]
    assert len(cards) == 23
    for card in cards:
        assert card_environment(card).spec.name == "pet"
        options = card.options
        assert card.id == f"{options['model']}-{options['size']}-v{options['version']}"
        assert card.checkpoint == f"{card.id}.ckpt"
        assert card.layer_names == ["features", "last_layer_features"]
    paper = get_card("pet-mad-s-v1.0.2")
    assert paper.last_layer == "last_layer_features"
    assert (paper.level_of_theory, paper.parameters) == ("PBEsol", 3_258_420)


@pytest.mark.slow  # about a minute: upet scripts the tiny PET with TorchScript in the environment
def test_pet_adapter_checks_pass_inside_the_pet_environment(request):
    environment = build_environment("pet")
    folder = tiny_model(request.config, environment, "pet", "tiny")
    output = run_checks(environment, "pet", {"MATTERALIGN_TINY_PET": str(folder)})
    assert "6 passed" in output
