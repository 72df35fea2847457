"""A tiny randomly initialised MACE (two interactions, 8 channels), built with mace's own classes.

Run inside the ``mace`` model environment: ``python tiny_mace.py OUT.model`` saves it the way
mace-torch saves its checkpoints (the whole module, ``torch.save``).
"""

from __future__ import annotations

import sys

ELEMENTS = list(range(1, 84))  # H to Bi


def tiny_mace(seed: int = 0, channels: int = 8, max_l: int = 1):  # -> mace.modules.ScaleShiftMACE
    """A ScaleShiftMACE with 2 interactions, ``channels`` x (0e + 1o) hidden features, 5 Å."""
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    hidden = o3.Irreps("+".join(f"{channels}x{ell}{'e' if ell % 2 == 0 else 'o'}"
                                for ell in range(max_l + 1)))
    return modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=2,
        interaction_cls=block, interaction_cls_first=block, num_interactions=2,
        num_elements=len(ELEMENTS), hidden_irreps=hidden, MLP_irreps=o3.Irreps("8x0e"),
        atomic_energies=np.linspace(-3.0, -1.0, len(ELEMENTS)), avg_num_neighbors=10.0,
        atomic_numbers=ELEMENTS, correlation=3, gate=torch.nn.functional.silu,
        atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    )


if __name__ == "__main__":
    import torch

    torch.save(tiny_mace(), sys.argv[1])

