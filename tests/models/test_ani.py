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
