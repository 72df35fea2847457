"""A tiny randomly initialised PET (two GNN layers, 8 features), built with metatrain's own class.

Run inside the ``pet`` model environment: ``python tiny_pet.py FOLDER`` writes ``pet.ckpt`` (a
metatrain checkpoint, the format of the published uPET checkpoints) and ``pet.pt`` (the same model
exported as a metatomic ``AtomisticModel``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ELEMENTS = [1, 6, 7, 8, 11, 14, 17]  # H, C, N, O, Na, Si, Cl
SIZE = {"cutoff": 4.5, "d_pet": 8, "d_head": 8, "d_node": 16, "d_feedforward": 16,
        "num_heads": 2, "num_attention_layers": 1, "num_gnn_layers": 2}


def tiny_pet(seed: int = 0):  # -> metatrain.pet.PET
    """metatrain's PET with its default hypers shrunk to ``SIZE``, one energy target in eV."""
    import torch
    from metatrain.pet import PET
    from metatrain.utils.architectures import get_default_hypers
    from metatrain.utils.data import DatasetInfo
    from metatrain.utils.data.target_info import get_energy_target_info

    torch.manual_seed(seed)
    hypers = {**get_default_hypers("pet")["model"], **SIZE}
    info = DatasetInfo(
        length_unit="angstrom", atomic_types=ELEMENTS,
        targets={"energy": get_energy_target_info("energy", {"quantity": "energy", "unit": "eV"})},
    )
    return PET(hypers, info)


if __name__ == "__main__":
    import torch

    folder = Path(sys.argv[1])
    model = tiny_pet()
    torch.save(model.get_checkpoint(), folder / "pet.ckpt")
    model.export().save(str(folder / "pet.pt"))
