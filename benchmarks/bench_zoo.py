"""Foundation potentials in their own environments: runner vs the package's own batched evaluation.

For each family (MACE, Orb) a full-size architecture with random weights (speed does not depend
on weight values), built with the package's own constructors inside the family's model
environment, embeds the same structures twice, side by side in one process:

* ``runner``: :func:`matteralign.run.embed.embed_dataset` with the family's adapter, every layer
  pooled and stored, batches packed under an atom budget; graphs built in ``prepare``.
* ``own``: the package's own batched evaluation of the same structures: MACE, mace's
  ``AtomicData`` graphs through its ``torch_geometric`` ``DataLoader`` and
  ``model(batch, compute_force=False)`` (energy only, as ``mace eval_configs`` without forces);
  Orb, ``ase_atoms_to_atom_graphs`` (on the device, orb-models' own default there) and
  ``batch_graphs`` then ``model.predict`` of a direct model (no autograd).

Both include graph building, both use the same batches (greedy packing under the atom budget),
both run once on a few structures first to warm up, then alternate ``--repeats`` times (the
fastest run of each is kept). The ratio is runner structures/s over own structures/s (target: at
least 0.8).

Run from the main environment; each family runs in its environment's Python (built beforehand,
``matteralign env create mace orb``; offline: ``PIP_NO_INDEX=1 PIP_FIND_LINKS=<wheels folder>``):

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

FAMILIES = ("mace", "orb")


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


def adapter_for(family: str, size: str, folder: Path):
    """The family's adapter on a random full-size (or tiny) model saved in ``folder``."""
    import torch

    from matteralign.models.card import LayerInfo
    from matteralign.models.registry import create_adapter, get_card

    if family == "mace":
        path = folder / "mace.model"
        torch.save(mace_model(size), path)
        return create_adapter("mace-mp-0-medium", checkpoint=str(path))
    from orb_models.forcefield import pretrained
    from orb_models.forcefield.atomic_system import SystemConfig

    from matteralign.models.orb import OrbAdapter

    architecture = orb_architecture(size)
    arguments = {k: v for k, v in architecture.items() if k not in ("function", "system_config")}
    model = pretrained.orb_v3_direct_architecture(
        device="cpu", system_config=SystemConfig(**architecture["system_config"]), **arguments)
    path = folder / "orb.ckpt"
    torch.save(model.state_dict(), path)
    steps = len(model.model.gnn_stacks)
    card = get_card("orb-v3-direct-inf-omat").model_copy(update={
        "layers": [LayerInfo(name=f"message_passing_{i}") for i in range(steps)]})
    return OrbAdapter(card, weights=str(path), architecture=architecture)


def inner(family: str, args: argparse.Namespace) -> dict:
    """Runner and own evaluation of ``family`` on the same structures (in its environment)."""
    import torch

    from matteralign.run.embed import embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    torch.set_num_threads(args.threads)
    dataset = structures(args.n, args.data_root)
    atoms_list = [sample.atoms for sample in dataset.samples]
    batches = packed([len(atoms) for atoms in atoms_list], args.budget)
    own = mace_own if family == "mace" else orb_own
    with tempfile.TemporaryDirectory() as folder:
        adapter = adapter_for(family, args.size, Path(folder))
        adapter.load(args.device, "float32")
        warm = structures(min(8, args.n), args.data_root)
        embed_dataset(adapter, warm, EmbeddingStore(Path(folder) / "warm"), layers="all",
                      batch_budget=args.budget, device=args.device)
        own(adapter, [s.atoms for s in warm.samples], packed(
            [len(s.atoms) for s in warm.samples], args.budget), args.device)
        runner_runs, own_runs = [], []
        for repeat in range(args.repeats):  # alternated, so a busy moment hits both
            _sync(args.device)
            started = time.perf_counter()
            summary = embed_dataset(adapter, dataset,
                                    EmbeddingStore(Path(folder) / f"store-{repeat}"),
                                    layers="all", batch_budget=args.budget, device=args.device)
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
        "embedded": summary.n_embedded, "failed": summary.n_failed,
        "runner_s": round(runner_s, 2), "own_s": round(own_s, 2),
        "runner_runs_s": [round(x, 2) for x in runner_runs],
        "own_runs_s": [round(x, 2) for x in own_runs],
        "runner_structures_per_s": round(len(dataset) / runner_s, 2),
        "own_structures_per_s": round(len(dataset) / own_s, 2),
        "ratio": round(own_s / runner_s, 3),
    }


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
