"""Analyses of stored embeddings: alignment matrices joined on sample ids, and what follows."""

from __future__ import annotations

from matteralign.analysis.matrices import (
    AlignedEmbeddings,
    DatasetScores,
    join_on_ids,
    score_dataset,
)

__all__ = ["AlignedEmbeddings", "DatasetScores", "join_on_ids", "score_dataset"]
