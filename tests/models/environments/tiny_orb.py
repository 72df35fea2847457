"""Tiny randomly initialised Orb v3 models (two message-passing steps, 16 features), built with
orb-models' own architecture constructors.

Run inside the ``orb`` model environment: ``python tiny_orb.py FOLDER`` saves the state dicts
``conservative.ckpt`` and ``direct.ckpt`` (the format of orb-models' published checkpoints).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The ``architecture`` option of the Orb adapter that rebuilds them (minus ``function``).
SIZE = {"latent_dim": 16, "base_mlp_hidden_dim": 32, "head_mlp_hidden_dim": 16,
        "num_message_passing_steps": 2,
        "system_config": {"radius": 6.0, "max_num_neighbors": 20}}
FUNCTIONS = {"conservative": "orb_v3_conservative_architecture",
             "direct": "orb_v3_direct_architecture"}


def architecture(kind: str) -> dict:
    """The adapter option ``architecture`` of the tiny ``kind`` ("conservative" or "direct")."""
    return {"function": FUNCTIONS[kind], **SIZE}


def save_tiny_orbs(folder: Path, seed: int = 0) -> None:
    import torch
    from orb_models.forcefield import pretrained
    from orb_models.forcefield.atomic_system import SystemConfig

    for kind, function in FUNCTIONS.items():
        torch.manual_seed(seed)
        arguments = {k: v for k, v in SIZE.items() if k != "system_config"}
        model = getattr(pretrained, function)(
            device="cpu", system_config=SystemConfig(**SIZE["system_config"]), **arguments)
        torch.save(model.state_dict(), folder / f"{kind}.ckpt")


if __name__ == "__main__":
    save_tiny_orbs(Path(sys.argv[1]))
