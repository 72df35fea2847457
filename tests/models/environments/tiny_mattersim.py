"""A tiny randomly initialised MatterSim (M3GNet, two blocks, 16 units), built with mattersim's own
class, saved in mattersim's checkpoint format.

Run inside the ``mattersim`` environment: ``python tiny_mattersim.py OUT.pth``.
"""

from __future__ import annotations

import sys


def save_tiny_mattersim(path: str, seed: int = 0) -> None:
    import torch
    from mattersim.forcefield.m3gnet.m3gnet import M3Gnet

    torch.manual_seed(seed)
    model = M3Gnet(num_blocks=2, units=16, max_l=3, max_n=3, cutoff=5.0, threebody_cutoff=4.0,
                   device="cpu")
    torch.save({"model_name": "m3gnet", "model": model.state_dict(),
                "model_args": model.get_model_args()}, path)


if __name__ == "__main__":
    save_tiny_mattersim(sys.argv[1])
