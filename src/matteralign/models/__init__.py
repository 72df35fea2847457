"""Models: cards (what a model is) and adapters (samples in, per-layer pooled embeddings out).

Importing this package imports no model package; adapters import theirs when loaded.
"""

from __future__ import annotations

from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.card import ModelCard
from matteralign.models.registry import create_adapter, get_card, list_cards
from matteralign.models.validate import ValidationReport, validate_adapter

__all__ = [
    "EmbeddingOutput",
    "ModelAdapter",
    "ModelCard",
    "ValidationReport",
    "create_adapter",
    "get_card",
    "list_cards",
    "validate_adapter",
]
