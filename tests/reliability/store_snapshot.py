"""The content of an embedding store, for comparing two runs bit for bit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from matteralign.store.embedding_store import EmbeddingStore


def store_content(root: Path) -> dict[str, Any]:
    """Everything the store under ``root`` holds except each shard's ``runtime_s``.

    That is: the list of files; for every shard (checksum verified) its sample ids, failures,
    configuration hash, provenance and the dtype, shape and bytes of every tensor; every
    completion record; and the manifest. ``runtime_s`` (seconds a shard took, in the shard
    header and the manifest) legitimately differs between two runs, so it is left out, and so is
    the manifest's copy of each shard's checksum, which covers it.
    """
    store = EmbeddingStore(root)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if p.is_file() and p.name != ".lock")
    content: dict[str, Any] = {"files": files}
    for path in sorted(root.glob("embeddings/*/*/complete.json")):
        content[str(path.relative_to(root))] = path.read_text()
    shards = [path for folder in sorted(root.glob("embeddings/*/*"))
              for path in store.shard_paths(folder.parent.name, folder.name)]
    for path in shards:
        record = store.read_shard(path, verify=True)
        provenance = {k: v for k, v in record.provenance.items() if k != "runtime_s"}
        content[str(path.relative_to(root))] = (
            record.ids, record.failures, record.config_hash,
            json.dumps(provenance, sort_keys=True),
            {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in sorted(record.layers.items())},
            None if record.energy is None else record.energy.tobytes(),
        )
    if (root / "manifest.parquet").exists():
        # the checksum covers the provenance, runtime_s included: compared through the shards
        manifest = pd.read_parquet(root / "manifest.parquet").drop(columns=["runtime_s",
                                                                            "checksum"])
        content["manifest.parquet"] = manifest.to_json()
    return content
