"""Parameter counts of eSEN-30M and EquiformerV2-31M / 86M built with random weights from fairchem
1's own registered classes, for a given number of message-passing blocks.

The published checkpoints are gated, so their block counts are checked by size instead: the
architecture with the right block count has exactly the ``model_params`` matbench-discovery lists
for the checkpoint (eSEN-30M-OAM 30,161,153; eqV2 S DeNS, the MPtrj 31M model, 31,207,434; eqV2 M
86,589,068). One more or one fewer block moves the count by about 3 M (eSEN), 3.4 M (EquiformerV2
31M) or 7.9 M (86M).

Hyperparameters: EquiformerV2 from fairchem's published training configs
(``configs/omat24/mptrj/eqV2_31M_mptrj.yml``, ``configs/omat24/all/eqV2_86M.yml``: energy, force
and rank-2 stress heads); eSEN-30M: 128 sphere, hidden and edge channels, lmax 3, mmax 2, 64
Gaussian distance bases, 6 A cutoff, gate activation, spectral atomwise MLP, energy-conserving
energy/force/stress head (``esen_mlp_efs_head``). matbench-discovery's eSEN-30M-MP entry
(30,085,121) is 76,032 = 11 x 128 x 54 fewer: the same model with 10 Gaussian distance bases
instead of 64 (the first layer of each of the 11 radial MLPs is 128 wide); ``esen-30m-mp`` is that
model, its 10 bases inferred from the count, not published.

Run inside the ``fairchem-v1`` environment: ``python count_fairchem_v1_params.py MODEL BLOCKS...``
prints one ``MODEL BLOCKS COUNT`` line per block count; MODEL is one of :data:`MODELS`.
"""

from __future__ import annotations

import sys
import warnings

ESEN_30M = {"model": "esen_backbone", "max_num_elements": 100, "sphere_channels": 128,
            "hidden_channels": 128, "edge_channels": 128, "num_distance_basis": 64, "lmax": 3,
            "mmax": 2, "cutoff": 6.0, "max_neighbors": 300, "otf_graph": True, "use_pbc": True,
            "norm_type": "rms_norm_sh", "act_type": "gate", "mlp_type": "spectral",
            "use_envelope": True, "direct_forces": False, "regress_forces": True,
            "regress_stress": True}
EQV2_31M = {"model": "equiformer_v2_backbone", "use_pbc": True, "use_pbc_single": True,
            "otf_graph": True, "enforce_max_neighbors_strictly": False, "max_neighbors": 20,
            "max_radius": 12.0, "max_num_elements": 96, "avg_num_nodes": 31.16592360068011,
            "avg_degree": 61.94676351484548, "sphere_channels": 128, "attn_hidden_channels": 64,
            "num_heads": 8, "attn_alpha_channels": 64, "attn_value_channels": 16,
            "ffn_hidden_channels": 128, "norm_type": "layer_norm_sh", "lmax_list": [4],
            "mmax_list": [2], "grid_resolution": 18, "num_sphere_samples": 128,
            "edge_channels": 128, "use_atom_edge_embedding": True,
            "share_atom_edge_embedding": False, "use_m_share_rad": False,
            "distance_function": "gaussian", "num_distance_basis": 512, "attn_activation": "silu",
            "use_s2_act_attn": False, "use_attn_renorm": True, "ffn_activation": "silu",
            "use_gate_act": False, "use_grid_mlp": True, "use_sep_s2_act": True,
            "alpha_drop": 0.1, "drop_path_rate": 0.1, "proj_drop": 0.0, "weight_init": "uniform"}
EQV2_86M = {**EQV2_31M, "lmax_list": [6], "mmax_list": [4], "avg_num_nodes": 31.17,
            "avg_degree": 61.95}
EQV2_HEADS = {"energy": {"module": "equiformer_v2_energy_head"},
              "forces": {"module": "equiformer_v2_force_head"},
              "stress": {"module": "rank2_symmetric_head", "output_name": "stress",
                         "use_source_target_embedding": True, "decompose": True}}
ESEN_HEADS = {"efs": {"module": "esen_mlp_efs_head"}}
MODELS = {"esen-30m": (ESEN_30M, ESEN_HEADS),
          "esen-30m-mp": ({**ESEN_30M, "num_distance_basis": 10}, ESEN_HEADS),
          "eqv2-31m": (EQV2_31M, EQV2_HEADS),
          "eqv2-86m": (EQV2_86M, EQV2_HEADS)}


def count_parameters(model: str, num_layers: int) -> int:
    """Number of parameters of ``model`` (a key of :data:`MODELS`) with ``num_layers`` blocks:
    fairchem 1's ``hydra`` model (backbone and heads), randomly initialised on the CPU."""
    from matteralign.models.fairchem import register_v1_models

    register_v1_models()
    from fairchem.core.common.registry import registry

    backbone, heads = MODELS[model]
    hydra = registry.get_model_class("hydra")(
        backbone={**backbone, "num_layers": num_layers}, heads=heads,
        pass_through_head_outputs=True, otf_graph=True)
    return sum(parameter.numel() for parameter in hydra.parameters())


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    for blocks in sys.argv[2:]:
        print(sys.argv[1], blocks, count_parameters(sys.argv[1], int(blocks)), flush=True)
