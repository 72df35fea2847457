"""ESM-IF1 and fair-esm ESM-2 checkpoints: the card, the torch_scatter stand-in, and the adapter
checks of ``environments/check_fair_esm.py`` run in the ``fair-esm`` model environment (fair-esm
installs the module ``esm``, as EvolutionaryScale's package of the ``esm`` environment does).
"""

from __future__ import annotations

import pytest
import torch

from matteralign.models._torch_scatter_shim import scatter_add
from matteralign.models.registry import get_card
from matteralign.run.environments import build_environment, card_environment
from tests.models.environments import run_checks


def test_esm_if1_card_runs_in_the_fair_esm_environment_with_every_encoder_layer():
    card = get_card("esm-if1")
    assert card_environment(card).spec.name == "fair-esm"
    assert card.input == "backbone" and card.family == "protein-structure"
    assert card.layer_names == [str(i) for i in range(9)] and card.default_pooling == "mean"
    assert card.options == {"model": "esm_if1_gvp4_t16_142M_UR50"}
    assert card.license == "MIT" and card.parameters == 141_662_150


def test_scatter_add_stand_in_sums_into_slots():
    src = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    index = torch.tensor([2, 0, 2])
    expected = torch.zeros(4, 2).index_add_(0, index, src)
    torch.testing.assert_close(scatter_add(src, index, dim=0, dim_size=4), expected)


@pytest.mark.slow  # builds (or finds) the fair-esm environment; fair-esm imports in ~10 s
def test_fair_esm_adapter_checks_pass_inside_the_fair_esm_environment():
    environment = build_environment("fair-esm")
    output = run_checks(environment, "fair_esm", {"HF_HUB_OFFLINE": "1"})
    assert "8 passed" in output
