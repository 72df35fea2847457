"""analyse_study on a study that lacks inputs: every analysis gives a note, none crashes."""

from __future__ import annotations

import warnings

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


def _toy_study(metrics):
    return StudyConfig(name="scores", datasets=[{"name": "toy"}],
                       models=[{"id": "toy-geometry"}, {"id": "toy-geometry-b",
                                                        "options": {"seed": 3}}],
                       layers="all", metrics=metrics, shard_size=10, device="cpu")


def test_the_analyses_read_the_matrices_align_wrote(tmp_path, monkeypatch):
    """No matrix is recomputed: the analyses get exactly what align wrote, a matrix changed on
    disk shows in the result, and a metric align skipped (k >= N) is a note, not a lower k."""
    import pandas as pd

    import matteralign.analysis.study as analysis
    from matteralign.run import study as run_study
    from tests.reliability.faulty_models import patch_registry

    patch_registry(monkeypatch)
    config = _toy_study(["cknna-k10", "cka-linear", "ii-k1", "mknn-k50"])
    run_study.embed_study(config, tmp_path)
    run_study.align_study(config, tmp_path)

    def no_rescoring(*args, **kwargs):
        raise AssertionError("the analyses recomputed a matrix that align wrote")

    monkeypatch.setattr(analysis, "score_dataset", no_rescoring)
    reads: dict[str, int] = {}
    read_shard = EmbeddingStore.read_shard

    def counted(self, path, verify=True):
        reads[str(path)] = reads.get(str(path), 0) + 1
        return read_shard(self, path, verify)

    monkeypatch.setattr(EmbeddingStore, "read_shard", counted)
    options = AnalysisOptions(n_permutations=3, n_bootstrap=2, ks=(2, 5))
    result = analyse_study(config, tmp_path, options)
    assert len(reads) == 8 and set(reads.values()) == {1}  # 2 models x 4 shards, each read once
    assert not result.layer_rows.empty  # the layers analysis read all layers from those reads
    folder = tmp_path / "alignment" / "toy"
    assert set(result.matrices["toy"]) == {"cknna-k10", "cka-linear", "ii-k1"}
    for metric, got in result.matrices["toy"].items():
        pd.testing.assert_frame_equal(got, pd.read_parquet(folder / f"{metric}.parquet"),
                                      check_exact=True)
    assert any(note.startswith("metric mknn-k50 on toy left out: ") and "k=50" in note
               for note in result.notes["matrices"])
    assert result.main_metric == "cknna-k10"

    changed = pd.read_parquet(folder / "cknna-k10.parquet")
    changed.loc["toy-geometry", "toy-geometry-b"] = 0.123
    changed.to_parquet(folder / "cknna-k10.parquet")
    again = analyse_study(config, tmp_path, options)
    assert again.matrices["toy"]["cknna-k10"].loc["toy-geometry", "toy-geometry-b"] == 0.123
    pair = again.pairs.set_index(["model_a", "model_b"]).loc[("toy-geometry", "toy-geometry-b")]
    assert pair["cknna-k10"] == 0.123


def test_without_align_the_same_scoring_function_runs_in_memory(tmp_path, monkeypatch):
    import matteralign.analysis.matrices as matrices
    from matteralign.run import study as run_study
    from tests.reliability.faulty_models import patch_registry

    patch_registry(monkeypatch)
    config = _toy_study(["cknna-k10"])
    run_study.embed_study(config, tmp_path)
    result = analyse_study(config, tmp_path, AnalysisOptions(n_permutations=3, n_bootstrap=2,
                                                             ks=(2, 5)))
    stored = [EmbeddingStore(tmp_path / "store").load_finished("toy", m, "last")
              for m in ("toy-geometry", "toy-geometry-b")]
    want = matrices.score_dataset(stored, "toy", ["cknna-k10"], config.preprocess)
    np.testing.assert_array_equal(result.matrices["toy"]["cknna-k10"].to_numpy(),
                                  want.matrices["cknna-k10"].to_numpy())
    assert any("has written no scores" in note for note in result.notes["matrices"])


def test_energy_error_reads_the_stored_sample_table_not_the_dataset(tmp_path, monkeypatch):
    """Reference energies and atomic numbers come from the store, written at embed time."""
    from ase import Atoms

    import matteralign.data.registry as registry
    from matteralign.analysis.energy import composition_matrix, energy_regression_error
    from matteralign.data.sample import Sample

    def no_dataset(*args, **kwargs):
        raise AssertionError("an analysis rebuilt a dataset")

    monkeypatch.setattr(registry, "load_dataset", no_dataset)
    rng = np.random.default_rng(4)
    n = 40
    ids = [f"s{i}" for i in range(n)]
    atoms = [Atoms("H" * int(rng.integers(1, 5)) + "O" * int(rng.integers(1, 3))) for _ in ids]
    counts, _ = composition_matrix([a.numbers for a in atoms])
    reference = counts @ np.array([-13.6, -430.0]) + rng.normal(size=n)
    store = EmbeddingStore(tmp_path / "store")
    predicted = {}
    for j, model in enumerate(("m-a", "m-b")):
        predicted[model] = reference + 0.1 * (j + 1) * rng.normal(size=n)
        store.write_shard("d", model, 0, ShardRecord(ids, {"h": rng.normal(size=(n, 5))},
                                                     predicted[model], [], "h", {}))
        store.mark_complete("d", model, 1)
    store.write_samples("d", [Sample(id=i, atoms=a, labels={"energy": float(e)})
                              for i, a, e in zip(ids, atoms, reference, strict=True)])
    config = StudyConfig(name="energy", datasets=[{"name": "d"}],
                         models=[{"id": "m-a"}, {"id": "m-b"}], metrics=["cknna-k5"])
    result = analyse_study(config, tmp_path, AnalysisOptions(n_permutations=3, n_bootstrap=2,
                                                             ks=(2, 5)))
    mae = result.energy.set_index("model").mae
    for model, values in predicted.items():
        assert mae[model] == energy_regression_error(reference, values, counts).mae


def test_a_model_scored_nan_against_all_others_gives_a_note_not_numpy_warnings(tmp_path):
    """Distinct one-hot rows (the composition of elemental solids: every neighbour tied) score
    NaN against every model; analysing and reporting the study raises no RuntimeWarning or
    UserWarning (numpy's empty-slice reductions, masked-array conversions), and says why."""
    from matteralign.report import build_report

    n = 40
    rng = np.random.default_rng(2)
    ids = [f"e{i}" for i in range(n)]
    latent = rng.normal(size=(n, 4))
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    embeddings = {"geo-a": latent, "geo-b": latent @ rotation + 0.2 * rng.normal(size=(n, 4)),
                  "noise": rng.normal(size=(n, 3)), "onehot": np.eye(n)}
    store = EmbeddingStore(tmp_path / "store")
    for model, x in embeddings.items():
        store.write_shard("elements", model, 0, ShardRecord(ids, {"h": x}, None, [], "h", {}))
        store.mark_complete("elements", model, 1)
    config = StudyConfig(name="ties", datasets=[{"name": "elements"}],
                         models=[{"id": m} for m in embeddings], metrics=["cknna-k5"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = analyse_study(config, tmp_path, AnalysisOptions(n_permutations=19,
                                                                 n_bootstrap=3, ks=(2, 5)))
        build_report(result, config, tmp_path, tmp_path / "report")
    loud = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
            if issubclass(w.category, (RuntimeWarning, UserWarning))]
    assert not loud
    table, refs, basis = result.leaderboards["elements"]
    assert basis == "consensus" and "onehot" not in refs
    # one null per pair: the leaderboard's calibrated scores are the calibrated matrix's cells
    cal = result.calibrated_matrices["elements"]["cknna-k5"]
    for row in table.itertuples():
        want = [cal.loc[row.model, r] for r in refs if r != row.model]
        np.testing.assert_allclose(row.score, np.mean(want), rtol=0, atol=1e-15)
    assert any("onehot scored NaN against every other model" in note
               for note in result.notes["matrices"])


def test_a_metric_without_k_is_scored_with_k_from_n_by_every_analysis(tmp_path):
    """metrics: [cknna, cknna-k25] at N = 40: "cknna" is scored as cknna-k4 (choose_k) and the
    main-metric analyses (condensed, tree, layers, leaderboard) use that matrix; cknna-k25 is kept
    and flagged (k / N = 0.62)."""
    from matteralign.metrics import pairwise

    n = 40
    rng = np.random.default_rng(5)
    ids = [f"s{i}" for i in range(n)]
    latent = rng.normal(size=(n, 4))
    embeddings = {f"m{j}": latent @ rng.normal(size=(4, 6)) + 0.3 * rng.normal(size=(n, 6))
                  for j in range(4)}
    store = EmbeddingStore(tmp_path / "store")
    for model, x in embeddings.items():
        store.write_shard("d", model, 0, ShardRecord(ids, {"l0": rng.normal(size=(n, 3)),
                                                           "l1": x}, None, [], "h", {}))
        store.mark_complete("d", model, 1)
    config = StudyConfig(name="kn", datasets=[{"name": "d"}],
                         models=[{"id": m} for m in embeddings], metrics=["cknna", "cknna-k25"])
    result = analyse_study(config, tmp_path, AnalysisOptions(n_permutations=19, n_bootstrap=3,
                                                             n_calibration=49, ks=(2, 5)))
    assert result.main_metric == "cknna" and result.metric_on("d") == "cknna-k4"
    assert set(result.matrices["d"]) == {"cknna-k4", "cknna-k25"}
    want = pairwise(embeddings, "cknna-k4", preprocessing=config.preprocess).matrix
    np.testing.assert_allclose(result.matrices["d"]["cknna-k4"].loc[want.index, want.columns],
                               want, rtol=0, atol=1e-12)
    assert set(result.calibrated.metric) == {"cknna-k4", "cknna-k25"}
    table, refs, _ = result.leaderboards["d"]
    assert set(table.metric) == {"cknna-k4"}
    assert "d" in result.condensed and "d" in result.trees
    assert result.layer_summary.best_p.notna().all()
    assert any("cknna scored as cknna-k4" in note for note in result.notes["matrices"])
    assert any("metric cknna-k25 on d: k / N = 25 / 40" in note
               for note in result.notes["matrices"])
    assert not any("cknna-k4 on d: k / N" in note for note in result.notes["matrices"])
