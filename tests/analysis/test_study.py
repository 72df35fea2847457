"""analyse_study on a study that lacks inputs: every analysis gives a note, none crashes."""

from __future__ import annotations

import numpy as np

from matteralign.analysis.study import ANALYSES, AnalysisOptions, analyse_study
from matteralign.config import StudyConfig
from matteralign.store.embedding_store import EmbeddingStore, ShardRecord


def test_one_model_and_no_energies_leaves_notes_for_every_analysis(tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    ids = [f"s{i}" for i in range(30)]
    x = np.random.default_rng(0).normal(size=(30, 4))
    store.write_shard("only", "solo-model", 0, ShardRecord(ids, {"h": x}, None, [], "h", {}))
    store.mark_complete("only", "solo-model", 1)
    config = StudyConfig(name="thin", datasets=[{"name": "only"}, {"name": "empty"}],
                         models=[{"id": "solo-model"}])
    result = analyse_study(config, tmp_path, AnalysisOptions(n_permutations=5, n_bootstrap=3))
    assert set(result.datasets) == {"only"}
    assert result.datasets["only"].layers == {"solo-model": "h"}
    for key in ANALYSES:
        if key in ("dimension", "map"):
            continue
        assert result.notes[key], key
    assert any("two models" in n for n in result.notes["matrices"])
    assert any("no model stored predicted energies" in n for n in result.notes["convergence"])
    assert not result.dimensions.empty          # one model still has an intrinsic dimension
    assert result.maps and result.maps[0].method == "pca"


def test_missing_store_is_a_note(tmp_path):
    config = StudyConfig(name="none", datasets=[{"name": "x"}], models=[{"id": "y"}])
    result = analyse_study(config, tmp_path)
    assert all("no store" in result.notes[k][0] for k in ANALYSES)
