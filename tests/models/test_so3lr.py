"""Tests of the SO3LR adapter on small molecules (weights ship in the so3krates-torch wheel)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("so3krates_torch")
from ase.build import molecule  # noqa: E402

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import SampleError  # noqa: E402
from matteralign.models.registry import create_adapter  # noqa: E402
from matteralign.models.validate import validate_adapter  # noqa: E402


@pytest.fixture(scope="module")
def adapter():
    model = create_adapter("so3lr")
    model.load("cpu", "float64")
    return model


def test_validate_adapter(adapter, molecules) -> None:
    report = validate_adapter(adapter, molecules(["H2O", "CH4", "C6H6"]))
    assert report.ok
    assert "rotation-invariance[transformer_3]" in report.passed


def test_shapes_and_energy(adapter, molecules) -> None:
    samples = molecules(["H2O", "CH4"])
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "mean",
                        per_item=True)
    assert {k: v.shape for k, v in out.pooled.items()} == {
        f"transformer_{i}": (2, 128) for i in (1, 2, 3)
    }
    assert [a.shape for a in out.per_item["transformer_3"]] == [(3, 128), (5, 128)]
    # Value printed by so3krates' own calculator (models.md: E(H2O) = -495.87 eV).
    np.testing.assert_allclose(out.energy[0], -495.8705, atol=1e-3)
    np.testing.assert_allclose(out.pooled["transformer_3"][0],
                               out.per_item["transformer_3"][0].mean(0), rtol=1e-10)


def test_equivariant_option_widens_layers(molecules) -> None:
    model = create_adapter("so3lr", invariants_only=False)
    model.load("cpu", "float32")
    sample = molecules(["H2O"])[0]
    out = model.embed([model.prepare(sample)], ["transformer_3"], "sum")
    assert out.pooled["transformer_3"].shape == (1, 152)
    assert out.pooled["transformer_3"].dtype == np.float32


def test_parameter_count_matches_card(adapter) -> None:
    assert sum(p.numel() for p in adapter._model.parameters()) == adapter.card.parameters


def test_uncovered_element_fails_naming_it(adapter) -> None:
    with pytest.raises(SampleError, match="Si"):
        adapter.prepare(Sample(id="silane", atoms=molecule("SiH4")))
