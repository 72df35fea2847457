"""Active and total parameter counts of a UMA backbone (fairchem 2's ``eSCNMDMoeBackbone`` with a
mixture of 32 linear experts) for a given number of message-passing blocks and lmax.

UMA-M's checkpoint is gated; the published sizes are "1.4B parameters, ~50M active" (UMA-M) and
"150M, 6.6M active" (UMA-S; Wood et al. 2025 and the facebook/UMA model card). Other
hyperparameters, as in eSEN-30M: 128 sphere, hidden and edge channels, mmax 2, 64 distance
bases, 6 A cutoff, gate activation, spectral atomwise MLP, composition embedding and one energy
head per task (omat, omol, oc20, odac, omc).

``active`` is the model without experts (``num_experts=0``: one set of weights, what merging the
experts for one structure leaves). ``total`` is the 32-expert model; a 1.4 B-parameter model
would take about 6 GB to build, so it is extrapolated from 1, 2 and 3 experts: with E experts the
count is ``a + b E + 6 E**2`` (each expert adds one copy of the mixed SO(2) weights; the routing
MLP's E x 2E, 2E x 2E and 2E x E weights add the 6 E**2), checked by its second difference.

Run inside the ``fairchem`` environment: ``python count_uma_params.py LMAX BLOCKS...`` prints one
``LMAX BLOCKS ACTIVE TOTAL`` line per block count.
"""

from __future__ import annotations

import sys
import warnings

TASKS = ["omat", "omol", "oc20", "odac", "omc"]
EXPERTS = 32


def model_config(num_layers: int, lmax: int, num_experts: int) -> dict:
    """HydraModel configuration of a 128-channel UMA with ``num_layers`` blocks."""
    backbone = {"model": "fairchem.core.models.uma.escn_moe.eSCNMDMoeBackbone",
                "max_num_elements": 100, "sphere_channels": 128, "hidden_channels": 128,
                "edge_channels": 128, "num_distance_basis": 64, "num_layers": num_layers,
                "lmax": lmax, "mmax": 2, "cutoff": 6.0, "max_neighbors": 300, "otf_graph": True,
                "norm_type": "rms_norm_sh", "act_type": "gate", "ff_type": "spectral",
                "chg_spin_emb_type": "rand_emb", "regress_forces": True, "direct_forces": False,
                "regress_stress": True, "num_experts": num_experts,
                "use_composition_embedding": True, "dataset_list": TASKS}
    heads = {"energyandforcehead": {
        "module": "fairchem.core.models.uma.escn_moe.DatasetSpecificMoEWrapper",
        "head_cls": "fairchem.core.models.uma.escn_md.MLP_EFS_Head",
        "head_kwargs": {"wrap_property": False}, "dataset_names": TASKS}}
    return {"_target_": "fairchem.core.models.base.HydraModel", "backbone": backbone,
            "heads": heads, "pass_through_head_outputs": True}


def count_parameters(num_layers: int, lmax: int, num_experts: int) -> int:
    """Parameters of the UMA of :func:`model_config`, randomly initialised on the CPU."""
    import hydra

    model = hydra.utils.instantiate(model_config(num_layers, lmax, num_experts))
    return sum(parameter.numel() for parameter in model.parameters())


def active_and_total(num_layers: int, lmax: int) -> tuple[int, int]:
    """(active, total) parameters: no experts, and :data:`EXPERTS` experts, the quadratic
    ``n(E) = n(1) + (E - 1) (n(2) - n(1)) + 6 (E - 1) (E - 2)`` through 1, 2 and 3 experts."""
    one, two, three = (count_parameters(num_layers, lmax, n) for n in (1, 2, 3))
    if (three - two) - (two - one) != 12:
        raise RuntimeError(f"UMA parameters not a + b E + 6 E**2: {one}, {two}, {three}")
    total = one + (EXPERTS - 1) * (two - one) + 6 * (EXPERTS - 1) * (EXPERTS - 2)
    return count_parameters(num_layers, lmax, 0), total


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    for blocks in sys.argv[2:]:
        print(sys.argv[1], blocks, *active_and_total(int(blocks), int(sys.argv[1])), flush=True)
