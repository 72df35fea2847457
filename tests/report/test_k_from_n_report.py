"""A study whose metric leaves k unset ("cknna") is summarised with the k chosen per dataset."""

import numpy as np


def test_summary_rankings_read_the_cknna_scored_with_k_from_n(tmp_path, monkeypatch):
    from matteralign.analysis.study import AnalysisOptions, analyse_study
    from matteralign.config import StudyConfig
    from matteralign.report.build import _score_tables, _summary
    from matteralign.run import study as run_study
    from tests.reliability.faulty_models import patch_registry

    patch_registry(monkeypatch)
    config = StudyConfig(name="k-from-n", datasets=[{"name": "toy"}],
                         models=[{"id": "toy-geometry"},
                                 {"id": "toy-geometry-b", "options": {"seed": 3}}],
                         layers="last", metrics=["cknna"], shard_size=10, device="cpu")
    run_study.embed_study(config, tmp_path)
    run_study.align_study(config, tmp_path)
    result = analyse_study(config, tmp_path, AnalysisOptions(
        n_permutations=5, n_bootstrap=2, ks=(2, 5), n_calibration=100,
        n_calibration_rescored=20))
    scored = result.metric_on("toy")
    assert scored != "cknna" and scored.startswith("cknna-k")
    table, label = _score_tables(result)
    assert label == "calibrated cknna" and len(table) == 1
    cells = result.calibrated[(result.calibrated.metric == scored)]
    assert np.isclose(table.score.iloc[0], cells.calibrated.mean())
    assert any(line.startswith("Most aligned pairs (calibrated cknna") for line in _summary(result))
