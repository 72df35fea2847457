"""Model cards: the poolings a card may declare are the ones the pooling code implements."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pydantic
import pytest
import yaml

from matteralign.models.card import ModelCard, Pooling
from matteralign.models.hidden_state_pooling import TOKEN_POOLINGS
from matteralign.models.pooling import POOLINGS

CARD = {
    "id": "toy-mlip", "name": "Toy MLIP", "family": "mlip", "input": "atoms",
    "domain": ["materials"], "adapter": "toy_models:PairDistanceAdapter", "license": "MIT",
    "layers": [{"name": "last"}],
}


def test_card_pooling_choices_are_the_implemented_poolings():
    assert set(get_args(Pooling)) == set(POOLINGS) | set(TOKEN_POOLINGS)


@pytest.mark.parametrize("pooling", ["mean_std", "cumulants-2", "cumulants-8"])
def test_card_declares_mean_std_and_cumulants(tmp_path: Path, pooling: str):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({**CARD, "default_pooling": pooling}))
    assert ModelCard.from_yaml(path).default_pooling == pooling


def test_card_refuses_a_cumulant_order_beyond_eight():
    with pytest.raises(pydantic.ValidationError, match="default_pooling"):
        ModelCard.model_validate({**CARD, "default_pooling": "cumulants-9"})
