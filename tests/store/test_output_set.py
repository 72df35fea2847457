"""Outputs written as one set: all files appear together with their record, or none claims to
be current."""

from __future__ import annotations

import json

import pytest

from matteralign.errors import StoreError
from matteralign.store.embedding_store import atomic_write_bytes
from matteralign.store.output_set import OutputSet, read_output_set, remove_output_set


def _write(folder, files, fingerprint=None):
    with OutputSet(folder, "results") as staged:
        for relative, text in files.items():
            atomic_write_bytes(staged.root / relative, text.encode())
        staged.commit(fingerprint)


def test_a_set_appears_whole_with_its_record_and_replaces_the_previous_one(tmp_path):
    _write(tmp_path, {"a.txt": "1", "sub/b.txt": "2"}, {"n": 40})
    body = read_output_set(tmp_path, "results")
    assert sorted(body["files"]) == ["a.txt", "sub/b.txt"] and body["fingerprint"] == {"n": 40}
    _write(tmp_path, {"a.txt": "3"})
    assert (tmp_path / "a.txt").read_text() == "3"
    assert not (tmp_path / "sub").exists()  # the older set's file is gone, not left current
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_interrupted_set_keeps_the_previous_one_or_has_no_record(tmp_path, monkeypatch):
    _write(tmp_path, {"a.txt": "1"})
    with pytest.raises(RuntimeError), OutputSet(tmp_path, "results") as staged:
        atomic_write_bytes(staged.root / "a.txt", b"2")
        raise RuntimeError("killed while computing")
    assert (tmp_path / "a.txt").read_text() == "1"
    read_output_set(tmp_path, "results")

    import matteralign.store.output_set as module

    def dies(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_sha256", dies)  # killed while moving the set into place
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path, {"a.txt": "2"})
    with pytest.raises(StoreError, match="results.manifest.json is missing: the results outputs"):
        read_output_set(tmp_path, "results")
    monkeypatch.undo()
    killed = tmp_path / ".results.abc123.staging"  # left by a SIGKILL: the next set removes it
    killed.mkdir()
    _write(tmp_path, {"a.txt": "3"})
    assert not killed.exists() and read_output_set(tmp_path, "results")


def test_a_changed_file_and_removal(tmp_path):
    _write(tmp_path, {"a.txt": "1"})
    (tmp_path / "a.txt").write_text("edited")
    with pytest.raises(StoreError, match="a.txt is missing or changed"):
        read_output_set(tmp_path, "results")
    (tmp_path / "old.parquet").write_text("from an older version")
    assert remove_output_set(tmp_path, "results", also=("old.parquet",)) == ["a.txt",
                                                                            "old.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert json.dumps(remove_output_set(tmp_path, "results")) == "[]"
