"""Embeddings on disk: one safetensors shard per (dataset, model, shard), resumable."""

from __future__ import annotations

from matteralign.store.embedding_store import EmbeddingStore, ShardRecord, StoredEmbeddings
from matteralign.store.provenance import config_hash, environment_provenance

__all__ = [
    "EmbeddingStore",
    "ShardRecord",
    "StoredEmbeddings",
    "config_hash",
    "environment_provenance",
]
