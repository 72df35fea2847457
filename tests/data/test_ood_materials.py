"""Generated out-of-distribution crystals."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.data import ood_materials


@pytest.fixture(scope="module")
def perturbed():
    return ood_materials.build_perturbed()


@pytest.fixture(scope="module")
def exotic():
    return ood_materials.build_exotic()


def test_perturbation_recipes(perturbed):
    assert perturbed.card.out_of_distribution
    assert len(perturbed) == 60 * 7
    base = dict(ood_materials.reference_crystals())["Cu"]
    compressed = perturbed["perturbed-Cu-compressed80"].atoms
    assert compressed.get_volume() / base.get_volume() == pytest.approx(0.8**3)
    rattled = perturbed["perturbed-Cu-rattle0.5"].atoms
    assert len(rattled) >= ood_materials.MIN_SUPERCELL_ATOMS
    supercell = ood_materials._supercell(base)
    assert (rattled.positions - supercell.positions).std() == pytest.approx(0.5, rel=0.35)


def test_exotic_structures(exotic):
    assert exotic.card.out_of_distribution
    kinds = {sample.id.split("-")[1] for sample in exotic}
    assert kinds == {"amorphous", "large", "slab", "cluster", "sheet"}
    cluster = exotic["exotic-cluster-Au-ico55"].atoms
    assert len(cluster) == 55 and not cluster.pbc.any()
    assert len(exotic["exotic-large-Cu500"].atoms) == 500
    for sample in exotic:
        if sample.id.startswith("exotic-amorphous-Si-"):
            distances = sample.atoms.get_all_distances(mic=True)
            distances[np.diag_indices(len(sample.atoms))] = np.inf
            assert distances.min() >= 2.1 - 1e-9


def test_amorphous_cell_rejects_impossible_density():
    from matteralign.errors import DatasetError

    with pytest.raises(DatasetError, match="no room"):
        ood_materials.amorphous_cell(["Si"] * 20, 5.0, 3.0, np.random.default_rng(0))


def test_generated_sets_are_deterministic(perturbed):
    assert ood_materials.build_perturbed().fingerprint() == perturbed.fingerprint()
    assert ood_materials.build_perturbed(seed=1).fingerprint() != perturbed.fingerprint()
