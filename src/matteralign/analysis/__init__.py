"""Analyses of stored embeddings: alignment matrices joined on sample ids, and what follows."""

from __future__ import annotations

from matteralign.analysis.matrices import AlignedEmbeddings, align_store, join_on_ids

__all__ = ["AlignedEmbeddings", "align_store", "join_on_ids"]
