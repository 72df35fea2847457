"""fairchem: the cards, and ``environments/check_fairchem.py`` (UMA, fairchem-core 2) and
``environments/check_fairchem_v1.py`` (EquiformerV2 and eSEN, fairchem-core 1) run in their
environments."""

from __future__ import annotations

import pytest

from matteralign.models.registry import get_card, list_cards
from matteralign.run.environments import build_environment, card_environment
from tests.models.environments import run_checks, tiny_model


def test_uma_cards_pair_each_checkpoint_with_the_task_head_of_their_domain():
    cards = [card for card in list_cards() if card.adapter.endswith(":FairChemAdapter")]
    assert sorted(card.id for card in cards) == [
        "uma-m-1p1-omat", "uma-m-1p1-omol", "uma-s-1p1-omat", "uma-s-1p1-omol"]
    for card in cards:
        size, task = card.id.split("-")[1], card.id.split("-")[-1]
        assert card_environment(card).spec.name == "fairchem"
        assert card.options == {"checkpoint": f"uma-{size}-1p1", "task": task}
        assert card.domain == (["materials"] if task == "omat" else ["molecules", "proteins"])
        blocks = 4 if size == "s" else 10
        assert card.layer_names == [f"block_{i}" for i in range(blocks)] + ["node_embedding"]
        assert card.last_layer == "node_embedding"
    assert get_card("uma-s-1p1-omol").architecture_family == "uma"


def test_omat24_cards_name_fairchem_1_checkpoints_in_the_fairchem_v1_environment():
    cards = {card.id: card for card in list_cards() if card.adapter.endswith(":FairChemV1Adapter")}
    assert sorted(cards) == ["eqv2-31m-mp", "eqv2-31m-oam", "eqv2-31m-omat", "esen-30m-mp",
                             "esen-30m-oam", "esen-30m-omat"]
    for card in cards.values():
        assert card_environment(card).spec.name == "fairchem-v1"
        blocks = 10 if card.architecture_family == "esen" else 8
        assert card.layer_names == [f"block_{i}" for i in range(blocks)] + ["node_embedding"]
        assert card.domain == ["materials"]
    assert cards["esen-30m-oam"].options == {"checkpoint": "eSEN-30M-OAM"}
    assert cards["eqv2-31m-oam"].options == {"checkpoint": "EquiformerV2-31M-OMAT24-MP-sAlex"}


@pytest.mark.slow  # about 40 s: a tiny UMA and eSEN through every check in the fairchem environment
def test_fairchem_adapter_checks_pass_inside_the_fairchem_environment(request):
    environment = build_environment("fairchem")
    folder = tiny_model(request.config, environment, "fairchem", "tiny")
    output = run_checks(environment, "fairchem", {"MATTERALIGN_TINY_FAIRCHEM": str(folder)})
    assert "7 passed" in output


@pytest.mark.slow  # about 25 s: a tiny eSEN and EquiformerV2 through every check in fairchem-v1
def test_fairchem_v1_adapter_checks_pass_inside_the_fairchem_v1_environment(request):
    environment = build_environment("fairchem-v1")
    folder = tiny_model(request.config, environment, "fairchem_v1", "tiny")
    output = run_checks(environment, "fairchem_v1",
                        {"MATTERALIGN_TINY_FAIRCHEM_V1": str(folder)})
    assert "6 passed" in output
