"""Tests of the matgl ANI-1x-subset adapters (M3GNet, TensorNet, SO3Net) on small molecules."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matgl")
import torch  # noqa: E402
from ase.build import molecule  # noqa: E402

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import AdapterError, ModelNotFoundError, SampleError  # noqa: E402
from matteralign.models.matgl_models import aggregate_on_destination  # noqa: E402
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
    # ANI-1x reference (ωB97x/6-31G(d)) for ase's water is -76.3885 Ha = -2078.6 eV.
    assert -2090 < out.energy[0] < -2060
    assert adapter.n_parameters == adapter.card.parameters


@pytest.mark.parametrize("model_id", MODELS)
def test_water_energy_matches_ani(adapters, model_id) -> None:
    adapter = adapters[model_id]
    out = adapter.embed([adapter.prepare(s) for s in _samples(["H2O"])], ["gc_1"], "mean")
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


# ANI-1x (8-model ensemble, ωB97x/6-31G(d)) total energies in eV of ase.build.molecule geometries,
# computed with the ani-1x adapter in float64.
ANI1X_EV = {
    "H2O": -2078.637, "CH4": -1102.052, "C6H6": -6317.903, "NH3": -1538.231, "CH3OH": -3147.829,
    "HCN": -2541.349, "C2H6": -2171.505, "H2CO": -3114.777, "CO2": -5130.27,
    "CH3CH2OH": -4217.497, "CH3CONH2": -5691.472, "HCOOH": -5162.19,
}


# Total energies in eV from matgl 2.1.2 with its DGL backend (the last release with the message
# direction these checkpoints were trained with), float32, ase.build.molecule geometries.
MATGL_2_1_2_EV = {
    "m3gnet-ani1x-subset": {"CH4": -1102.0474, "C6H6": -6317.9175, "CH3CH2OH": -4217.4893},
    "tensornet-ani1x-subset": {"CH4": -1102.0601, "C6H6": -6317.8765, "CH3CH2OH": -4217.5122},
}


@pytest.mark.parametrize("model_id", sorted(MATGL_2_1_2_EV))
def test_corrected_energy_equals_matgl_2_1_2(adapters, model_id) -> None:
    adapter = adapters[model_id]
    names = list(MATGL_2_1_2_EV[model_id])
    out = adapter.embed([adapter.prepare(s) for s in _samples(names)], ["gc_1"], "mean")
    np.testing.assert_allclose(out.energy, list(MATGL_2_1_2_EV[model_id].values()), atol=2e-3)


@pytest.mark.parametrize("model_id", MODELS)
def test_energy_equals_matgl_own_calculator(adapters, model_id) -> None:
    """The adapter adds nothing to matgl (once corrected): same energy as matgl's ASE calculator."""
    import matgl
    from matgl.ext.ase import PESCalculator

    adapter = adapters[model_id]
    names = ["CH4", "C6H6"]
    out = adapter.embed([adapter.prepare(s) for s in _samples(names)], ["gc_1"], "mean")
    potential = matgl.load_model(str(adapter.weights_path()))
    if adapter.options.get("aggregate_on_destination", False):
        aggregate_on_destination(potential)
    calculator = PESCalculator(potential)
    for name, energy in zip(names, out.energy, strict=True):
        atoms = molecule(name)
        atoms.calc = calculator
        np.testing.assert_allclose(energy, atoms.get_potential_energy(), atol=1e-3)


def test_uncorrected_checkpoints_are_far_from_ani(shared_data) -> None:
    """matgl 4.1.2 as shipped sums messages onto the other atom: water is eV off."""
    for model_id in ("m3gnet-ani1x-subset", "tensornet-ani1x-subset"):
        adapter = create_adapter(model_id, data_root=str(shared_data),
                                 aggregate_on_destination=False)
        adapter.load("cpu", "float32")
        out = adapter.embed([adapter.prepare(s) for s in _samples(["H2O"])], ["gc_1"], "mean")
        assert abs(out.energy[0] - ANI1X_EV["H2O"]) > 1.0, model_id


def test_aggregate_on_destination_refuses_so3net(adapters) -> None:
    with pytest.raises(AdapterError, match="not SO3Net"):
        aggregate_on_destination(adapters["so3net-ani1x-subset"]._potential)


def test_which_checkpoints_reproduce_ani1x(adapters) -> None:
    """All three checkpoints reproduce ANI-1x (M3GNet and TensorNet once corrected).

    The energy a matgl potential predicts is ``data_std * out + sum(element_refs)``. Fitting
    ANI-1x − sum(element_refs) as ``scale * out + per-element offsets`` over 12 molecules must
    recover the stored scale (3.70) with a small residual, and the energies themselves must be
    within 0.1 eV of ANI-1x (matgl 2.1.2 gives MAE 0.014 / 0.015 / 0.018 eV, max 0.09 eV).
    Without ``aggregate_on_destination`` the M3GNet and TensorNet fits give scale ~0 and
    0.54 eV rms (network outputs uncorrelated with the target, r < 0.1).
    """
    names = list(ANI1X_EV)
    target_ev = np.array([ANI1X_EV[n] for n in names])
    counts = np.array([[molecule(n).get_chemical_symbols().count(e) for e in "HCNO"]
                       for n in names], dtype=float)
    for model_id in MODELS:
        adapter = adapters[model_id]
        potential = adapter._potential
        refs = potential.element_refs.property_offset.detach().double().numpy().reshape(-1)
        out = adapter.embed([adapter.prepare(s) for s in _samples(names)], ["gc_1"], "mean")
        assert np.abs(out.energy - target_ev).max() < 0.1, model_id
        network = (out.energy - counts @ refs) / float(potential.data_std)
        target = target_ev - counts @ refs
        design = np.c_[network, counts]
        coef, *_ = np.linalg.lstsq(design, target, rcond=None)
        residual = float(np.sqrt(np.mean((target - design @ coef) ** 2)))
        assert residual < 0.05, model_id
        np.testing.assert_allclose(coef[0], float(potential.data_std), rtol=0.05, err_msg=model_id)
