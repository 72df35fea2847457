"""The dataset registry: names, specs that match what the builders return, the default suite."""

from __future__ import annotations

import pytest

from matteralign.data import dataset_names, default_suite, get_dataset_spec, load_dataset
from matteralign.data.registry import DEFAULT_SUITE, DEFAULT_SUITE_SHARED
from matteralign.errors import DatasetError

# small or fast offline sets, built in full to check spec == card
FAST = ("g2", "s22", "dcdft", "matpes-pbe-refs", "crystals-perturbed", "protein-backbones-ood")


def test_names_cover_the_suite():
    names = dataset_names()
    assert len(names) == len(set(names))
    assert set(DEFAULT_SUITE) | set(DEFAULT_SUITE_SHARED) <= set(names)
    domains = {
        get_dataset_spec(name).domain
        for name in names
        if get_dataset_spec(name).out_of_distribution
    }
    assert domains == {"molecules", "materials", "proteins"}  # OOD sets in every domain


def test_unknown_name():
    with pytest.raises(DatasetError, match="unknown dataset 'nope'.*qm9"):
        get_dataset_spec("nope")


@pytest.mark.parametrize("name", FAST)
def test_spec_matches_built_dataset(name):
    if name.startswith("matpes"):
        pytest.importorskip("matcalc")
    spec = get_dataset_spec(name)
    dataset = load_dataset(name)
    assert dataset.name == spec.name
    assert len(dataset) == spec.size
    assert dataset.card.domain == spec.domain
    assert dataset.card.out_of_distribution == spec.out_of_distribution
    assert set(spec.modalities) <= dataset.modalities


def test_subsets_via_registry():
    first = load_dataset("qm9", n=5, seed=9)
    assert len(first) == 5
    assert load_dataset("qm9", n=5, seed=9).fingerprint() == first.fingerprint()


def test_default_suite(monkeypatch, tmp_path):
    monkeypatch.delenv("MATTERALIGN_DATA_ROOT", raising=False)
    offline = dict(default_suite())
    assert offline["qm9"] >= 2000
    assert not set(offline) & set(DEFAULT_SUITE_SHARED)
    assert all(get_dataset_spec(name).source != "shared-data" for name in offline)
    materials = sum(
        get_dataset_spec(name).size
        for name in offline
        if get_dataset_spec(name).domain == "materials"
        and not get_dataset_spec(name).out_of_distribution
    )
    assert materials >= 1000
    proteins = [n for n in offline if "backbone" in get_dataset_spec(n).modalities]
    assert (
        sum(
            get_dataset_spec(n).size
            for n in proteins
            if not get_dataset_spec(n).out_of_distribution
        )
        >= 40
    )
    with_root = dict(default_suite(tmp_path))
    assert set(DEFAULT_SUITE_SHARED) <= set(with_root)


def test_shared_sets_match_specs(shared_data):
    for name in ("mlearn", "pfam-domains", "cb513-ts115", "monbtaw-multinary"):
        spec = get_dataset_spec(name)
        dataset = load_dataset(name, data_root=shared_data)
        assert (dataset.name, len(dataset)) == (name, spec.size)
        assert set(spec.modalities) <= dataset.modalities


def test_a_registered_file_dataset_is_built_by_name(tmp_path):
    from matteralign.data import ReadOptions, register_file_dataset

    path = tmp_path / "mols.csv"
    path.write_text("name,smiles\na,CCO\nb,CCN\nc,CCC\n")
    register_file_dataset("my-mols", path, options=ReadOptions(id_key="name"))
    assert get_dataset_spec("my-mols").file.path == path
    assert "my-mols" not in dataset_names()  # the built-in list stays the built-in sets
    dataset = load_dataset("my-mols", n=2, seed=1)
    assert len(dataset) == 2 and set(dataset.ids) <= {"a", "b", "c"}
    assert dataset.card.files[0].size == path.stat().st_size
    with pytest.raises(DatasetError, match="'qm9' .* is a built-in dataset's"):
        register_file_dataset("qm9", path)
    with pytest.raises(DatasetError, match="does not exist"):
        register_file_dataset("gone", tmp_path / "gone.csv")
