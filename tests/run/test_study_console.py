"""What ``align`` prints, and that a command validates its study once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matteralign.config import StudyConfig
from matteralign.run import study as run_study


def _matrix(m: int, seed: int = 0) -> pd.DataFrame:
    names = [f"model-{i:02d}" for i in range(m)]
    return pd.DataFrame(np.random.default_rng(seed).random((m, m)), index=names, columns=names)


def test_a_small_matrix_is_printed_whole(capsys, tmp_path):
    matrix = _matrix(4)
    run_study._print_matrix("toy", "cknna-k10", matrix, 50, tmp_path / "m.parquet")
    out = capsys.readouterr().out
    for name in matrix.index:
        assert out.count(name) == 2  # its row and its column
    assert f"{matrix.iloc[1, 2]:.3f}" in out
    assert "m.parquet" in out


def test_a_large_matrix_prints_its_extreme_pairs_and_where_it_was_written(capsys, tmp_path):
    m = 40
    matrix = _matrix(m)
    path = tmp_path / "alignment" / "toy" / "ii-k1.parquet"
    run_study._print_matrix("toy", "ii-k1", matrix, 50, path)  # asymmetric, lower = more similar
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 20
    values = matrix.to_numpy()
    off = values[~np.eye(m, dtype=bool)]
    a, b = np.unravel_index(np.argmin(np.where(np.eye(m, dtype=bool), np.inf, values)), (m, m))
    assert f"{matrix.index[a]} -> {matrix.columns[b]}" in out
    assert f"{off.min():.3f}" in out and f"{off.max():.3f}" in out
    assert f"{m * (m - 1)} scored pairs" in out
    assert str(path) in out.replace("\n", "")


def test_a_symmetric_large_matrix_lists_each_pair_once(capsys, tmp_path):
    matrix = _matrix(20)
    matrix = (matrix + matrix.T) / 2
    run_study._print_matrix("toy", "dcor", matrix, 50, tmp_path / "d.parquet")
    out = capsys.readouterr().out
    assert "190 scored pairs" in out and "->" not in out


def test_run_validates_the_study_once(tmp_path, monkeypatch):
    from tests.reliability.faulty_models import patch_registry

    patch_registry(monkeypatch)
    calls = []
    check = run_study.validate_study
    monkeypatch.setattr(run_study, "validate_study", lambda c: (calls.append(c), check(c))[1])
    monkeypatch.setattr(run_study, "write_report", lambda config, out: out / "report.html")
    config = StudyConfig(name="once", datasets=[{"name": "toy"}],
                         models=[{"id": "toy-geometry"},
                                 {"id": "toy-geometry-b", "options": {"seed": 3}}],
                         metrics=["cka-linear"], shard_size=10, device="cpu")
    run_study.run_study(config, tmp_path)
    assert len(calls) == 1
    assert (tmp_path / "alignment" / "toy" / "cka-linear.parquet").exists()
