"""MACE: the cards, and the adapter checks of ``environments/check_mace.py`` run in its environment.

The ``mace`` environment is built (or found built) first: with a warm pip cache it takes seconds.
``make test`` runs the slow in-environment checks after the default suite.
"""

from __future__ import annotations

import pytest

from matteralign.models.registry import get_card, list_cards
from matteralign.run.environments import build_environment, card_environment
from tests.models.environments import run_checks, tiny_model

CHECKPOINTS = ["mace-mp-0-small", "mace-mp-0-medium", "mace-mp-0-large", "mace-mpa-0-medium",
               "mace-omat-0-medium", "mace-off23-small", "mace-off23-medium", "mace-off23-large"]


def test_every_checkpoint_has_an_invariant_and_an_equivariant_card_in_the_mace_environment():
    ids = {card.id for card in list_cards()}
    for checkpoint in CHECKPOINTS:
        for model_id in (checkpoint, f"{checkpoint}-equivariant"):
            assert model_id in ids
            card = get_card(model_id)
            assert card_environment(card).spec.name == "mace"
            assert card.layer_names == ["interaction_0", "interaction_1"]
            assert card.options["invariants_only"] is False if "equivariant" in model_id else (
                "invariants_only" not in card.options)
    assert get_card("mace-off23-medium").options == {"source": "off", "checkpoint": "medium"}
    assert get_card("mace-mpa-0-medium").options == {"source": "mp", "checkpoint": "medium-mpa-0"}


@pytest.mark.slow  # about a minute: mace-torch's imports alone take 10-15 s per process
def test_mace_adapter_checks_pass_inside_the_mace_environment(request):
    environment = build_environment("mace")
    checkpoint = tiny_model(request.config, environment, "mace", "tiny.model")
    output = run_checks(environment, "mace", {"MATTERALIGN_TINY_MACE": str(checkpoint)})
    assert "6 passed" in output


def test_the_main_environment_cannot_import_mace():
    """What the environment is for: mace-torch's e3nn pin stays out of the main environment."""
    import importlib.util

    if importlib.util.find_spec("mace") is not None:
        pytest.skip("mace-torch is installed in the main environment")
    import e3nn

    assert e3nn.__version__ != "0.4.4"
