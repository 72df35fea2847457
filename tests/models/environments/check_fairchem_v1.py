"""fairchem 1 adapter checks that run inside the ``fairchem-v1`` model environment.

Not collected by the main suite: ``tests/models/test_fairchem.py`` runs this file with the
environment's Python, passing the folder of the tiny checkpoints in
``MATTERALIGN_TINY_FAIRCHEM_V1``.
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
from matteralign.models.fairchem import FairChemV1Adapter
from matteralign.models.registry import create_adapter, get_card

warnings.filterwarnings("ignore", category=UserWarning)
torch.set_num_threads(1)  # the tiny models run 2-3x faster on one thread of a shared CPU
TWO_BLOCKS = [LayerInfo(name="block_0"), LayerInfo(name="block_1"),
              LayerInfo(name="node_embedding")]
CARDS = {"esen": "esen-30m-oam", "eqv2": "eqv2-31m-omat"}


def checkpoint(kind: str) -> str:
    return str(Path(os.environ["MATTERALIGN_TINY_FAIRCHEM_V1"]) / f"{kind}.pt")


def tiny(kind: str, **options) -> FairChemV1Adapter:
    """The tiny ``kind`` ("esen" or "eqv2") under a copy of its family's card with two blocks."""
    card = get_card(CARDS[kind]).model_copy(update={"layers": TWO_BLOCKS})
    return FairChemV1Adapter(card, checkpoint=checkpoint(kind), **options)


@pytest.fixture
def samples(crystals) -> list[Sample]:
    """Si diamond, NaCl and water: the crystals of tests/models/conftest.py."""
    return crystals


@pytest.mark.parametrize("kind", ["esen", "eqv2"])
def test_tiny_models_pass_validate_adapter(kind, samples):
    from matteralign.models.validate import validate_adapter

    adapter = tiny(kind)
    assert validate_adapter(adapter, samples, rtol=1e-4, atol=1e-5).ok
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    assert {layer: v.shape for layer, v in out.pooled.items()} == {
        "block_0": (3, 16), "block_1": (3, 16), "node_embedding": (3, 16)}


@pytest.mark.parametrize("kind", ["esen", "eqv2"])
def test_energy_and_embedding_equal_fairchems_own_calculator(kind, samples):
    """The reference: fairchem 1's OCPCalculator (forces on), one structure at a time, the
    molecule without a box, and its backbone's node embedding for the last layer."""
    from fairchem.core.common.data_parallel import data_list_collater
    from fairchem.core.common.relaxation.ase_utils import OCPCalculator

    adapter = tiny(kind)
    adapter.load()
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean",
                        per_item=True)
    calculator = OCPCalculator(checkpoint_path=checkpoint(kind), cpu=True)
    model = calculator.trainer._unwrapped_model
    for index, sample in enumerate(samples):
        atoms = sample.atoms.copy()
        atoms.calc = calculator
        np.testing.assert_allclose(out.energy[index], atoms.get_potential_energy(), rtol=1e-5,
                                   atol=1e-5)
        with torch.no_grad():
            batch = data_list_collater([calculator.a2g.convert(sample.atoms)])
            embedding = model.backbone(batch)["node_embedding"]
        reference = getattr(embedding, "embedding", embedding)[:, 0, :].detach().numpy()
        np.testing.assert_allclose(out.per_item["node_embedding"][index], reference,
                                   rtol=1e-4, atol=1e-5)
    assert not np.allclose(out.pooled["block_1"], out.pooled["node_embedding"])  # the final norm


def test_checkpoint_hash_refused_structures_and_names():
    adapter = tiny("eqv2")  # max_num_elements 96: curium (96) and heavier are refused
    adapter.load()
    path = Path(checkpoint("eqv2"))
    assert adapter.checkpoint_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    curium = Sample("cm2", atoms=Atoms("Cm2", positions=[[0, 0, 0], [0, 0, 2.8]]))
    with pytest.raises(SampleError, match="cm2.*Cm not covered"):
        adapter.prepare(curium)
    slab = Atoms("Si2", positions=[[0, 0, 0], [1.4, 1.4, 1.4]], cell=[5, 5, 20],
                 pbc=[True, True, False])
    with pytest.raises(SampleError, match="slab.*all three axes or none"):
        adapter.prepare(Sample("slab", atoms=slab))
    with pytest.raises(AdapterError, match="card lists"):
        FairChemV1Adapter(get_card("eqv2-31m-omat"), checkpoint=checkpoint("eqv2")).load()
    with pytest.raises(AdapterError, match="neither a file nor one of fairchem 1's names"):
        create_adapter("esen-30m-mp", checkpoint="eSEN-9B").load()


def test_published_name_without_internet_names_the_local_option(monkeypatch):
    from fairchem.core.models import model_registry
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("outgoing traffic has been disabled")

    monkeypatch.setattr(model_registry, "hf_hub_download", offline)
    with pytest.raises(ModelNotFoundError, match="eqv2-31m-oam.*checkpoint=<path"):
        create_adapter("eqv2-31m-oam").load()
