"""Registry of models: built-in YAML cards plus the entry-point group ``matteralign.models``.

Listing reads cards only; a model's package is imported when its adapter is created.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from matteralign.errors import ModelNotFoundError
from matteralign.models.adapter import ModelAdapter
from matteralign.models.card import ModelCard

CARD_DIR = Path(__file__).parent / "cards"
ENTRY_POINT_GROUP = "matteralign.models"


@cache
def _cards() -> dict[str, ModelCard]:
    cards = {}
    for path in sorted(CARD_DIR.glob("*.yaml")):
        card = ModelCard.from_yaml(path)
        cards[card.id] = card
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        # A plugin's entry point is a callable returning its ModelCards.
        for card in entry.load()():
            cards[card.id] = card
    return cards


def list_cards() -> list[ModelCard]:
    """Cards of every registered model, built-in first, in id order."""
    return list(_cards().values())


def get_card(model_id: str) -> ModelCard:
    """The card registered under ``model_id``.

    Raises
    ------
    ModelNotFoundError
        If no model has that id; the message lists close matches.
    """
    cards = _cards()
    if model_id not in cards:
        import difflib

        close = difflib.get_close_matches(model_id, list(cards), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelNotFoundError(
            f"unknown model {model_id!r}.{hint} `matteralign models list` shows every model."
        )
    return cards[model_id]


def create_adapter(model_id: str, **options: Any) -> ModelAdapter:
    """Instantiate the adapter of ``model_id`` (imports its module, not yet its weights)."""
    card = get_card(model_id)
    module_name, class_name = card.adapter.split(":")
    adapter_class = getattr(importlib.import_module(module_name), class_name)
    adapter: ModelAdapter = adapter_class(card, **options)
    return adapter
