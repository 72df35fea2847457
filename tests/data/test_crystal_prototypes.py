"""AFLOW prototypes (pymatgen) and dcdft solids (ASE)."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.data.crystal_prototypes import build_aflow, build_dcdft


def test_aflow_prototypes():
    dataset = build_aflow()
    assert len(dataset) == 288
    cinnabar = dataset["aflow-AB_hP6_154_a_b-HgS"]
    assert cinnabar.atoms.info["mineral"] == "Cinnabar"
    assert cinnabar.atoms.get_chemical_formula() == "Hg3S3"
    assert cinnabar.atoms.get_volume() == pytest.approx(141.2929, abs=1e-3)
    assert max(len(s.atoms) for s in dataset) == 105


def test_dcdft_volumes_match_wien2k_reference():
    dataset = build_dcdft()
    assert len(dataset) == 71
    for sample in dataset:
        volume = sample.atoms.get_volume() / len(sample.atoms)
        # the structures are built at the WIEN2k PBE equilibrium volume (within 5%)
        assert volume == pytest.approx(sample.labels["wien2k_volume"], rel=0.05)
    assert np.isfinite([s.labels["wien2k_B"] for s in dataset]).all()
