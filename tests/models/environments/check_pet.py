"""PET adapter checks that run inside the ``pet`` model environment.

Not collected by the main suite: ``tests/models/test_pet.py`` runs this file with the
environment's Python, passing the folder of the tiny model (``tiny_pet.py``) in
``MATTERALIGN_TINY_PET``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from matteralign.data.sample import Sample
from matteralign.errors import ModelNotFoundError, SampleError
from matteralign.models.pet import PETAdapter
from matteralign.models.registry import create_adapter
from matteralign.models.validate import validate_adapter

warnings.filterwarnings("ignore", category=UserWarning)
FOLDER = Path(os.environ["MATTERALIGN_TINY_PET"])


@pytest.fixture(scope="module")
def adapter() -> PETAdapter:
    """The tiny PET's metatrain checkpoint through upet's loader, under the PET-MAD card."""
    adapter = create_adapter("pet-mad-s-v1.0.2", checkpoint=str(FOLDER / "pet.ckpt"))
    adapter.load()
    return adapter


@pytest.fixture
def samples(crystals) -> list[Sample]:
    """Si diamond, NaCl and water: the crystals of tests/models/conftest.py."""
    return crystals


def test_tiny_pet_passes_validate_adapter_except_rotation(adapter, samples):
    """PET learns rotational invariance from data: random weights keep only the exact ones."""
    report = validate_adapter(adapter, samples, raise_on_failure=False)
    assert report.failed and all(f.startswith("rotation-invariance") for f in report.failed)
    for layer in adapter.layer_names:
        for check in (f"translation-invariance[{layer}]", f"permutation-invariance[{layer}]",
                      f"batched==single[{layer}]", "determinism", "energy"):
            assert check in report.passed
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    # feedforward featurizer: d_node (16) + d_pet (8); last layer: 2 d_head (8 + 8)
    assert {layer: v.shape for layer, v in out.pooled.items()} == {
        "features": (3, 24), "last_layer_features": (3, 16)}


def test_features_and_energy_equal_metatrain_and_ase(adapter, samples):
    """References: metatrain's eager PET (its own neighbour lists, one structure at a time)
    for the per-atom features, metatomic's ASE calculator for the energies."""
    import torch
    from metatomic.torch import ModelOutput, systems_to_torch
    from metatomic_ase import MetatomicCalculator
    from metatrain.utils.io import load_model
    from metatrain.utils.neighbor_lists import get_system_with_neighbor_lists

    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean",
                        per_item=True)
    eager = load_model(FOLDER / "pet.ckpt").eval()
    names = {"features": "feature", "last_layer_features": "mtt::aux::energy_last_layer_features"}
    requested = {name: ModelOutput(sample_kind="atom") for name in names.values()}
    calculator = MetatomicCalculator(str(FOLDER / "pet.pt"))
    for index, sample in enumerate(samples):
        system = systems_to_torch(sample.atoms, dtype=torch.float32)
        system = get_system_with_neighbor_lists(system, eager.requested_neighbor_lists())
        with torch.no_grad():
            reference = eager([system], requested)
        for layer, name in names.items():
            np.testing.assert_allclose(out.per_item[layer][index],
                                       reference[name].block().values.numpy(),
                                       rtol=1e-5, atol=1e-6)
        atoms = sample.atoms.copy()
        atoms.calc = calculator
        np.testing.assert_allclose(out.energy[index], atoms.get_potential_energy(), rtol=1e-5)


def test_exported_model_gives_the_same_embeddings(adapter, samples):
    exported = create_adapter("pet-mad-s-v1.0.2", checkpoint=str(FOLDER / "pet.pt"))
    batch = [adapter.prepare(s) for s in samples]
    ours = adapter.embed(batch, adapter.layer_names, "mean")
    exported.load()
    theirs = exported.embed([exported.prepare(s) for s in samples], adapter.layer_names, "mean")
    for layer in adapter.layer_names:
        np.testing.assert_array_equal(ours.pooled[layer], theirs.pooled[layer])


def test_checkpoint_hash_and_uncovered_elements(adapter):
    checkpoint = FOLDER / "pet.ckpt"
    assert adapter.checkpoint_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert adapter.checkpoint_path == checkpoint
    with pytest.raises(SampleError, match="element.*Po.*not covered by pet-mad-s-v1.0.2"):
        adapter.prepare(Sample("polonium", atoms=bulk("Po", "sc", a=3.35)))


@pytest.fixture
def offline(monkeypatch, tmp_path) -> Path:
    """No network (upet's repository listing fails) and an empty Hugging Face cache, returned."""
    import huggingface_hub

    def unreachable(*args, **kwargs):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", unreachable)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    return tmp_path


def test_published_name_without_network_names_the_model(offline):
    with pytest.raises(ModelNotFoundError, match="pet-omat-s-v1.0.0.*checkpoint=<path"):
        create_adapter("pet-omat-s-v1.0.0").load()


def test_published_name_already_downloaded_loads_without_network(offline, samples, adapter):
    """The Hugging Face cache layout of lab-cosmo/upet, holding the tiny PET under its name."""
    repository = offline / "models--lab-cosmo--upet"
    (repository / "refs").mkdir(parents=True)
    (repository / "refs" / "main").write_text("0" * 40)
    cached = repository / "snapshots" / ("0" * 40) / "models" / "pet-mad-s-v1.0.2.ckpt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes((FOLDER / "pet.ckpt").read_bytes())
    published = create_adapter("pet-mad-s-v1.0.2")
    published.load()
    assert published.checkpoint_path == cached
    assert published.checkpoint_sha256 == adapter.checkpoint_sha256
    batch = [published.prepare(s) for s in samples]
    np.testing.assert_array_equal(published.embed(batch, ["features"], "mean").pooled["features"],
                                  adapter.embed(batch, ["features"], "mean").pooled["features"])
