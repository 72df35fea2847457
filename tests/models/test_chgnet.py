"""Tests of models/chgnet.py: the batched CHGNet adapter against CHGNet's own predictions."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from matteralign.data.sample import Sample
from matteralign.errors import SampleError
from matteralign.models.registry import create_adapter, get_card
from matteralign.models.validate import validate_adapter

pytest.importorskip("chgnet")


@pytest.fixture(scope="module")
def adapter():
    chgnet = create_adapter("chgnet-0.3.0")
    chgnet.load("cpu", "float32")
    return chgnet


def test_card_lists_every_conv_block_and_measured_parameters():
    card = get_card("chgnet-0.3.0")
    assert card.layer_names == ["atom_conv_0", "atom_conv_1", "atom_conv_2", "atom_conv_3"]
    assert card.parameters == 412_525
    assert card.predicts_energy and card.extra == "mlip"
    assert any(m.name == "discovery.unique_prototypes.F1" and m.value == 0.613
               for m in card.published_metrics)


def test_validate_adapter_passes(adapter, crystals):
    report = validate_adapter(adapter, crystals)
    assert report.ok and "rotation-invariance[atom_conv_3]" in report.passed


def test_energy_and_last_layer_match_chgnet_predict_structure(adapter, crystals):
    from pymatgen.io.ase import AseAtomsAdaptor

    samples = crystals[:2]
    out = adapter.embed([adapter.prepare(s) for s in samples], adapter.layer_names, "sum")
    for row, sample in enumerate(samples):
        reference = adapter.model.predict_structure(
            AseAtomsAdaptor.get_structure(sample.atoms), task="e", return_crystal_feas=True
        )
        n_atoms = len(sample.atoms)
        assert out.energy[row] == pytest.approx(float(reference["e"]) * n_atoms, abs=1e-4)
        # CHGNet's crystal_fea is the sum over atoms of the readout-normed last block.
        np.testing.assert_allclose(out.pooled["atom_conv_3"][row], reference["crystal_fea"],
                                   rtol=1e-4, atol=1e-4)
    assert out.energy[0] / 8 == pytest.approx(-5.31, abs=0.05)  # Si: about -5.3 eV/atom


def test_poolings_and_per_item(adapter, crystals):
    sample = crystals[1]
    item = adapter.prepare(sample)
    mean = adapter.embed([item], ["atom_conv_1"], "mean", per_item=True)
    elem = adapter.embed([item], ["atom_conv_1"], "per_element_mean")
    atoms = mean.per_item["atom_conv_1"][0]
    assert atoms.shape == (2, 64)
    # One Na and one Cl: the mean and the per-element mean coincide.
    np.testing.assert_allclose(mean.pooled["atom_conv_1"][0], atoms.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(elem.pooled["atom_conv_1"], mean.pooled["atom_conv_1"], rtol=1e-5)


def test_uncovered_element_fails_naming_it(adapter):
    sample = Sample("am", atoms=Atoms("Am", positions=[[0, 0, 0]], cell=[4, 4, 4], pbc=True))
    with pytest.raises(SampleError, match="Am"):
        adapter.prepare(sample)


def test_chgnet_0_2_0_loads_its_own_weights(adapter, crystals):
    old = create_adapter("chgnet-0.2.0")
    old.load("cpu", "float32")
    samples = crystals[:2]
    out_old = old.embed([old.prepare(s) for s in samples], ["atom_conv_3"], "mean")
    out_new = adapter.embed([adapter.prepare(s) for s in samples], ["atom_conv_3"], "mean")
    assert np.isfinite(out_old.energy).all()
    assert not np.allclose(out_old.pooled["atom_conv_3"], out_new.pooled["atom_conv_3"])
