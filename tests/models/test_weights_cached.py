"""Whether a model's published weights are already on this machine: each family's
``weights_cached`` against files placed where its loader keeps downloads, no network."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants, scan_cache_dir
from huggingface_hub.file_download import repo_folder_name

from matteralign.models.registry import get_card
from matteralign.models.weights import torch_hub_dir, weights_cached

COMMIT = "0" * 40


def place_in_hub_cache(cache: Path, repo_id: str, filename: str) -> Path:
    """Write a file where huggingface_hub keeps ``filename`` of ``repo_id`` at ``main``."""
    repo = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    path = repo / "snapshots" / COMMIT / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    return path


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache for this test (huggingface_hub read HF_HOME at import)."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_the_placed_file_is_what_huggingface_hub_itself_finds(hub_cache):
    place_in_hub_cache(hub_cache, "lab-cosmo/upet", "models/pet-mad-s-v1.6.0.ckpt")
    (repo,) = scan_cache_dir(hub_cache).repos
    (revision,) = repo.revisions
    assert repo.repo_id == "lab-cosmo/upet" and revision.commit_hash == COMMIT
    assert [file.file_name for file in revision.files] == ["pet-mad-s-v1.6.0.ckpt"]


def test_a_hub_checkpoint_needs_its_config_and_every_weight_shard(hub_cache):
    card = get_card("chemberta-2-77m-mlm")
    assert weights_cached(card) is False
    place_in_hub_cache(hub_cache, "DeepChem/ChemBERTa-77M-MLM", "config.json")
    assert weights_cached(card) is False  # a config without weights does not load
    place_in_hub_cache(hub_cache, "DeepChem/ChemBERTa-77M-MLM", "model.safetensors")
    assert weights_cached(card) is True

    sharded = card.model_copy(update={"options": {**card.options, "hub": "owner/sharded"}})
    place_in_hub_cache(hub_cache, "owner/sharded", "config.json")
    index = place_in_hub_cache(hub_cache, "owner/sharded", "model.safetensors.index.json")
    index.write_text(json.dumps({"weight_map": {"a": "part-1.safetensors",
                                                "b": "part-2.safetensors"}}))
    place_in_hub_cache(hub_cache, "owner/sharded", "part-1.safetensors")
    assert weights_cached(sharded) is False
    place_in_hub_cache(hub_cache, "owner/sharded", "part-2.safetensors")
    assert weights_cached(sharded) is True


def test_weights_inside_a_package_or_no_family_check_give_none(hub_cache):
    assert weights_cached(get_card("rxnfp-bert-pretrained")) is None  # package folder
    assert weights_cached(get_card("composition")) is None  # module defines no check
    assert weights_cached(get_card("llm-causal")) is None  # template without a path


def test_a_local_path_option_that_exists_counts_as_present(hub_cache, tmp_path):
    folder = tmp_path / "my-llm"
    card = get_card("deepseek-r1-distill-llama-8b")
    assert weights_cached(card) is False  # a hub name not in the cache
    local = card.model_copy(update={"options": {**card.options, "path": str(folder)}})
    assert weights_cached(local) is False
    folder.mkdir()
    assert weights_cached(local) is True

    mace = get_card("mace-mp-0-small")
    model_file = tmp_path / "my.model"
    model_file.write_bytes(b"weights")
    assert weights_cached(mace.model_copy(
        update={"options": {**mace.options, "checkpoint": str(model_file)}})) is True


def test_esm_and_upet_read_the_file_their_card_names_from_the_hub_cache(hub_cache):
    esmc = get_card("esmc-300m")
    pet = get_card("pet-mad-s-v1.6.0")
    assert weights_cached(esmc) is False and weights_cached(pet) is False
    place_in_hub_cache(hub_cache, "EvolutionaryScale/esmc-300m-2024-12",
                       "data/weights/esmc_300m_2024_12_v0.pth")
    place_in_hub_cache(hub_cache, "lab-cosmo/upet", "models/pet-mad-s-v1.6.0.ckpt")
    assert weights_cached(esmc) is True and weights_cached(pet) is True
    assert weights_cached(get_card("esmc-600m")) is False


def test_mace_reads_its_cache_under_xdg_cache_home_by_mace_torchs_file_names(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    small, off = get_card("mace-mp-0-small"), get_card("mace-off23-small")
    assert weights_cached(small) is False and weights_cached(off) is False
    (tmp_path / "mace").mkdir()
    # mace_mp keeps the letters, digits and _ of the URL's basename; mace_off the basename
    (tmp_path / "mace" / "20231210mace128L0_energy_epoch249model").write_bytes(b"w")
    (tmp_path / "mace" / "MACE-OFF23_small.model").write_bytes(b"w")
    assert weights_cached(small) is True and weights_cached(off) is True
    assert weights_cached(get_card("mace-mp-0-medium")) is False


def test_mattersim_and_fair_esm_read_their_download_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    mattersim, if1 = get_card("mattersim-v1-1m"), get_card("esm-if1")
    assert weights_cached(mattersim) is False and weights_cached(if1) is False
    folder = tmp_path / ".local" / "mattersim" / "pretrained_models"
    folder.mkdir(parents=True)
    (folder / "mattersim-v1.0.0-1M.pth").write_bytes(b"w")
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "torch" / "hub" / "checkpoints" / "esm_if1_gvp4_t16_142M_UR50.pt").write_bytes(b"w")
    assert weights_cached(mattersim) is True and weights_cached(if1) is True
    assert weights_cached(get_card("mattersim-v1-5m")) is False


@pytest.mark.parametrize("variables", [{}, {"XDG_CACHE_HOME": "xdg"}, {"TORCH_HOME": "th"},
                                       {"XDG_CACHE_HOME": "xdg", "TORCH_HOME": "th"}])
def test_torch_hub_dir_is_torchs_own(variables, tmp_path, monkeypatch):
    import torch.hub

    for name in ("XDG_CACHE_HOME", "TORCH_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    assert torch_hub_dir() == Path(torch.hub.get_dir())


def test_hf_home_set_before_start_is_the_cache_read(tmp_path):
    place_in_hub_cache(tmp_path / "hub", "lab-cosmo/upet", "models/pet-mad-s-v1.6.0.ckpt")
    script = ("from matteralign.models.registry import get_card; "
              "from matteralign.models.weights import weights_cached; "
              "print(weights_cached(get_card('pet-mad-s-v1.6.0')), "
              "weights_cached(get_card('pet-mad-xs-v1.6.0')))")
    environment = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    environment.pop("HF_HUB_CACHE", None)
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True,
                            text=True, check=True, timeout=120)
    assert result.stdout.split() == ["True", "False"]


def test_fairchem_reads_uma_from_its_own_hub_cache_and_omat24_from_the_default(
        hub_cache, tmp_path, monkeypatch):
    fairchem_cache = tmp_path / "fairchem"
    monkeypatch.setenv("FAIRCHEM_CACHE_DIR", str(fairchem_cache))
    uma, eqv2 = get_card("uma-s-1p1-omat"), get_card("eqv2-31m-mp")
    assert weights_cached(uma) is False and weights_cached(eqv2) is False
    place_in_hub_cache(fairchem_cache, "facebook/UMA", "checkpoints/uma-s-1p1.pt")
    assert weights_cached(uma) is False  # its reference energies are read too
    for name in ("iso_atom_elem_refs.yaml", "form_elem_refs.yaml"):
        place_in_hub_cache(fairchem_cache, "facebook/UMA", f"references/{name}")
    place_in_hub_cache(hub_cache, "facebook/OMAT24", "eqV2_31M_mp.pt")
    assert weights_cached(uma) is True and weights_cached(eqv2) is True
    assert weights_cached(get_card("uma-m-1p1-omat")) is False
    assert weights_cached(get_card("esen-30m-mp")) is False


def test_orb_reads_cached_paths_cache_by_the_sha256_of_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHED_PATH_CACHE_ROOT", str(tmp_path))
    card = get_card("orb-v2")
    assert weights_cached(card) is False
    url = "https://orbitalmaterials-public-models.s3.us-west-1.amazonaws.com/forcefields/" \
        "orb-v2-20241011.ckpt"
    stem = hashlib.sha256(url.encode()).hexdigest()
    (tmp_path / f"{stem}.json").write_text("{}")  # metadata alone is no download
    assert weights_cached(card) is False
    (tmp_path / f"{stem}.{hashlib.sha256(b'etag').hexdigest()}").write_bytes(b"w")
    assert weights_cached(card) is True
    assert weights_cached(get_card("orb-v3-direct-20-mpa")) is False
