"""Tests of the Chemprop D-MPNN adapter on ADMET-AI's bundled regression checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("chemprop")
pytest.importorskip("admet_ai")

from matteralign.data.sample import Dataset, DatasetCard, Sample  # noqa: E402
from matteralign.errors import AdapterError, SampleError  # noqa: E402
from matteralign.models.registry import create_adapter  # noqa: E402
from matteralign.models.validate import validate_adapter  # noqa: E402

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
LAYERS = ["message_passing", "fingerprint", "ffn_1"]


@pytest.fixture(scope="module")
def adapter():
    model = create_adapter("chemprop-admet")
    model.load("cpu", "float32")
    return model


def _samples(smiles: list[str]) -> list[Sample]:
    return [Sample(id=f"mol{i}", smiles=s) for i, s in enumerate(smiles)]


@pytest.mark.parametrize("pooling", ["mean", "per_element_mean"])
def test_validate_adapter(adapter, pooling: str) -> None:
    report = validate_adapter(adapter, _samples(SMILES), pooling=pooling, check_invariance=False)
    assert report.ok
    assert "batched==single[message_passing]" in report.passed


def test_layers_and_parameters(adapter) -> None:
    assert adapter.layer_names == LAYERS
    assert adapter.card.last_layer == "fingerprint"
    assert sum(p.numel() for p in adapter._model.parameters()) == adapter.card.parameters
    assert adapter._model.message_passing.depth == 3


def test_matches_chemprop_own_pipeline(adapter) -> None:
    """Fingerprint and FFN encoding equal what Chemprop computes through its own data loader."""
    from chemprop.data import MoleculeDatapoint, MoleculeDataset, build_dataloader
    from rdkit import Chem

    items = [adapter.prepare(s) for s in _samples(SMILES)]
    out = adapter.embed(items, LAYERS, "mean")
    dataset = MoleculeDataset([MoleculeDatapoint(mol=Chem.MolFromSmiles(s)) for s in SMILES])
    batch = next(iter(build_dataloader(dataset, batch_size=8, shuffle=False, num_workers=0)))
    model = adapter._model
    with torch.inference_mode():
        fingerprint = model.fingerprint(batch.bmg, batch.V_d, batch.X_d).numpy()
        encoding = model.encoding(batch.bmg, batch.V_d, batch.X_d, i=1).numpy()
    np.testing.assert_allclose(out.pooled["fingerprint"], fingerprint, atol=1e-5)
    np.testing.assert_allclose(out.pooled["ffn_1"], encoding, atol=1e-5)
    assert out.pooled["fingerprint"].shape == (3, 300)


def test_fingerprint_is_atom_sum_over_100(adapter) -> None:
    """ADMET-AI aggregates with NormAggregation: Σ_v h_v / 100, so sum pooling / 100 == it."""
    items = [adapter.prepare(s) for s in _samples(SMILES)]
    summed = adapter.embed(items, LAYERS, "sum", per_item=True)
    mean = adapter.embed(items, ["message_passing"], "mean").pooled["message_passing"]
    np.testing.assert_allclose(summed.pooled["message_passing"] / 100,
                               summed.pooled["fingerprint"], atol=1e-6)
    atoms = summed.per_item["message_passing"]
    assert [a.shape for a in atoms] == [(3, 300), (7, 300), (11, 300)]
    assert [adapter.cost(item) for item in items] == [3, 7, 11]
    np.testing.assert_allclose(mean, np.stack([a.mean(0) for a in atoms]), atol=1e-6)
    assert [a.shape for a in summed.per_item["ffn_1"]] == [(1, 300)] * 3


def test_prepare_canonicalises(adapter) -> None:
    assert adapter.prepare(Sample(id="e", smiles="OCC")).smiles == "CCO"
    kekule = adapter.prepare(Sample(id="k", smiles="C1=CC=CC=C1O"))
    aromatic = adapter.prepare(Sample(id="a", smiles="c1ccccc1O"))
    out = adapter.embed([kekule, aromatic], ["fingerprint"], "mean").pooled["fingerprint"]
    np.testing.assert_array_equal(out[0], out[1])


def test_errors(adapter) -> None:
    with pytest.raises(SampleError, match="'bad'.*C1CC"):
        adapter.prepare(Sample(id="bad", smiles="C1CC"))
    item = adapter.prepare(Sample(id="e", smiles="CCO"))
    with pytest.raises(ValueError, match="pools atoms"):
        adapter.embed([item], LAYERS, "cls")
    with pytest.raises(ValueError, match="no layer"):
        adapter.embed([item], ["ffn_2"], "mean")
    unloaded = create_adapter("chemprop-admet")
    with pytest.raises(AdapterError, match="not loaded"):
        unloaded.prepare(item)


def test_runner_records_invalid_smiles_and_goes_on(adapter, tmp_path) -> None:
    from matteralign.run.embed import embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    card = DatasetCard(name="smiles-toy", version="1", domain="molecules", description="toy",
                       provenance="test", license="CC0")
    samples = _samples(SMILES) + [Sample(id="broken", smiles="C1CC")]
    store = EmbeddingStore(tmp_path)
    summary = embed_dataset(adapter, Dataset(card, samples), store, layers="last",
                            batch_budget=16)
    assert (summary.n_embedded, summary.n_failed) == (3, 1)
    stored = store.load("smiles-toy", "chemprop-admet", "fingerprint")
    assert stored.ids == ["mol0", "mol1", "mol2"]
    assert stored.failures[0][0] == "broken" and "C1CC" in stored.failures[0][1]
    direct = adapter.embed([adapter.prepare(s) for s in _samples(SMILES)], ["fingerprint"],
                           "mean").pooled["fingerprint"]
    np.testing.assert_allclose(stored.values, direct, atol=1e-6)
