"""Two complete runs of the smoke study give bit-identical embeddings and scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.reliability.store_snapshot import store_content


def run_smoke(out: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "matteralign.cli.main", "run", "smoke",
                             "--out", str(out)], env=env, capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_two_runs_of_the_smoke_study_are_bit_identical(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    run_smoke(first)
    run_smoke(second)

    embeddings = store_content(first / "store")
    assert any(name.endswith(".safetensors") for name in embeddings["files"])
    assert embeddings == store_content(second / "store")

    scores = pd.read_parquet(first / "scores.parquet")
    assert len(scores) > 0
    pd.testing.assert_frame_equal(scores, pd.read_parquet(second / "scores.parquet"),
                                  check_exact=True)
    matrices = sorted(p.relative_to(first) for p in (first / "alignment").rglob("*.parquet"))
    assert matrices == sorted(p.relative_to(second)
                              for p in (second / "alignment").rglob("*.parquet"))
    assert matrices
    for matrix in matrices:
        pd.testing.assert_frame_equal(pd.read_parquet(first / matrix),
                                      pd.read_parquet(second / matrix), check_exact=True)
    summary = json.loads((first / "summary.json").read_text())
    assert summary == json.loads((second / "summary.json").read_text())
