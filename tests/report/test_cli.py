"""``matteralign report`` and ``matteralign score`` on the synthetic study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from matteralign.cli.main import app

runner = CliRunner()
FAST = ["--n-permutations", "20", "--n-bootstrap", "3"]  # calibration needs >= 19 rounds


def _config_file(config, out):
    path = out / "study.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return str(path)


def test_report_command_passes_options_to_report_study(toy_study, monkeypatch, tmp_path):
    """The wiring only: report_study itself is exercised end to end by the toy_report fixture."""
    import matteralign.report as report

    config, out = toy_study
    calls = {}

    def fake(study, out_dir, report_dir, options):
        calls.update(study=study, out=out_dir, report_dir=report_dir, options=options)
        return report_dir / "report.html"

    monkeypatch.setattr(report, "report_study", fake)
    result = runner.invoke(app, ["report", _config_file(config, out), "--out", str(out),
                                 "--report-dir", str(tmp_path), "--max-samples", "60", *FAST])
    assert result.exit_code == 0, result.output
    assert f"report in {tmp_path / 'report.html'}" in result.output.replace("\n", "")
    assert calls["study"].name == "toy" and calls["out"] == out
    assert (calls["options"].max_samples, calls["options"].n_permutations,
            calls["options"].n_bootstrap, calls["options"].projection) == (60, 20, 3, "pca")
    bad = runner.invoke(app, ["report", "--out", str(out), "--projection", "tsne"])
    assert bad.exit_code != 0


def test_score_a_user_file_and_a_stored_model(toy_study, patched_datasets, tmp_path):
    config, out = toy_study
    cfg = _config_file(config, out)
    from matteralign.store.embedding_store import EmbeddingStore

    stored = EmbeddingStore(out / "store").load("toy-id", "alpha-large", "h2")
    ids = stored.ids[5:] + ["not-in-store"]
    values = np.vstack([stored.values[5:] * 2.0, np.ones((1, stored.values.shape[1]))])
    np.savez(tmp_path / "mine.npz", ids=np.array(ids), embeddings=values)
    save = tmp_path / "board.csv"
    result = runner.invoke(app, ["score", cfg, "--out", str(out), "--dataset", "toy-id",
                                 "--embeddings", str(tmp_path / "mine.npz"), "--save", str(save),
                                 *FAST])
    assert result.exit_code == 0, result.output
    assert "5 ids of the references missing from the candidate" in result.output
    assert "1 ids of the candidate unknown to the store: not-in-store" in result.output
    board = pd.read_csv(save).set_index("model")
    assert board.loc["mine", "n_references"] == 3
    assert board.loc["mine", "score"] > 0.3
    result = runner.invoke(app, ["score", cfg, "--out", str(out), "--dataset", "toy-id",
                                 "--model", "unknown-model", *FAST])
    assert result.exit_code == 1 and "unknown model" in result.output
    bad = runner.invoke(app, ["score", cfg, "--out", str(out), "--dataset", "toy-id", *FAST])
    assert bad.exit_code != 0
