"""Tests of the ANI-1x adapter (NeuroChem files bundled in torchani 2.2.4)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torchani")
from ase.build import molecule  # noqa: E402
from ase.units import Hartree  # noqa: E402

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import SampleError  # noqa: E402
from matteralign.models.registry import create_adapter  # noqa: E402
from matteralign.models.validate import validate_adapter  # noqa: E402


@pytest.fixture(scope="module")
def adapter():
    model = create_adapter("ani-1x")
    model.load("cpu", "float64")
    return model


def test_validate_adapter(adapter, molecules) -> None:
    report = validate_adapter(adapter, molecules(["H2O", "CH4", "C6H6"]))
    assert report.ok
    assert "permutation-invariance[hidden_3]" in report.passed


def test_energy_in_ev(adapter, molecules) -> None:
    out = adapter.embed([adapter.prepare(s) for s in molecules(["H2O"])], ["aev"], "mean")
    # torchani's own ANI-1x gives -76.3885 Ha for ase's water (models.md).
    np.testing.assert_allclose(out.energy[0] / Hartree, -76.3885, atol=2e-4)


def test_element_blocks(adapter, molecules) -> None:
    out = adapter.embed([adapter.prepare(s) for s in molecules(["H2O", "CH4"])],
                        adapter.layer_names, "sum", per_item=True)
    widths = {name: v.shape[1] for name, v in out.pooled.items()}
    assert widths == {"aev": 384, "hidden_1": 560, "hidden_2": 464, "hidden_3": 384}
    water = out.per_item["hidden_3"][0]  # atoms O, H, H
    # O atom fills only the O block (columns 288-383), H atoms only the H block (0-95).
    assert np.all(water[0, :288] == 0) and np.any(water[0, 288:] != 0)
    assert np.all(water[1:, 96:] == 0) and np.any(water[1:, :96] != 0)
    # No carbon or nitrogen in water: those blocks stay zero after pooling.
    assert np.all(out.pooled["hidden_3"][0, 96:288] == 0)


def test_parameter_count_matches_card(adapter) -> None:
    assert adapter.n_parameters == adapter.card.parameters


def test_uncovered_element_fails_naming_it(adapter) -> None:
    with pytest.raises(SampleError, match=r"element\(s\) S not covered by ani-1x"):
        adapter.prepare(Sample(id="h2s", atoms=molecule("SH2")))


def test_hidden_layers_match_member_nets_on_the_aev(adapter, molecules) -> None:
    """Hooked activations equal member 0's element nets run by hand on each atom's AEV."""
    import torch

    water = adapter.prepare(molecules(["H2O"])[0]).copy()
    boxed = water.copy()
    boxed.center(vacuum=4.0)
    boxed.pbc = True
    batch = [water, boxed, adapter.prepare(molecules(["CH4"])[0])]
    out = adapter.embed(batch, adapter.layer_names, "mean", per_item=True)
    member = list(adapter._member.values())  # nets of H, C, N, O
    starts = {"hidden_1": [0, 160, 304, 432], "hidden_3": [0, 96, 192, 288]}
    for atoms, aev, hidden_1, hidden_3 in zip(
        batch, out.per_item["aev"], out.per_item["hidden_1"], out.per_item["hidden_3"],
        strict=True,
    ):
        for row, z in enumerate(atoms.numbers):
            index = {1: 0, 6: 1, 7: 2, 8: 3}[int(z)]
            net = member[index]
            x1 = net[1](net[0](torch.as_tensor(aev[row : row + 1])))
            x3 = net[5](net[4](net[3](net[2](x1))))
            s1, s3 = starts["hidden_1"][index], starts["hidden_3"][index]
            np.testing.assert_allclose(hidden_1[row, s1 : s1 + x1.shape[1]], x1[0], rtol=1e-12)
            np.testing.assert_allclose(hidden_3[row, s3 : s3 + 96], x3[0].detach(), rtol=1e-12)
            assert np.count_nonzero(hidden_3[row]) == np.count_nonzero(x3[0].detach().numpy())
