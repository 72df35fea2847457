"""fairchem adapter checks that run inside the ``fairchem`` model environment.

Not collected by the main suite: ``tests/models/test_fairchem.py`` runs this file with the
environment's Python, passing the folder of the tiny checkpoints in ``MATTERALIGN_TINY_FAIRCHEM``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
from matteralign.models.card import LayerInfo
from matteralign.models.fairchem import FairChemAdapter
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

warnings.filterwarnings("ignore", category=UserWarning)
torch.set_num_threads(1)  # the tiny models run 2-3x faster on one thread of a shared CPU
TWO_BLOCKS = [LayerInfo(name="block_0"), LayerInfo(name="block_1"),
              LayerInfo(name="node_embedding")]


def checkpoint(kind: str) -> str:
    return str(Path(os.environ["MATTERALIGN_TINY_FAIRCHEM"]) / f"{kind}.pt")


def tiny(kind: str, **options) -> FairChemAdapter:
    """The tiny ``kind`` ("uma" or "esen") under a copy of UMA-S's omat card with two blocks."""
    card = get_card("uma-s-1p1-omat").model_copy(update={"layers": TWO_BLOCKS})
    if kind == "esen":  # one task only: the adapter takes it without the option
        card = card.model_copy(update={"options": {}})
    return FairChemAdapter(card, checkpoint=checkpoint(kind), **options)


@pytest.fixture
def samples(crystals) -> list[Sample]:
    """Si diamond, NaCl and water: the crystals of tests/models/conftest.py."""
    return crystals


@pytest.mark.parametrize(("kind", "task"), [("uma", "omat"), ("esen", None)])
def test_tiny_models_pass_validate_adapter(kind, task, samples):
    adapter = tiny(kind, **({"task": task} if task else {}))
    assert validate_adapter(adapter, samples, rtol=1e-4, atol=1e-5).ok
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    assert {layer: v.shape for layer, v in out.pooled.items()} == {
        "block_0": (3, 16), "block_1": (3, 16), "node_embedding": (3, 16)}
    assert adapter.provenance() == {"task": task or "omat"}


@pytest.mark.parametrize("task", ["omat", "omol"])
def test_energy_and_embedding_equal_fairchems_own_calculator(task, samples):
    """The reference: fairchem's FAIRChemCalculator (forces on), one structure at a time, and the
    ``embeddings`` output of its energy head for the last layer."""
    from fairchem.core import FAIRChemCalculator
    from fairchem.core.units.mlip_unit import load_predict_unit

    adapter = tiny("uma", task=task)
    adapter.load("cpu", "float64")
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean",
                        per_item=True)
    unit = load_predict_unit(checkpoint("uma"), inference_settings="batch", device="cpu")
    calculator = FAIRChemCalculator(unit, task_name=task)
    for index, sample in enumerate(samples):
        atoms = sample.atoms.copy()
        atoms.calc = calculator
        np.testing.assert_allclose(out.energy[index], atoms.get_potential_energy(), rtol=1e-5,
                                   atol=1e-6)
        head = unit.model.module(calculator.a2g(atoms))  # float32, the head's own outputs
        reference = head[f"{task}_embeddings"]["embeddings"].detach().numpy()[:, 0, :]
        np.testing.assert_allclose(out.per_item["node_embedding"][index], reference,
                                   rtol=1e-4, atol=1e-5)


def test_the_task_head_changes_the_embedding_and_all_coefficients_on_request(samples):
    prepared = {}
    for task in ("omat", "omol"):
        adapter = tiny("uma", task=task)
        adapter.load()
        prepared[task] = adapter.embed([adapter.prepare(s) for s in samples],
                                       ["block_1"], "mean").pooled["block_1"]
    assert not np.allclose(prepared["omat"], prepared["omol"])
    full = tiny("uma", task="omat", invariants_only=False)
    full.load()
    out = full.embed([full.prepare(s) for s in samples], ["block_1"], "mean")
    assert out.pooled["block_1"].shape == (3, 9 * 16)  # (lmax + 1)^2 coefficients x 16 channels
    np.testing.assert_allclose(out.pooled["block_1"][:, :16], prepared["omat"], rtol=1e-5,
                               atol=1e-6)


def test_checkpoint_hash_refused_elements_and_bad_options(samples):
    adapter = tiny("uma", task="omat")
    adapter.load()
    path = Path(checkpoint("uma"))
    assert adapter.checkpoint_path == path
    assert adapter.checkpoint_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    fermium = Sample("fm2", atoms=Atoms("Fm2", positions=[[0, 0, 0], [0, 0, 2.5]]))
    with pytest.raises(SampleError, match="fm2.*Fm not covered"):
        adapter.prepare(fermium)
    with pytest.raises(AdapterError, match=r"task must be one of \['omat', 'omol'\]"):
        tiny("uma", task="oc20").load()
    with pytest.raises(AdapterError, match="card lists"):
        FairChemAdapter(get_card("uma-s-1p1-omat"), checkpoint=checkpoint("uma")).load()


def test_published_name_without_internet_names_the_local_option(monkeypatch):
    from fairchem.core.calculate import pretrained_mlip
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("outgoing traffic has been disabled")

    monkeypatch.setattr(pretrained_mlip, "hf_hub_download", offline)
    with pytest.raises(ModelNotFoundError, match="uma-m-1p1-omol.*checkpoint=<path"):
        create_adapter("uma-m-1p1-omol").load()
    with pytest.raises(AdapterError, match="neither a file nor one of fairchem's names"):
        create_adapter("uma-s-1p1-omat", checkpoint="uma-xl-9p9").load()
