"""Fixtures shared by the whole test suite: offline mode and the optional shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The data folder that sits beside the repository (``../shared/data``); skip when absent."""
    path = Path(os.environ.get("MATTERALIGN_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is not present")
    return path
