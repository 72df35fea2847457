"""Where each model family's published weights live on this machine, known without importing torch
or a model package.

``matteralign models list`` asks :func:`weights_cached` whether a card's weights are already in
its loader's download cache ("needs download" when not), and :func:`card_modules` which other
``matteralign.models`` modules read a card's checkpoint; the adapters import the names, folders
and files they load from here, so each of these facts is written once. Nothing here uses the
network; ``huggingface_hub`` is imported only to read its cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from matteralign.models.card import ModelCard

#: A Hugging Face hub repository name, ``owner/name``.
HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: Weight files of a ``transformers`` checkpoint (its ``SAFE_WEIGHTS_NAME`` and ``WEIGHTS_NAME``),
#: and their indexes when the weights are split into shards.
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

#: The Hugging Face repository of the uPET checkpoints (PET-MAD and the others).
UPET_REPOSITORY = "lab-cosmo/upet"
#: mattersim's published checkpoint names (lower case) and the files its loader downloads.
MATTERSIM_CHECKPOINTS = {"mattersim-v1.0.0-1m": "mattersim-v1.0.0-1M.pth",
                         "mattersim-v1.0.0-5m": "mattersim-v1.0.0-5M.pth"}
#: Where mattersim's loader keeps the published checkpoints it downloads.
MATTERSIM_FOLDER = "~/.local/mattersim/pretrained_models"
#: fair-esm's name of the ESM-IF1 checkpoint (``esm.pretrained.<name>()`` downloads it).
ESM_IF1 = "esm_if1_gvp4_t16_142M_UR50"
#: Hugging Face repositories of fairchem's published checkpoints, as its
#: ``pretrained_models.json`` names them: fairchem-core 2 reads UMA's ``checkpoints/<name>.pt``
#: and ``references/*.yaml`` into its own hub cache, ``$FAIRCHEM_CACHE_DIR`` (default
#: ``~/.cache/fairchem``); fairchem-core 1 reads the OMat24 family into the default hub cache.
UMA_REPOSITORY = "facebook/UMA"
UMA_REFERENCES = ("references/iso_atom_elem_refs.yaml", "references/form_elem_refs.yaml")
OMAT24_REPOSITORY = "facebook/OMAT24"
#: The adapter whose cards may read a fair-esm ``.pt`` checkpoint through another module.
TRANSFORMERS_ADAPTER = "matteralign.models.transformer_encoders:HuggingFaceEncoderAdapter"


def hub_cached(repo_id: str, filename: str | None = None, cache_dir: str | None = None) -> bool:
    """Whether a Hugging Face hub repository's file is in the local hub cache (no network).

    Parameters
    ----------
    repo_id : str
        ``owner/name`` on the hub.
    filename : str, optional
        A file of the repository (``data/weights/model.pth``); default a ``transformers``
        checkpoint: its ``config.json`` and its weights (one file, or every shard its index
        names).
    cache_dir : str, optional
        The hub cache; default huggingface_hub's (``HF_HUB_CACHE``, else ``HF_HOME/hub``).
    """
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> str | None:
        found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
        return found if isinstance(found, str) else None

    if filename is not None:
        return cached(filename) is not None
    if cached("config.json") is None:
        return False
    if any(cached(name) for name in _WEIGHT_FILES):
        return True
    for index in filter(None, map(cached, _WEIGHT_INDEXES)):
        shards = set(json.loads(Path(index).read_text(encoding="utf-8"))["weight_map"].values())
        return all(cached(shard) for shard in shards)
    return False


def checkpoint_cached(path: str) -> bool:
    """Whether a ``transformers`` checkpoint is on this machine: ``path`` an existing local file
    or folder, or a hub name (:data:`HUB_NAME`) in the Hugging Face cache (:func:`hub_cached`)."""
    if Path(str(path)).expanduser().exists():
        return True
    return bool(HUB_NAME.match(str(path))) and hub_cached(str(path))


def fair_esm_checkpoint(path: str) -> bool:
    """Whether the checkpoint ``path`` is a fair-esm ``.pt`` file (ESM-2 as fair-esm saves it),
    read by :func:`~matteralign.models.fair_esm.esm2_as_transformers` rather than
    ``transformers``."""
    return Path(path).suffix == ".pt"


def published_file(options: Mapping[str, Any]) -> str | None:
    """The file of :data:`UPET_REPOSITORY` that the options ``model``, ``size`` and ``version``
    name (``models/pet-mad-s-v1.0.2.ckpt``), as ``upet.get_upet`` reads it; None if one is
    missing."""
    model, size, version = (options.get(key) for key in ("model", "size", "version"))
    return f"models/{model}-{size}-v{version}.ckpt" if model and size and version else None


def mattersim_published_path(name: str) -> Path | None:
    """Where mattersim's loader keeps the published checkpoint ``name`` (case-insensitive, one
    of :data:`MATTERSIM_CHECKPOINTS`) once downloaded; None for other names."""
    filename = MATTERSIM_CHECKPOINTS.get(name.lower())
    return None if filename is None else Path(MATTERSIM_FOLDER).expanduser() / filename


def _xdg_cache() -> Path:
    """``$XDG_CACHE_HOME``, default ``~/.cache``: where torch's hub and mace-torch download."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()


def torch_hub_dir() -> Path:
    """torch's hub directory as ``torch.hub.get_dir()`` gives it without ``set_dir``:
    ``$TORCH_HOME/hub``, ``$TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch``
    (:func:`_xdg_cache`)."""
    return Path(os.environ.get("TORCH_HOME", _xdg_cache() / "torch")).expanduser() / "hub"


def _is_file(path: object) -> bool:
    return Path(str(path)).expanduser().is_file()


def _transformers(card: ModelCard) -> bool | None:
    """``path`` (a folder, file or hub name) or ``hub`` by :func:`checkpoint_cached`; None for
    weights inside a package (``package``/``folder``), which ``runs_here`` checks."""
    options = card.options
    if options.get("path"):
        return checkpoint_cached(str(options["path"]))
    if options.get("package") or not options.get("hub"):
        return None
    return checkpoint_cached(str(options["hub"]))


def _causal_lm(card: ModelCard) -> bool | None:
    """The ``path`` option (a local folder or a hub name) by :func:`checkpoint_cached`; None for
    the family template, which names none."""
    path = card.options.get("path")
    return checkpoint_cached(str(path)) if path else None


def _esm(card: ModelCard) -> bool | None:
    """The ``path`` option's file, else the file the card's ``checkpoint`` names
    (``hf://owner/name/data/weights/<file>.pth``, what the esm package's ``from_pretrained``
    reads) in the Hugging Face cache; None when the card names neither."""
    if card.options.get("path"):
        return _is_file(card.options["path"])
    if not card.checkpoint.startswith("hf://"):
        return None
    owner, name, filename = card.checkpoint.removeprefix("hf://").split("/", 2)
    return hub_cached(f"{owner}/{name}", filename)


def _fair_esm(card: ModelCard) -> bool | None:
    """The ``path`` option's file, else ``<model>.pt`` (option ``model``, default
    :data:`ESM_IF1`) in ``checkpoints`` of :func:`torch_hub_dir`, where fair-esm's
    ``esm.pretrained`` downloads it (ESM-IF1 has no contact-regression file)."""
    if card.options.get("path"):
        return _is_file(card.options["path"])
    name = str(card.options.get("model", ESM_IF1))
    return (torch_hub_dir() / "checkpoints" / f"{name}.pt").is_file()


def _mace(card: ModelCard) -> bool | None:
    """The ``checkpoint`` option as a ``.model`` file, else the card's ``checkpoint`` file (the
    basename of the published URL) in mace-torch's cache, ``$XDG_CACHE_HOME/mace`` (default
    ``~/.cache/mace``), under the name mace-torch gives it: ``mace_mp`` keeps only the letters,
    digits and ``_`` of the basename, ``mace_off`` the basename itself. None when the card names
    no checkpoint file."""
    if _is_file(card.options.get("checkpoint", "")):
        return True
    if not card.checkpoint:
        return None
    name = card.checkpoint
    if card.options.get("source", "mp") == "mp":
        name = "".join(c for c in name if c.isalnum() or c == "_")
    return (_xdg_cache() / "mace" / name).is_file()


def _mattersim(card: ModelCard) -> bool | None:
    """The ``checkpoint`` option as a file, or a published name (:data:`MATTERSIM_CHECKPOINTS`)
    in :data:`MATTERSIM_FOLDER`; None for other names."""
    checkpoint = str(card.options.get("checkpoint", ""))
    if _is_file(checkpoint):
        return True
    path = mattersim_published_path(checkpoint)
    return None if path is None else path.is_file()


def _pet(card: ModelCard) -> bool | None:
    """The ``checkpoint`` option's file, else the published file (:func:`published_file`) in the
    Hugging Face cache."""
    if card.options.get("checkpoint"):
        return _is_file(card.options["checkpoint"])
    filename = published_file(card.options)
    return None if filename is None else hub_cached(UPET_REPOSITORY, filename)


def _orb(card: ModelCard) -> bool | None:
    """The ``weights`` option as a file, else the card's ``checkpoint`` URL (the published
    loader's default) in cached_path's cache, ``$CACHED_PATH_CACHE_ROOT`` (default
    ``~/.cache/cached_path``), where cached_path names a download by the sha256 of its URL (then
    ``.`` and the sha256 of its ETag) and keeps its metadata in ``.json`` and its lock in
    ``.lock`` files beside it. None without either."""
    url = str(card.options.get("weights") or card.checkpoint)
    if _is_file(url):
        return True
    if not url.startswith(("https://", "http://")):
        return None
    cache = Path(os.environ.get("CACHED_PATH_CACHE_ROOT", Path.home() / ".cache" / "cached_path"))
    stem = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return any(path.suffix not in (".json", ".lock") and not path.name.endswith("-extracted")
               for path in cache.expanduser().glob(f"{stem}*"))


def _fairchem_uma(card: ModelCard) -> bool | None:
    """The ``checkpoint`` option as a file, else a UMA checkpoint together with its reference
    energies in fairchem's own hub cache; None for other published names."""
    name = str(card.options.get("checkpoint", ""))
    if _is_file(name):
        return True
    if not card.checkpoint or not name.startswith("uma-"):
        return None
    cache = os.environ.get("FAIRCHEM_CACHE_DIR", str(Path.home() / ".cache" / "fairchem"))
    return all(hub_cached(UMA_REPOSITORY, filename, cache_dir=cache)
               for filename in (f"checkpoints/{card.checkpoint}", *UMA_REFERENCES))


def _fairchem_v1(card: ModelCard) -> bool | None:
    """The ``checkpoint`` option as a file, else the card's ``checkpoint`` file of
    :data:`OMAT24_REPOSITORY` in the default hub cache."""
    if _is_file(card.options.get("checkpoint", "")):
        return True
    return hub_cached(OMAT24_REPOSITORY, card.checkpoint) if card.checkpoint else None


#: Per adapter (``module:Class``), where its published weights are cached.
CACHE_CHECKS: dict[str, Callable[[ModelCard], bool | None]] = {
    TRANSFORMERS_ADAPTER: _transformers,
    "matteralign.models.causal_lm:CausalLMAdapter": _causal_lm,
    "matteralign.models.esm_models:EsmSequenceAdapter": _esm,
    "matteralign.models.esm_models:Esm3StructureAdapter": _esm,
    "matteralign.models.fair_esm:EsmIF1Adapter": _fair_esm,
    "matteralign.models.mace:MACEAdapter": _mace,
    "matteralign.models.mattersim:MatterSimAdapter": _mattersim,
    "matteralign.models.pet:PETAdapter": _pet,
    "matteralign.models.orb:OrbAdapter": _orb,
    "matteralign.models.fairchem:FairChemAdapter": _fairchem_uma,
    "matteralign.models.fairchem:FairChemV1Adapter": _fairchem_v1,
}


def weights_cached(card: ModelCard) -> bool | None:
    """Whether the weights that the model of ``card`` loads by published name (from the Hugging
    Face hub, or a package's own download) are already on this machine; no network is used.

    Returns
    -------
    bool or None
        False means the first run downloads them, and fails offline. None when the card's
        adapter has no entry in :data:`CACHE_CHECKS` or the card loads nothing by name (weights
        in a package or the data root: see :func:`~matteralign.models.registry.runs_here`).
    """
    check = CACHE_CHECKS.get(card.adapter)
    return None if check is None else check(card)


def card_modules(card: ModelCard) -> tuple[str, ...]:
    """The ``matteralign.models`` modules besides its adapter's that the model of ``card``
    imports to read its checkpoint: :mod:`~matteralign.models.fair_esm` (and with it fair-esm's
    ``esm``) for a ``transformers`` encoder whose ``path`` option is a fair-esm ``.pt`` file
    (:func:`fair_esm_checkpoint`), else none; ``runs_here`` checks their packages."""
    if card.adapter == TRANSFORMERS_ADAPTER and fair_esm_checkpoint(
            str(card.options.get("path", ""))):
        return ("matteralign.models.fair_esm",)
    return ()
