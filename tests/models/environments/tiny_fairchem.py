"""Tiny randomly initialised fairchem models (two blocks, 16 channels, lmax 2) built from fairchem's
own model configuration, saved in its inference checkpoint format.

Run inside the ``fairchem`` environment: ``python tiny_fairchem.py FOLDER`` writes ``uma.pt`` (a
UMA: mixture-of-linear-experts backbone with an ``omat`` and an ``omol`` head) and ``esen.pt``
(an eSEN: the same backbone without experts, one ``omat`` energy head), each holding
``model_config``, ``model_state_dict``, ``ema_state_dict`` and ``tasks_config`` as the published
checkpoints do.
"""

from __future__ import annotations

import sys
from pathlib import Path

SIZE = {"max_num_elements": 100, "sphere_channels": 16, "hidden_channels": 16, "edge_channels": 16,
        "num_distance_basis": 16, "num_layers": 2, "lmax": 2, "mmax": 2, "cutoff": 6.0,
        "max_neighbors": 30, "otf_graph": True, "norm_type": "rms_norm_sh", "act_type": "gate",
        "ff_type": "spectral", "chg_spin_emb_type": "rand_emb", "regress_forces": True,
        "direct_forces": False, "regress_stress": True}
UMA_TASKS = ("omat", "omol")


def model_config(kind: str) -> dict:
    """The HydraModel configuration of the tiny ``kind`` ("uma" or "esen")."""
    if kind == "uma":
        backbone = {"model": "fairchem.core.models.uma.escn_moe.eSCNMDMoeBackbone", **SIZE,
                    "num_experts": 4, "use_composition_embedding": True,
                    "dataset_list": list(UMA_TASKS)}
        heads = {"energyandforcehead": {
            "module": "fairchem.core.models.uma.escn_moe.DatasetSpecificMoEWrapper",
            "head_cls": "fairchem.core.models.uma.escn_md.MLP_EFS_Head",
            "head_kwargs": {"wrap_property": False}, "dataset_names": list(UMA_TASKS)}}
        return {"_target_": "fairchem.core.models.base.HydraModel", "backbone": backbone,
                "heads": heads, "pass_through_head_outputs": True, "model_id": "tiny-UMA"}
    backbone = {"model": "fairchem.core.models.uma.escn_md.eSCNMDBackbone", **SIZE,
                "use_dataset_embedding": False}
    heads = {"efs": {"module": "fairchem.core.models.uma.escn_md.MLP_EFS_Head"}}
    return {"_target_": "fairchem.core.models.base.HydraModel", "backbone": backbone,
            "heads": heads, "pass_through_head_outputs": True}


def tasks_config(kind: str) -> list[dict]:
    """Energy, forces and stress tasks; UMA's named ``<task>_<property>``, one per task head."""
    shapes = {"energy": ("system", [1]), "forces": ("atom", [3]), "stress": ("system", [1, 9])}
    tasks = []
    for dataset in UMA_TASKS if kind == "uma" else ("omat",):
        for prop, (level, dim) in shapes.items():
            tasks.append({
                "_target_": "fairchem.core.units.mlip_unit.mlip_unit.Task",
                "name": f"{dataset}_{prop}" if kind == "uma" else prop,
                "level": level, "property": prop, "datasets": [dataset],
                "out_spec": {"_target_": "fairchem.core.units.mlip_unit.mlip_unit.OutputSpec",
                             "dim": dim, "dtype": "float32"},
                "normalizer": {
                    "_target_": "fairchem.core.modules.normalization.normalizer.Normalizer",
                    "mean": 0.0, "rmsd": 2.0},
            })
    return tasks


def save_tiny_fairchem(folder: Path, seed: int = 0) -> None:
    import hydra
    import torch
    from fairchem.core.units.mlip_unit.api.inference import MLIPInferenceCheckpoint

    for kind in ("uma", "esen"):
        torch.manual_seed(seed)
        config = model_config(kind)
        model = hydra.utils.instantiate(config)
        ema = torch.optim.swa_utils.AveragedModel(model)  # inference reads the EMA weights
        torch.save(MLIPInferenceCheckpoint(model_config=config,
                                           model_state_dict=model.state_dict(),
                                           ema_state_dict=ema.state_dict(),
                                           tasks_config=tasks_config(kind)),
                   folder / f"{kind}.pt")


if __name__ == "__main__":
    save_tiny_fairchem(Path(sys.argv[1]))
