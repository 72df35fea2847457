"""Atom-level embedding into the store (resumable, keyed rows) and its per-element scoring."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.analysis.atoms import atom_keys, per_structure_distortion, score_atoms
from matteralign.data.atom_sample import AtomSampling, sample_atoms
from matteralign.errors import AdapterError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.run.embed import embed_dataset
from matteralign.store.embedding_store import EmbeddingStore
from tests.run.toy_models import PairDistanceAdapter, toy_card, toy_dataset


class AtomDistanceAdapter(ModelAdapter):
    """Per-atom sorted distances to the other atoms (padded), projected to ``width`` columns."""

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        rng = np.random.default_rng(int(self.options.get("seed", 0)))
        self.projection = rng.normal(size=(5, int(self.options.get("width", 6))))

    def embed(self, batch, layers, pooling, per_item=False) -> EmbeddingOutput:
        items = []
        for atoms in batch:
            d = np.sort(atoms.get_all_distances(), axis=1)[:, 1:]
            f = np.zeros((len(atoms), 4))
            f[:, : min(4, d.shape[1])] = d[:, :4]
            f = np.hstack([f, atoms.numbers[:, None] / 10.0])
            items.append(np.tanh(f @ self.projection).astype(np.float32))
        pooled = np.stack([x.mean(0) for x in items])
        return EmbeddingOutput(pooled={layer: pooled for layer in layers},
                               per_item={layer: items for layer in layers} if per_item else None)


def _adapter(seed: int, width: int) -> AtomDistanceAdapter:
    card = toy_card(f"toy-atoms-{seed}", adapter="AtomDistanceAdapter")
    return AtomDistanceAdapter(card, seed=seed, width=width)


def test_atoms_are_stored_keyed_and_resumable(tmp_path):
    data = toy_dataset(30, xe=())
    store = EmbeddingStore(tmp_path)
    sampling = AtomSampling(per_structure=3, seed=1)
    plan = sample_atoms(data.samples, sampling)
    first = embed_dataset(_adapter(0, 6), data, store, layers="last", shard_size=8,
                          atoms=sampling)
    assert first.dataset == "toy@atoms" and first.computed == 4
    stored = store.load_finished("toy@atoms", "toy-atoms-0", "last")
    keys = atom_keys(stored.ids)
    assert len(keys) == sum(len(v) for v in plan.values()) == stored.values.shape[0]
    for sample in data.samples:  # each row is that atom's own features
        rows = keys.index[keys["sample_id"] == sample.id]
        assert keys.loc[rows, "atom_index"].tolist() == plan[sample.id].tolist()
        symbols = sample.atoms.get_chemical_symbols()
        assert keys.loc[rows, "element"].tolist() == [symbols[i] for i in plan[sample.id]]
    again = embed_dataset(_adapter(0, 6), data, store, layers="last", shard_size=8,
                          atoms=sampling)
    assert again.computed == 0 and again.skipped == 4
    np.testing.assert_array_equal(store.load_finished("toy@atoms", "toy-atoms-0", "last").values,
                                  stored.values)
    other = embed_dataset(_adapter(0, 6), data, store, layers="last", shard_size=8,
                          atoms=AtomSampling(per_structure=2, seed=1))
    assert other.computed == 4  # other sampling, other hash
    assert not (tmp_path / "embeddings" / "toy").exists()  # structure level untouched


def test_atom_level_scores_and_per_element_views(tmp_path):
    data = toy_dataset(40, xe=())
    store = EmbeddingStore(tmp_path)
    sampling = AtomSampling(per_structure=4, seed=2)
    for seed, width in ((0, 6), (1, 9)):
        embed_dataset(_adapter(seed, width), data, store, layers="last", shard_size=16,
                      atoms=sampling)
    stored = [store.load_finished("toy@atoms", f"toy-atoms-{s}", "last") for s in (0, 1)]
    scores = score_atoms(stored, "toy@atoms", ["cknna-k5", "gfre"], preprocess=())
    assert set(scores) == {"all", "C", "H", "N", "O"}
    assert scores["all"].n == stored[0].values.shape[0]
    for element in ("C", "H", "N", "O"):
        view = scores[element]
        assert view.n == (atom_keys(stored[0].ids)["element"] == element).sum()
        assert view.matrices["gfre"].shape == (2, 2)
    distortion = per_structure_distortion(stored[0], stored[1], k=8)
    assert len(distortion) == 40 and (distortion > 0).all()


def test_adapter_without_per_atom_features_is_refused(tmp_path):
    adapter = PairDistanceAdapter(toy_card())
    with pytest.raises(AdapterError, match="per-atom features"):
        embed_dataset(adapter, toy_dataset(6, xe=()), EmbeddingStore(tmp_path), layers="last",
                      atoms=AtomSampling())


@pytest.mark.slow
def test_two_mlips_at_atom_level(tmp_path):
    from matteralign.data.registry import load_dataset
    from matteralign.models.registry import create_adapter

    data = load_dataset("crystals-perturbed", n=10, seed=0)
    store = EmbeddingStore(tmp_path)
    sampling = AtomSampling(per_structure=4, seed=1)
    stored = []
    for model in ("chgnet-0.3.0", "sevennet-0"):
        adapter = create_adapter(model)
        summary = embed_dataset(adapter, data, store, layers="last", shard_size=4,
                                atoms=sampling)
        assert summary.computed == 3 and summary.n_failed == 0
        again = embed_dataset(adapter, data, store, layers="last", shard_size=4, atoms=sampling)
        assert again.skipped == 3
        stored.append(store.load_finished(f"{data.name}@atoms", model, adapter.card.last_layer))
    assert stored[0].ids == stored[1].ids and len(stored[0].ids) == 40
    scores = score_atoms(stored, "perturbed@atoms", ["cknna-k5", "gfre", "lfre-k8"])
    assert scores["all"].matrices["gfre"].shape == (2, 2)
    assert len(scores) > 2  # per-element views


@pytest.mark.slow
def test_study_at_atom_level_runs_resumes_and_reports(tmp_path):
    from matteralign.config import StudyConfig
    from matteralign.run.study import embed_study, run_study

    config = StudyConfig.model_validate({
        "name": "atoms", "datasets": [{"name": "crystals-perturbed", "n": 8}],
        "models": [{"id": "chgnet-0.3.0"}, {"id": "sevennet-0"}], "layers": "last",
        "level": "atoms", "atoms": {"per_structure": 6, "seed": 1},
        "metrics": ["cknna-k5", "gfre"], "shard_size": 4, "device": "cpu"})
    out = tmp_path / "out"
    run_study(config, out)
    folders = {p.name for p in (out / "alignment").iterdir()}
    assert "crystals-perturbed@atoms" in folders  # all atoms
    assert {f for f in folders if f.startswith("crystals-perturbed@atoms[")}  # element views
    assert "crystals-perturbed@atoms" in (out / "report.html").read_text()
    shards = sorted((out / "store" / "embeddings").rglob("shard-*.safetensors"))
    before = [p.stat().st_mtime_ns for p in shards]
    embed_study(config, out)
    assert [p.stat().st_mtime_ns for p in shards] == before  # resumed: nothing recomputed
