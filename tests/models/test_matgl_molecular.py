"""Tests of the matgl ANI-1x-subset adapters (M3GNet, TensorNet, SO3Net) on small molecules."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matgl")
import torch  # noqa: E402
from ase.build import molecule  # noqa: E402

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import ModelNotFoundError, SampleError  # noqa: E402
from matteralign.models.matgl_molecular import tensor_invariants  # noqa: E402
from matteralign.models.registry import create_adapter  # noqa: E402
from matteralign.models.validate import validate_adapter  # noqa: E402

MODELS = ("m3gnet-ani1x-subset", "tensornet-ani1x-subset", "so3net-ani1x-subset")
WIDTHS = {
    "m3gnet-ani1x-subset": {"gc_1": 64, "gc_2": 64, "gc_3": 64},
    "tensornet-ani1x-subset": {"gc_1": 192, "gc_2": 192, "atom_scalars": 64},
    "so3net-ani1x-subset": {"gc_1": 64, "gc_2": 64, "gc_3": 64},
}


def _samples(names: list[str]) -> list[Sample]:
    return [Sample(id=name, atoms=molecule(name)) for name in names]


@pytest.fixture(scope="module")
def adapters(shared_data):
    loaded = {}
    for model_id in MODELS:
        adapter = create_adapter(model_id, data_root=str(shared_data))
        adapter.load("cpu", "float32")
        loaded[model_id] = adapter
    return loaded


@pytest.mark.parametrize("model_id", MODELS)
def test_validate_adapter(adapters, model_id) -> None:
    adapter = adapters[model_id]
    report = validate_adapter(adapter, _samples(["H2O", "CH4", "C6H6"]))
    assert report.ok
    last = adapter.card.last_layer
    assert f"rotation-invariance[{last}]" in report.passed


@pytest.mark.parametrize("model_id", MODELS)
def test_widths_energy_and_parameters(adapters, model_id) -> None:
    adapter = adapters[model_id]
    out = adapter.embed([adapter.prepare(s) for s in _samples(["H2O", "CH4"])],
                        adapter.layer_names, "mean", per_item=True)
    assert {k: v.shape[1] for k, v in out.pooled.items()} == WIDTHS[model_id]
    assert [a.shape[0] for a in next(iter(out.per_item.values()))] == [3, 5]
    # ANI-1x reference (ωB97x/6-31G(d)) for ase's water is -76.3885 Ha = -2078.6 eV; the
    # M3GNet and TensorNet checkpoints are several eV off on water (see their cards).
    assert -2090 < out.energy[0] < -2060
    assert adapter.n_parameters == adapter.card.parameters


def test_so3net_energy_matches_ani(adapters) -> None:
    adapter = adapters["so3net-ani1x-subset"]
    out = adapter.embed([adapter.prepare(s) for s in _samples(["H2O"])], ["gc_3"], "mean")
    np.testing.assert_allclose(out.energy[0], -76.3885 * 27.211386, atol=0.05)


def test_full_equivariant_layout(shared_data) -> None:
    sample = _samples(["H2O"])[0]
    for model_id, width in (("tensornet-ani1x-subset", 576), ("so3net-ani1x-subset", 576)):
        adapter = create_adapter(model_id, data_root=str(shared_data), invariants_only=False)
        adapter.load("cpu", "float32")
        out = adapter.embed([adapter.prepare(sample)], ["gc_2"], "mean")
        assert out.pooled["gc_2"].shape == (1, width)


def test_tensor_invariants_are_rotation_invariant() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, 3, 3, dtype=torch.float64, generator=generator)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=generator))
    rotated = q @ x @ q.T
    torch.testing.assert_close(tensor_invariants(rotated), tensor_invariants(x))
    # |I|² + |A|² + |S|² = |X|² because the three parts are orthogonal.
    total = tensor_invariants(x).reshape(4, 3, 5).sum(1)
    torch.testing.assert_close(total, (x**2).sum((-2, -1)))


def test_missing_weights_say_what_to_pass(tmp_path) -> None:
    adapter = create_adapter("so3net-ani1x-subset", data_root=str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="not found"):
        adapter.load()


def test_uncovered_element_fails_naming_it(adapters) -> None:
    adapter = adapters["m3gnet-ani1x-subset"]
    with pytest.raises(SampleError, match=r"element\(s\) F not covered"):
        adapter.prepare(Sample(id="hf", atoms=molecule("HF")))
