"""Foundation potentials in their own environments: runner vs the package's own batched evaluation.

For each family (MACE, Orb, fairchem's UMA, PET, MatterSim) a full-size architecture with random
weights (speed does not depend on weight values), built with the package's own constructors
inside the family's model environment, embeds the same structures twice, side by side in one
process:

* ``runner``: :func:`matteralign.run.embed.embed_dataset` with the family's adapter, every layer
  pooled and stored, batches packed under an atom budget; graphs built in ``prepare`` (on a
  GPU in a background thread ahead of the model; ``--prepare-ahead 0``: in the job's thread),
  every structure checked once (a freshly loaded dataset each run, as a new study).
* ``own``: the package's own batched evaluation of the same structures: MACE, mace's
  ``AtomicData`` graphs through its ``torch_geometric`` ``DataLoader`` and
  ``model(batch, compute_force=False)`` (energy only, as ``mace eval_configs`` without forces);
  Orb, ``ase_atoms_to_atom_graphs`` (on the device, orb-models' own default there) and
  ``batch_graphs`` then ``model.predict`` of a direct model (no autograd); UMA, fairchem's
  ``AtomicData.from_ase`` graphs, ``atomicdata_list_to_batch`` and ``MLIPPredictUnit.predict``
  with energy tasks only; PET, metatomic's ``MetatomicCalculator.run_model`` asked for the
  energy only; MatterSim, its ``GraphConvertor`` graphs in a torch_geometric ``DataLoader`` over
  the same batches through ``Potential.predict_properties`` without forces or stress. The
  package's own evaluations run under ``torch.inference_mode``, as the runner does.

Full size: MACE-MP-0 medium, Orb v3 direct, UMA-S 1.1 (4 blocks, 128 channels, lmax 2, 32
experts), metatrain's default PET (the PET-MAD-S size class) and MatterSim v1 1M (mattersim's
default M3Gnet); ``--size tiny`` takes the tests' tiny models (``tests/models/environments``).

Both include graph building, both use the same batches (greedy packing under the atom budget),
both run once on a few structures first to warm up, then alternate ``--repeats`` times (the
fastest run of each is kept). The ratio is runner structures/s over own structures/s (target: at
least 0.8).

Run from the main environment; each family runs in its environment's Python (built beforehand,
``matteralign env create mace orb fairchem pet mattersim``; offline: ``PIP_NO_INDEX=1
PIP_FIND_LINKS=<wheels folder>``):

    python benchmarks/bench_zoo.py --device cuda --n 1000 --budget 4096
    python benchmarks/bench_zoo.py --size tiny --n 24          # a quick CPU check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def structures(n: int, data_root: str | None):
    """``n`` crystals: seeded mlearn structures with a data root, else AFLOW prototypes (cycled)."""
    from matteralign.data.registry import load_dataset
    from matteralign.data.sample import Dataset, Sample

    if data_root:
        return load_dataset("mlearn", n=n, seed=0, data_root=Path(data_root))
    pool = load_dataset("aflow-prototypes", seed=0)
    samples = [Sample(f"{pool.samples[i % len(pool)].id}:{i}",
                      atoms=pool.samples[i % len(pool)].atoms) for i in range(n)]
    return Dataset(pool.card, samples)


def packed(counts: list[int], budget: int) -> list[list[int]]:
    """Indices in greedy batches whose atom counts sum to at most ``budget`` (the runner's rule)."""
    batches, current, used = [], [], 0
    for index, count in enumerate(counts):
        if current and used + count > budget:
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += count
    return batches + ([current] if current else [])


def numbered(prefix: str, count: int) -> list:
    """Layer entries ``<prefix>_0`` ... ``<prefix>_<count - 1>`` for a card copy."""
    from matteralign.models.card import LayerInfo

    return [LayerInfo(name=f"{prefix}_{i}") for i in range(count)]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ---- inside a family's environment ---------------------------------------------------------------


def mace_model(size: str):
    """MACE-MP-0 medium's architecture (128x0e+128x1o, l_max 3, correlation 3, 6 Å), or tiny."""
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(0)
    numbers = list(range(1, 95))
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    channels, max_ell = (128, 3) if size == "full" else (8, 2)
    return modules.ScaleShiftMACE(
        r_max=6.0, num_bessel=10, num_polynomial_cutoff=5, max_ell=max_ell,
        interaction_cls=block, interaction_cls_first=block, num_interactions=2,
        num_elements=len(numbers), hidden_irreps=o3.Irreps(f"{channels}x0e+{channels}x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(len(numbers)),
        avg_num_neighbors=60.0, atomic_numbers=numbers, correlation=3,
        gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64],
        atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    )


def mace_own(adapter, atoms_list, batches, device: str) -> None:  # noqa: ANN001
    """mace's own batched evaluation: AtomicData graphs, its DataLoader collation, energy only."""
    import torch
    from mace import data
    from mace.tools import torch_geometric

    keys = data.KeySpecification()
    graphs = [data.AtomicData.from_config(
        data.config_from_atoms(atoms, key_specification=keys, head_name=adapter.head),
        z_table=adapter.z_table, cutoff=adapter.cutoff, heads=adapter.heads)
        for atoms in atoms_list]
    for indices in batches:
        batch = torch_geometric.Batch.from_data_list([graphs[i] for i in indices]).to(device)
        with torch.inference_mode():
            adapter.model(batch.to_dict(), compute_force=False)["energy"].cpu()


def orb_architecture(size: str) -> dict:
    """The adapter's ``architecture`` option: Orb v3 direct at its published size, or tiny."""
    sizes = {} if size == "full" else {"latent_dim": 16, "base_mlp_hidden_dim": 32,
                                        "head_mlp_hidden_dim": 16, "num_message_passing_steps": 2}
    return {"function": "orb_v3_direct_architecture", **sizes,
            "system_config": {"radius": 6.0, "max_num_neighbors": 120}}


def orb_own(adapter, atoms_list, batches, device: str) -> None:  # noqa: ANN001
    """orb-models' own batched evaluation: graphs on the device, batch_graphs, predict."""
    import torch
    from orb_models.forcefield.atomic_system import ase_atoms_to_atom_graphs
    from orb_models.forcefield.base import batch_graphs

    graphs = [ase_atoms_to_atom_graphs(atoms, adapter.system_config, device=torch.device(device))
              for atoms in atoms_list]
    for indices in batches:
        batch = batch_graphs([graphs[i] for i in indices]).to(device)
        with torch.inference_mode():
            adapter.model.predict(batch)["energy"].cpu()


def mace_adapter(size: str, folder: Path):
    """The MACE adapter on :func:`mace_model` saved in ``folder``."""
    import torch

    from matteralign.models.registry import create_adapter

    path = folder / "mace.model"
    torch.save(mace_model(size), path)
    return create_adapter("mace-mp-0-medium", checkpoint=str(path))


def orb_adapter(size: str, folder: Path):
    """The Orb adapter on a random Orb v3 direct of :func:`orb_architecture` saved in ``folder``."""
    import torch
    from orb_models.forcefield import pretrained
    from orb_models.forcefield.atomic_system import SystemConfig

    from matteralign.models.orb import OrbAdapter
    from matteralign.models.registry import get_card

    architecture = orb_architecture(size)
    arguments = {k: v for k, v in architecture.items() if k not in ("function", "system_config")}
    model = pretrained.orb_v3_direct_architecture(
        device="cpu", system_config=SystemConfig(**architecture["system_config"]), **arguments)
    path = folder / "orb.ckpt"
    torch.save(model.state_dict(), path)
    card = get_card("orb-v3-direct-inf-omat").model_copy(
        update={"layers": numbered("message_passing", len(model.model.gnn_stacks))})
    return OrbAdapter(card, weights=str(path), architecture=architecture)


# UMA-S 1.1's backbone (fairchem's eSCNMDMoeBackbone): 4 blocks of 128 channels, lmax = mmax = 2,
# 32 linear experts, 6 Å cutoff, at most 300 neighbours.
UMA_S = {"sphere_channels": 128, "hidden_channels": 128, "edge_channels": 128,
         "num_distance_basis": 64, "num_layers": 4, "lmax": 2, "mmax": 2, "cutoff": 6.0,
         "max_neighbors": 300, "num_experts": 32}


def fairchem_adapter(size: str, folder: Path):
    """The UMA adapter (``omat`` head) on a random UMA-S (or the tests' tiny UMA) saved in
    fairchem's inference checkpoint format, from the tests' HydraModel configuration."""
    import hydra
    import torch
    from fairchem.core.units.mlip_unit.api.inference import MLIPInferenceCheckpoint

    from matteralign.models.card import LayerInfo
    from matteralign.models.fairchem import FINAL_LAYER, FairChemAdapter
    from matteralign.models.registry import get_card
    from tests.models.environments.tiny_fairchem import model_config, tasks_config

    config = model_config("uma")
    if size == "full":
        config["backbone"].update(UMA_S)
    torch.manual_seed(0)
    model = hydra.utils.instantiate(config)
    # Energy tasks only, so that fairchem's own predict returns (and collates) no forces.
    energy_tasks = [task for task in tasks_config("uma") if task["property"] == "energy"]
    path = folder / "uma.pt"
    torch.save(MLIPInferenceCheckpoint(
        model_config=config, model_state_dict=model.state_dict(),
        ema_state_dict=torch.optim.swa_utils.AveragedModel(model).state_dict(),
        tasks_config=energy_tasks), path)
    layers = numbered("block", len(model.backbone.blocks)) + [LayerInfo(name=FINAL_LAYER)]
    card = get_card("uma-s-1p1-omat").model_copy(update={"layers": layers})
    return FairChemAdapter(card, checkpoint=str(path), task="omat")


def fairchem_own(adapter, atoms_list, batches, device: str) -> None:  # noqa: ANN001
    """fairchem's own batched evaluation: ``AtomicData.from_ase`` graphs (as its calculator
    builds them), ``atomicdata_list_to_batch``, ``MLIPPredictUnit.predict``: energy only (the
    checkpoint has energy tasks only; the adapter switched forces and stress off in the
    backbone's regress config)."""
    import torch
    from fairchem.core.datasets.atomic_data import AtomicData, atomicdata_list_to_batch

    graphs = [AtomicData.from_ase(atoms, task_name=adapter.task, r_edges=False,
                                  radius=adapter._cutoff) for atoms in atoms_list]
    for indices in batches:
        batch = atomicdata_list_to_batch([graphs[i] for i in indices])
        with torch.inference_mode():
            adapter._unit.predict(batch)["energy"].cpu()


def pet_adapter(size: str, folder: Path):
    """The PET adapter on a random PET in metatrain's checkpoint format: metatrain's default PET
    hypers (cutoff 4.5 Å, d_pet 128, d_node 256, 2 GNN x 2 attention layers, the PET-MAD-S size
    class), or the tests' tiny PET, for elements 1-94 (as MACE and Orb)."""
    from unittest import mock

    import torch

    from matteralign.models.pet import PETAdapter
    from matteralign.models.registry import get_card
    from tests.models.environments import tiny_pet

    sizes = {"SIZE": {}} if size == "full" else {}  # {}: metatrain's defaults
    with mock.patch.multiple(tiny_pet, ELEMENTS=list(range(1, 95)), **sizes):
        model = tiny_pet.tiny_pet()
    path = folder / "pet.ckpt"
    torch.save(model.get_checkpoint(), path)
    return PETAdapter(get_card("pet-mad-s-v1.6.0"), checkpoint=str(path))


def pet_own(adapter, atoms_list, batches, device: str) -> None:  # noqa: ANN001
    """metatomic's own batched evaluation: ``MetatomicCalculator.run_model`` (vesin neighbour
    lists, one model call per batch), the energy output only."""
    import torch
    from metatomic.torch import ModelOutput

    outputs = {"energy": ModelOutput(unit="eV", sample_kind="system")}
    for indices in batches:
        with torch.inference_mode():
            result = adapter.calculator.run_model([atoms_list[i] for i in indices], outputs)
        result["energy"].block().values.cpu()


def mattersim_adapter(size: str, folder: Path):
    """The MatterSim adapter on a random M3GNet at MatterSim v1 1M's size (mattersim's default
    M3Gnet: 4 blocks, 128 units, 5 Å / 4 Å cutoffs) or the tests' tiny one."""
    import torch
    from mattersim.forcefield.m3gnet.m3gnet import M3Gnet

    from matteralign.models.mattersim import MatterSimAdapter
    from matteralign.models.registry import get_card
    from tests.models.environments.tiny_mattersim import save_tiny_mattersim

    path = folder / "mattersim.pth"
    if size == "full":
        torch.manual_seed(0)
        model = M3Gnet(device="cpu")
        torch.save({"model_name": "m3gnet", "model": model.state_dict(),
                    "model_args": model.get_model_args()}, path)
    else:
        save_tiny_mattersim(str(path))
    card = get_card("mattersim-v1-1m")  # four blocks; the tiny one has two
    if size != "full":
        card = card.model_copy(update={"layers": numbered("interaction", 2)})
    return MatterSimAdapter(card, checkpoint=str(path))


def mattersim_own(adapter, atoms_list, batches, device: str) -> None:  # noqa: ANN001
    """mattersim's own batched evaluation: its ``GraphConvertor`` graphs, a torch_geometric
    ``DataLoader`` over the same batches, ``Potential.predict_properties`` without forces or
    stress."""
    import torch
    from mattersim.forcefield.potential import Potential
    from torch_geometric.loader import DataLoader

    graphs = [adapter._convertor.convert(atoms.copy(), None, None, None) for atoms in atoms_list]
    potential = Potential(adapter.model, device=device)
    with torch.inference_mode():
        potential.predict_properties(DataLoader(graphs, batch_sampler=batches))


def inner(family: str, args: argparse.Namespace) -> dict:
    """Runner and own evaluation of ``family`` on the same structures (in its environment)."""
    import torch

    from matteralign.run.embed import embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny builders
    if not args.prepare_ahead:
        from matteralign.run import embed

        original = embed.prepared_items
        embed.prepared_items = lambda *a, ahead=False: original(*a, ahead=False)  # noqa: ARG005
    dataset = structures(args.n, args.data_root)
    atoms_list = [sample.atoms for sample in dataset.samples]
    batches = packed([len(atoms) for atoms in atoms_list], args.budget)
    build, own = FAMILIES[family]
    with tempfile.TemporaryDirectory() as folder:
        adapter = build(args.size, Path(folder))
        adapter.load(args.device, "float32")
        warm = structures(min(8, args.n), args.data_root)
        embed_dataset(adapter, warm, EmbeddingStore(Path(folder) / "warm"), layers="all",
                      batch_budget=args.budget, device=args.device,
                      prepare_workers=args.prepare_workers)
        own(adapter, [s.atoms for s in warm.samples], packed(
            [len(s.atoms) for s in warm.samples], args.budget), args.device)
        runner_runs, own_runs = [], []
        for repeat in range(args.repeats):  # alternated, so a busy moment hits both
            dataset = structures(args.n, args.data_root)  # unchecked samples, as a new study
            _sync(args.device)
            started = time.perf_counter()
            summary = embed_dataset(adapter, dataset,
                                    EmbeddingStore(Path(folder) / f"store-{repeat}"),
                                    layers="all", batch_budget=args.budget, device=args.device,
                                    prepare_workers=args.prepare_workers)
            _sync(args.device)
            runner_runs.append(time.perf_counter() - started)
            started = time.perf_counter()
            own(adapter, atoms_list, batches, args.device)
            _sync(args.device)
            own_runs.append(time.perf_counter() - started)
        runner_s, own_s = min(runner_runs), min(own_runs)
    device_name = (torch.cuda.get_device_name() if args.device.startswith("cuda")
                   else f"cpu, {args.threads} threads")
    return {
        "family": family, "size": args.size, "device": device_name, "n": len(dataset),
        "atoms": sum(len(a) for a in atoms_list), "budget": args.budget,
        "batches": len(batches), "layers_stored": len(adapter.layer_names),
        "prepare_workers": args.prepare_workers, "prepare_ahead": args.prepare_ahead,
        "embedded": summary.n_embedded, "failed": summary.n_failed,
        "runner_s": round(runner_s, 2), "own_s": round(own_s, 2),
        "runner_runs_s": [round(x, 2) for x in runner_runs],
        "own_runs_s": [round(x, 2) for x in own_runs],
        "runner_structures_per_s": round(len(dataset) / runner_s, 2),
        "own_structures_per_s": round(len(dataset) / own_s, 2),
        "ratio": round(own_s / runner_s, 3),
    }


# The adapter builder and own evaluation of each family.
FAMILIES = {"mace": (mace_adapter, mace_own), "orb": (orb_adapter, orb_own),
            "fairchem": (fairchem_adapter, fairchem_own), "pet": (pet_adapter, pet_own),
            "mattersim": (mattersim_adapter, mattersim_own)}


# ---- from the main environment -------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--budget", type=int, default=2048, help="atoms per batch")
    parser.add_argument("--size", default="full", choices=("full", "tiny"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs; best kept")
    parser.add_argument("--prepare-workers", type=int, default=0,
                        help="the runner's graph-building processes (study prepare_workers)")
    parser.add_argument("--prepare-ahead", type=int, default=1, choices=(0, 1),
                        help="0: prepare in the job's thread as before the background thread")
    parser.add_argument("--data-root", default=None, help="with mlearn: its structures")
    parser.add_argument("--inner", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(inner(args.inner, args)))
        return
    from matteralign.run.environments import get_environment, require_built

    rows = []
    for family in args.families:
        environment = get_environment(family)
        require_built(environment, f"family {family}")
        command = [str(environment.python), __file__, "--inner", family,
                   *[part for key, value in vars(args).items()
                     if key not in ("inner", "families") and value is not None
                     for part in (f"--{key.replace('_', '-')}", str(value))]]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{family} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
