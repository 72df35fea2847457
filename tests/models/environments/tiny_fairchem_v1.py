"""Tiny randomly initialised fairchem-core 1 models (two blocks, 16 channels), built from fairchem's
own registered model classes, saved in its version 1 checkpoint format.

Run inside the ``fairchem-v1`` environment: ``python tiny_fairchem_v1.py FOLDER`` writes
``esen.pt`` (an eSEN with an energy-conserving energy/force head, like eSEN-30M-OAM) and
``eqv2.pt`` (an EquiformerV2 with direct energy and force heads, like the OMat24 EquiformerV2),
each holding the training ``config`` that fairchem's ``OCPCalculator`` rebuilds the model from,
the ``state_dict`` and an energy ``normalizers`` entry, as the published checkpoints do.
"""

from __future__ import annotations

import sys
from pathlib import Path

BACKBONES = {
    "esen": {"model": "esen_backbone", "max_num_elements": 100, "sphere_channels": 16,
             "hidden_channels": 16, "edge_channels": 16, "num_distance_basis": 16,
             "num_layers": 2, "lmax": 2, "mmax": 2, "cutoff": 6.0, "max_neighbors": 30,
             "otf_graph": True, "use_pbc": True, "norm_type": "rms_norm_sh", "act_type": "gate",
             "mlp_type": "spectral", "direct_forces": False, "regress_forces": True,
             "regress_stress": True},
    "eqv2": {"model": "equiformer_v2_backbone", "max_num_elements": 96, "num_layers": 2,
             "sphere_channels": 16, "attn_hidden_channels": 16, "num_heads": 2,
             "attn_alpha_channels": 8, "attn_value_channels": 4, "ffn_hidden_channels": 16,
             "lmax_list": [2], "mmax_list": [2], "grid_resolution": 8, "edge_channels": 16,
             "num_distance_basis": 16, "max_radius": 6.0, "max_neighbors": 20, "otf_graph": True,
             "use_pbc": True, "regress_forces": True, "avg_num_nodes": 10.0,
             "avg_degree": 20.0, "alpha_drop": 0.0, "drop_path_rate": 0.0},
}
HEADS = {
    "esen": {"efs": {"module": "esen_mlp_efs_head"}},
    "eqv2": {"energy": {"module": "equiformer_v2_energy_head"},
             "forces": {"module": "equiformer_v2_force_head"}},
}


def config(kind: str) -> dict:
    """The training configuration of the tiny ``kind`` ("esen" or "eqv2")."""
    outputs = {"energy": {"level": "system", "property": "energy"},
               "forces": {"level": "atom", "property": "forces", "train_on_free_atoms": True,
                          "eval_on_free_atoms": True}}
    return {
        "trainer": "ocp",
        "model": {"name": "hydra", "backbone": dict(BACKBONES[kind]), "heads": HEADS[kind],
                  "pass_through_head_outputs": True, "otf_graph": True},
        "outputs": outputs,
        "loss_functions": [{"energy": {"fn": "mae", "coefficient": 1}},
                           {"forces": {"fn": "l2mae", "coefficient": 1}}],
        "evaluation_metrics": {"metrics": {"energy": ["mae"], "forces": ["mae"]}},
        "optim": {"batch_size": 1, "eval_batch_size": 1, "num_workers": 0, "max_epochs": 1},
        "dataset": {"format": "ase_db", "src": "none"},
        "task": {},
        "cmd": {"seed": 0},
    }


def save_tiny_fairchem_v1(folder: Path, seed: int = 0) -> None:
    import torch

    from matteralign.models.fairchem import register_v1_models

    register_v1_models()
    from fairchem.core.common.registry import registry
    from fairchem.core.modules.normalization.normalizer import Normalizer

    for kind in BACKBONES:
        torch.manual_seed(seed)
        model_config = dict(config(kind)["model"])
        model = registry.get_model_class(model_config.pop("name"))(**model_config)
        normalizer = Normalizer(mean=0.5, rmsd=2.0)  # energy = 0.5 + 2.0 * model output
        torch.save({"config": config(kind), "state_dict": model.state_dict(),
                    "normalizers": {"energy": normalizer.state_dict()}, "ema": None,
                    "amp": None}, folder / f"{kind}.pt")


if __name__ == "__main__":
    save_tiny_fairchem_v1(Path(sys.argv[1]))
