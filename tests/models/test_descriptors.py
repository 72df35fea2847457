"""Tests of the descriptor baselines: SOAP, ACSF and sorted Coulomb-matrix eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dscribe")
from ase.build import bulk, molecule  # noqa: E402

from matteralign.data.sample import Sample  # noqa: E402
from matteralign.errors import SampleError  # noqa: E402
from matteralign.models.registry import create_adapter  # noqa: E402
from matteralign.models.validate import validate_adapter  # noqa: E402

MOLECULES = [Sample(id=name, atoms=molecule(name)) for name in ("H2O", "CH4", "C6H6")]
CRYSTALS = [
    Sample(id="si", atoms=bulk("Si", "diamond", a=5.43)),
    Sample(id="cu", atoms=bulk("Cu", "fcc", a=3.61, cubic=True)),
]


@pytest.fixture(scope="module")
def adapters():
    loaded = {}
    for model_id in ("soap", "acsf", "coulomb-eigenvalues"):
        adapter = create_adapter(model_id)
        adapter.load()
        loaded[model_id] = adapter
    return loaded


@pytest.mark.parametrize("model_id", ["soap", "acsf", "coulomb-eigenvalues"])
def test_validate_on_molecules_and_crystals(adapters, model_id) -> None:
    adapter = adapters[model_id]
    assert validate_adapter(adapter, MOLECULES).ok
    assert validate_adapter(adapter, CRYSTALS).ok


def test_widths(adapters) -> None:
    widths = {}
    for model_id, adapter in adapters.items():
        out = adapter.embed([adapter.prepare(s) for s in MOLECULES[:2]], adapter.layer_names,
                            "mean")
        widths[model_id] = next(iter(out.pooled.values())).shape
    n = 14 * 4  # species x n_max
    assert widths == {
        "soap": (2, n * (n + 1) // 2 * 4),  # l_max + 1 = 4
        "acsf": (2, 14 + 14 * 6 + 14 * 15 // 2 * 4),  # G1, G2 per species, G4 per pair
        "coulomb-eigenvalues": (2, 128),
    }


def test_acsf_g1_matches_cosine_cutoff(adapters) -> None:
    adapter = adapters["acsf"]
    h2 = molecule("H2")
    distance = h2.get_distance(0, 1)
    out = adapter.embed([h2], ["acsf"], "mean", per_item=True)
    # Column 0 is G1 with H neighbours: f_c(r) = (cos(pi r / r_cut) + 1) / 2, r_cut = 6 Å.
    expected = 0.5 * (np.cos(np.pi * distance / 6.0) + 1.0)
    np.testing.assert_allclose(out.per_item["acsf"][0][:, 0], [expected, expected], rtol=1e-6)


def test_coulomb_eigenvalues_match_numpy(adapters) -> None:
    adapter = adapters["coulomb-eigenvalues"]
    water = molecule("H2O")
    z = water.numbers.astype(float)
    distances = water.get_all_distances()
    with np.errstate(divide="ignore"):
        matrix = np.outer(z, z) / distances
    np.fill_diagonal(matrix, 0.5 * z**2.4)
    eigenvalues = np.linalg.eigvalsh(matrix)
    expected = eigenvalues[np.argsort(-np.abs(eigenvalues))]
    out = adapter.embed([water], ["eigenvalues"], "mean")
    np.testing.assert_allclose(out.pooled["eigenvalues"][0, :3], expected, rtol=1e-8)
    assert np.all(out.pooled["eigenvalues"][0, 3:] == 0)


def test_coulomb_matches_dscribe_and_sine_limits(adapters) -> None:
    from dscribe.descriptors import CoulombMatrix

    adapter = adapters["coulomb-eigenvalues"]
    benzene = molecule("C6H6")
    reference = CoulombMatrix(n_atoms_max=128, permutation="eigenspectrum").create(benzene)
    out = adapter.embed([benzene, bulk("Cu", "fcc", a=3.61)], ["eigenvalues"], "mean")
    np.testing.assert_allclose(out.pooled["eigenvalues"][0], reference, rtol=1e-8, atol=1e-10)
    # One atom per cell: the sine matrix is just 0.5 Z^2.4.
    np.testing.assert_allclose(out.pooled["eigenvalues"][1, 0], 0.5 * 29**2.4)


def test_species_and_size_limits_fail_per_sample(adapters) -> None:
    with pytest.raises(SampleError, match=r"element\(s\) Cl not in the species list of soap"):
        adapters["soap"].prepare(Sample(id="ch3cl", atoms=molecule("CH3Cl")))
    big = Sample(id="big", atoms=bulk("Cu", "fcc", a=3.61, cubic=True).repeat((4, 4, 3)))
    with pytest.raises(SampleError, match="192 atoms, more than n_atoms_max=128"):
        adapters["coulomb-eigenvalues"].prepare(big)
