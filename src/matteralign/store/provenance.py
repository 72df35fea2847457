"""Provenance of stored embeddings: the configuration hash and the environment they came from."""

from __future__ import annotations

import hashlib
import json
import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

STORE_FORMAT = 1
_PACKAGES = ("matteralign", "torch", "numpy", "safetensors", "transformers", "ase")


def config_hash(**fields: Any) -> str:
    """SHA-256 of a canonical JSON of ``fields`` plus the store format version.

    Two shards with the same hash were computed from the same model, checkpoint, options,
    layers, pooling, dtype and samples, so a rerun may skip them.
    """
    payload = json.dumps({"store_format": STORE_FORMAT, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the packages that shape embeddings (absent ones are skipped).

    Read once per process and ``extra`` (3 ms of metadata lookups, paid by every shard
    otherwise); a copy is returned.
    """
    return dict(_installed_versions((*_PACKAGES, *extra)))


@cache
def _installed_versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    found = []
    for name in names:
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            continue
    return tuple(found)


def hardware(device: str) -> str:
    """A one-line description of the machine and the device used."""
    description = f"{platform.machine()} {platform.system()} python {platform.python_version()}"
    import torch

    if device.startswith("cuda"):
        description += f"; {torch.cuda.get_device_name(torch.device(device))}"
        return f"{description}; device {device}"
    return f"{description}; device {device}, torch threads {torch.get_num_threads()}"


def environment_provenance(device: str, extra_packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """Package versions and hardware, for a shard header."""
    return {"packages": package_versions(extra_packages), "hardware": hardware(device)}
