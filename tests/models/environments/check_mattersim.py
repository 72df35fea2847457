"""MatterSim adapter checks that run inside the ``mattersim`` model environment.

Not collected by the main suite: ``tests/models/test_mattersim.py`` runs this file with the
environment's Python, passing the tiny checkpoint in ``MATTERALIGN_TINY_MATTERSIM``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from matteralign.data.sample import Sample
from matteralign.errors import ModelNotFoundError
from matteralign.models.card import LayerInfo
from matteralign.models.mattersim import MatterSimAdapter
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

warnings.filterwarnings("ignore", category=UserWarning)
TWO_BLOCKS = [LayerInfo(name="interaction_0"), LayerInfo(name="interaction_1")]


def tiny() -> MatterSimAdapter:
    card = get_card("mattersim-v1-1m").model_copy(update={"layers": TWO_BLOCKS})
    return MatterSimAdapter(card, checkpoint=os.environ["MATTERALIGN_TINY_MATTERSIM"])


@pytest.fixture
def samples(crystals) -> list[Sample]:
    """Si diamond, NaCl and water: the crystals of tests/models/conftest.py."""
    return crystals


def test_tiny_mattersim_passes_validate_adapter(samples):
    adapter = tiny()
    assert validate_adapter(adapter, samples, rtol=1e-4, atol=1e-4).ok
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    assert {layer: v.shape for layer, v in out.pooled.items()} == {
        "interaction_0": (3, 16), "interaction_1": (3, 16)}


def test_energy_equals_mattersims_own_batched_prediction(samples):
    """The reference: mattersim's Potential.predict_properties over its own dataloader."""
    from mattersim.datasets.utils.build import build_dataloader
    from mattersim.forcefield.potential import Potential

    adapter = tiny()
    adapter.load()
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean")
    potential = Potential.from_checkpoint(load_path=os.environ["MATTERALIGN_TINY_MATTERSIM"],
                                          device="cpu", load_training_state=False)
    loader = build_dataloader([s.atoms for s in samples], only_inference=True, batch_size=3)
    energies, _, _ = potential.predict_properties(loader, include_forces=False,
                                                  include_stresses=False)
    np.testing.assert_allclose(out.energy, energies, rtol=1e-5, atol=1e-5)


def test_checkpoint_hash_and_offline_error(monkeypatch, tmp_path):
    adapter = tiny()
    adapter.load()
    path = Path(os.environ["MATTERALIGN_TINY_MATTERSIM"])
    assert adapter.checkpoint_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setenv("HOME", str(tmp_path))  # nothing downloaded yet

    import mattersim.forcefield.potential as potential

    def offline(*args, **kwargs):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(potential, "download_checkpoint", offline)
    with pytest.raises(ModelNotFoundError, match="mattersim-v1-5m.*checkpoint=<path"):
        create_adapter("mattersim-v1-5m").load()
