"""Fault injection (slow): stores damaged at random, and every command either repairs exactly or
says what is wrong; nothing is ever scored silently.

A reference study (two toy models, 40 molecules in five shards each) is embedded and aligned
once. Each trial copies it, applies one to three faults drawn at random (seed 20261205) from:
swapped or altered sample ids, a flipped bit anywhere in a shard (length prefix, header, tensor
bytes), a truncated shard, a deleted shard, completion record or manifest, a copy of a shard under
a foreign name, a stray shard past the recorded count, and a concurrent run holding the lock.
Then, through the real command line:

- ``status`` exits 0, writes nothing, and names every damaged shard, missing or extra shard,
  unfinished embedding and foreign file;
- ``align`` either exits 0 with scores bit-identical to the reference, or exits non-zero with
  one ``error:`` line (no traceback) and leaves no scores claiming to be current;
- ``embed`` then repairs the store: its content equals the reference's (foreign files left
  untouched), and ``align`` gives the reference scores bit for bit.

With the lock held by another process, ``embed``, ``align`` and ``run`` are refused and change
nothing.
"""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from matteralign.cli.main import app
from matteralign.store.embedding_store import EmbeddingStore
from tests.reliability.faulty_models import patch_registry
from tests.reliability.store_snapshot import store_content
from tests.store.lock_holder import held_elsewhere

runner = CliRunner()
STUDY = {"name": "faults", "datasets": [{"name": "toy"}],
         "models": [{"id": "toy-geometry-b"}, {"id": "toy-geometry-b2", "options": {"seed": 3}}],
         "metrics": ["cknna-k10", "cka-linear"], "shard_size": 8, "device": "cpu"}
MODELS = ("toy-geometry-b", "toy-geometry-b2")
N_SHARDS = 5
TRIALS = 40


def _header_span(data: bytes) -> tuple[int, int]:
    (length,) = struct.unpack("<Q", data[:8])
    return 8, 8 + length


def _edit_ids(path, rng) -> str:
    data = path.read_bytes()
    start, end = _header_span(data)
    header = json.loads(data[start:end])
    ids = json.loads(header["__metadata__"]["ids"])
    i, j = rng.choice(len(ids), 2, replace=False)
    if rng.random() < 0.5:
        ids[i], ids[j] = ids[j], ids[i]
    else:
        ids[i] = ids[i][:-1] + chr(ord(ids[i][-1]) ^ 1)  # one flipped bit in one id
    header["__metadata__"]["ids"] = json.dumps(ids)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[end:])
    return "ids"


def _flip_bit(path, rng) -> str:
    data = bytearray(path.read_bytes())
    position = int(rng.integers(len(data)))
    data[position] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(data))
    return f"bit {position}"


def _truncate(path, rng) -> str:
    data = path.read_bytes()
    path.write_bytes(data[: int(rng.integers(len(data)))])
    return "truncated"


def _shard(store, rng):
    model = MODELS[int(rng.integers(len(MODELS)))]
    return model, store.shard_path("toy", model, int(rng.integers(N_SHARDS)))


def _fault(store, rng) -> tuple[str, bool]:
    """Apply one random fault; (what it was, whether the store is foreign-only changed)."""
    kind = rng.choice(["ids", "bit", "truncate", "delete-shard", "delete-record",
                       "delete-manifest", "foreign", "extra-shard"])
    model, path = _shard(store, rng)
    if kind in ("ids", "bit", "truncate") and not path.exists():
        return f"{path.name} already deleted", False
    if kind == "ids":
        return f"{path.name} {_edit_ids(path, rng)}", False
    if kind == "bit":
        return f"{path.name} {_flip_bit(path, rng)}", False
    if kind == "truncate":
        return f"{path.name} {_truncate(path, rng)}", False
    if kind == "delete-shard":
        path.unlink(missing_ok=True)
        return f"deleted {path.name}", False
    if kind == "delete-record":
        store.completion_path("toy", model).unlink(missing_ok=True)
        return f"deleted complete.json of {model}", False
    if kind == "delete-manifest":
        (store.root / "manifest.parquet").unlink(missing_ok=True)
        return "deleted manifest", False
    if kind == "foreign":
        name = rng.choice(["shard-00001.bak.safetensors", "shard-1.safetensors", "notes.txt",
                           "shard-00002.safetensors~", ".shard-00003.safetensors.tmp"])
        if path.exists():
            shutil.copyfile(path, path.parent / name)
        else:
            (path.parent / name).write_text("a note")
        return f"foreign {name}", True
    extra = store.shard_path("toy", model, N_SHARDS + int(rng.integers(3)))
    if path.exists():
        shutil.copyfile(path, extra)
    else:
        extra.write_bytes(b"stray")
    return f"extra {extra.name}", False


def _said(result) -> str:
    return "".join(result.output.split())  # the console wraps long paths anywhere


def _scores(out):
    return pd.read_parquet(out / "scores.parquet")


def _content_without_foreign(root):
    store = EmbeddingStore(root, create=False)
    foreign = {str(p.relative_to(root)) for p in store.foreign_files()}
    content = store_content(root)
    content["files"] = [f for f in content["files"] if f not in foreign]
    content.pop("manifest.parquet", None)
    return content


@pytest.mark.slow
def test_random_faults_are_repaired_exactly_or_named(tmp_path, monkeypatch):
    from tests.reliability import faulty_models

    monkeypatch.setitem(faulty_models.CARDS, "toy-geometry-b2",
                        faulty_models.card("toy-geometry-b2"))
    patch_registry(monkeypatch)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(STUDY))
    reference = tmp_path / "reference"
    for command in ("embed", "align"):
        result = runner.invoke(app, [command, str(config), "--out", str(reference)])
        assert result.exit_code == 0, result.output
    reference_scores = _scores(reference)
    reference_content = _content_without_foreign(reference / "store")

    rng = np.random.default_rng(20261205)
    outcomes = {"align scored exactly": 0, "align refused": 0}
    for trial in range(TRIALS):
        out = tmp_path / f"trial-{trial}"
        shutil.copytree(reference, out)
        store = EmbeddingStore(out / "store")
        faults = [_fault(store, rng) for _ in range(int(rng.integers(1, 4)))]
        context = f"trial {trial}: {[what for what, _ in faults]}"

        before = {p: p.stat().st_mtime_ns for p in (out / "store").rglob("*")}
        status = runner.invoke(app, ["status", "--out", str(out)])
        assert status.exit_code == 0, (context, status.output)
        assert before == {p: p.stat().st_mtime_ns for p in (out / "store").rglob("*")}, context
        damaged = [store.shard_problem(p) for m in MODELS for p in store.shard_paths("toy", m)]
        for problem in [*filter(None, damaged), *store.embedding_problems()]:
            assert "".join(problem.split()) in _said(status), (context, problem, status.output)
        for path in store.foreign_files():
            assert f"foreignfile{path}" in _said(status), (context, path)

        aligned = runner.invoke(app, ["align", str(config), "--out", str(out)])
        assert "Traceback" not in aligned.output, (context, aligned.output)
        if aligned.exit_code == 0:
            pd.testing.assert_frame_equal(_scores(out), reference_scores, check_exact=True)
            outcomes["align scored exactly"] += 1
        else:
            errors = [line for line in aligned.output.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, (context, aligned.output)
            assert not (out / "scores.parquet").exists(), context
            outcomes["align refused"] += 1

        if trial % 4 == 0:  # another run holds the lock: refused, nothing changes
            snapshot = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != ".lock"}
            with held_elsewhere(out / "store"):
                for command in ("embed", "align", "run"):
                    result = runner.invoke(app, [command, str(config), "--out", str(out)])
                    assert result.exit_code == 1, (context, command, result.output)
                    assert "is locked by another matteralign run" in result.output, context
            assert snapshot == {p: p.stat().st_mtime_ns for p in out.rglob("*")
                                if p.name != ".lock"}, context

        foreign = {p: p.read_bytes() for p in store.foreign_files()}
        repaired = runner.invoke(app, ["embed", str(config), "--out", str(out)])
        assert repaired.exit_code == 0, (context, repaired.output)
        assert _content_without_foreign(out / "store") == reference_content, context
        assert {p: p.read_bytes() for p in store.foreign_files()} == foreign, context
        rescored = runner.invoke(app, ["align", str(config), "--out", str(out)])
        assert rescored.exit_code == 0, (context, rescored.output)
        pd.testing.assert_frame_equal(_scores(out), reference_scores, check_exact=True)
        shutil.rmtree(out)
    assert min(outcomes.values()) > 0, outcomes  # both answers were exercised
