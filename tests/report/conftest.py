"""A synthetic study on disk: a store of five models on an in- and an out-of-distribution set.

Known structure: alpha-large is a rotation of a shared latent, alpha-small a noisy copy, the beta
models a nonlinear view, random-noise is noise; energies degrade with the noise of each model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from matteralign.config import StudyConfig
from matteralign.data.sample import Dataset, DatasetCard, Label, Sample
from matteralign.store.embedding_store import EmbeddingStore, ShardRecord

N = 120
MODELS = ("alpha-large", "alpha-small", "beta-1", "beta-2", "random-noise")
DATASETS = {"toy-id": False, "toy-ood": True}
NOISE = {"alpha-large": 0.0, "alpha-small": 0.3, "beta-1": 0.6, "beta-2": 1.0}


def _structures(dataset: str) -> tuple[list[str], list[Atoms], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(len(dataset))
    ids, atoms = [], []
    for i in range(N):
        n_h, n_o = int(rng.integers(1, 5)), int(rng.integers(1, 3))
        atoms.append(Atoms("H" * n_h + "O" * n_o, positions=rng.normal(size=(n_h + n_o, 3))))
        ids.append(f"{dataset}-{i:04d}")
    latent = rng.normal(size=(N, 6))
    counts = np.array([[a.get_chemical_symbols().count(s) for s in "HO"] for a in atoms], float)
    return ids, atoms, latent, counts


def study_energy(dataset: str) -> np.ndarray:
    """Reference energies: a composition term plus a latent-dependent residual, eV."""
    _, _, latent, counts = _structures(dataset)
    return counts @ np.array([-13.6, -430.0]) + latent[:, 0] + 0.5 * latent[:, 1]


def write_store(root: Path) -> EmbeddingStore:
    store = EmbeddingStore(root / "store")
    rng = np.random.default_rng(7)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    mixing = rng.normal(size=(6, 8))
    for dataset in DATASETS:
        store.write_samples(dataset, toy_dataset(dataset).samples)
        ids, _, latent, counts = _structures(dataset)
        residual = latent[:, 0] + 0.5 * latent[:, 1]
        for model in MODELS:
            if model == "alpha-large":
                last = latent @ rotation
            elif model == "alpha-small":
                last = latent + 0.3 * rng.normal(size=latent.shape)
            elif model.startswith("beta"):
                last = np.tanh(latent @ mixing) + NOISE[model] * rng.normal(size=(N, 8))
            else:
                last = rng.normal(size=(N, 5))
            first = np.hstack([last, rng.normal(size=(N, 2))])
            energy = None
            if model in NOISE:
                shift = counts @ np.array([-13.0 - NOISE[model], -431.0]) + 3.0
                energy = shift + residual + NOISE[model] * rng.normal(size=N)
            record = ShardRecord(ids=ids, layers={"h1": first, "h2": last}, energy=energy,
                                 failures=[(f"{dataset}-bad", "element Xe not covered")]
                                 if model == "beta-2" else [],
                                 config_hash="test", provenance={"layers": ["h1", "h2"]})
            store.write_shard(dataset, model, 0, record)
            store.mark_complete(dataset, model, 1)
    store.write_manifest()
    return store


def toy_dataset(name: str, n=None, seed=0, data_root=None) -> Dataset:
    ids, atoms, _, _ = _structures(name)
    energy = study_energy(name)
    card = DatasetCard(name=name, version="1", domain="molecules", description="toy",
                       provenance="synthetic", license="CC0",
                       labels=[Label(name="energy", unit="eV")],
                       out_of_distribution=DATASETS[name])
    return Dataset(card, [Sample(id=i, atoms=a, labels={"energy": float(e)})
                          for i, a, e in zip(ids, atoms, energy, strict=True)])


def toy_config() -> StudyConfig:
    return StudyConfig(name="toy", datasets=[{"name": d} for d in DATASETS],
                       models=[{"id": m} for m in MODELS], metrics=["cknna-k10", "dcor", "ii-k1"],
                       preprocess=["l2"])


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory) -> tuple[StudyConfig, Path]:
    """(config, out) of the synthetic study, its store written under out/store."""
    out = tmp_path_factory.mktemp("toy-study")
    write_store(out)
    return toy_config(), out


@pytest.fixture(scope="module")
def patched_datasets():
    """Route dataset look-ups of the analyses to the synthetic sets."""
    mp = pytest.MonkeyPatch()
    import matteralign.analysis.study as study
    import matteralign.data.registry as registry

    mp.setattr(registry, "load_dataset", toy_dataset)
    mp.setattr(study, "_is_ood", lambda name: DATASETS.get(name, False))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def toy_report(tmp_path_factory):
    """(config, out, analysis, report path) of the synthetic study, analysed and reported once."""
    from matteralign.analysis.study import AnalysisOptions, analyse_study
    from matteralign.report import build_report

    out = tmp_path_factory.mktemp("toy-report")
    write_store(out)
    config = toy_config()
    mp = pytest.MonkeyPatch()
    import matteralign.analysis.study as study
    import matteralign.data.registry as registry

    mp.setattr(registry, "load_dataset", toy_dataset)
    mp.setattr(study, "_is_ood", lambda name: DATASETS.get(name, False))
    try:
        options = AnalysisOptions(n_permutations=20, n_bootstrap=10, ks=(2, 10, 50, 2500),
                                  n_calibration=200, n_calibration_rescored=100)
        result = analyse_study(config, out, options)
        path = build_report(result, config, out, out)
    finally:
        mp.undo()
    return config, out, result, path
