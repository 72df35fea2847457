"""Package files and data-root files: errors say what is missing and how to provide it."""

from __future__ import annotations

import pytest

from matteralign.data.sources import (
    DATA_ROOT_ENV,
    package_file,
    package_provenance,
    require_data_files,
    resolve_data_root,
)
from matteralign.errors import DatasetError


def test_missing_package_and_file():
    with pytest.raises(DatasetError, match="pip install no_such_package_xyz"):
        package_file("no_such_package_xyz", "a.csv", "demo")
    with pytest.raises(DatasetError, match="missing from the installed package 'ase'"):
        package_file("ase", "nope/missing.json", "demo")
    assert package_provenance("ase", "ase/x").startswith("pypi:ase==3.")


def test_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert resolve_data_root(None) is None
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    assert resolve_data_root(None) == tmp_path
    (tmp_path / "a").mkdir()
    (tmp_path / "a/x.json").write_text("{}")
    assert require_data_files(None, ["a/x.json"], "demo") == [tmp_path / "a/x.json"]
    with pytest.raises(DatasetError, match=r"missing 2 file\(s\) under data root .*: a/y, b/z"):
        require_data_files(tmp_path, ["a/x.json", "a/y", "b/z"], "demo")
    monkeypatch.delenv(DATA_ROOT_ENV)
    with pytest.raises(DatasetError, match="--data-root"):
        require_data_files(None, ["a/x.json"], "demo")
