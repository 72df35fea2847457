"""Structures per second of the atoms-input adapters on CPU: batched runner vs per-structure loops.

For each adapter, one run of the batched runner (``matteralign.run.embed.embed_dataset``, every
layer, the card's pooling, into a temporary store), with the time spent in ``prepare`` (graph
building) and ``embed`` (batched forward passes, pooling) measured inside that same run.
Materials models run on seeded mlearn structures, molecule-only models on a seeded QM9 subset
restricted to H, C, N, O (the elements every molecular potential here takes).

For the models named in ``--baseline`` (CHGNet, SevenNet) two per-structure loops as a user would
write them without this package:

* ``ase``: the package's own ASE calculator, ``atoms.get_potential_energy()`` per structure.
  Both calculators always compute forces and stress too (CHGNet's ``task="efsm"`` default,
  SevenNet's model has its force/stress output built in): energy alone is not on offer.
* ``energy``: the package's own single-structure prediction without forces, also returning the
  per-atom features: CHGNet ``predict_structure(structure, task="e", return_atom_feas=True)``;
  SevenNet's model (forces and stress switched off, as in the adapter) called on the graph of one
  structure built by ``sevenn``'s own converter.

Wall and CPU (process) seconds are both recorded: on a shared machine CPU seconds are the steadier
number.

    python benchmarks/bench_extract.py --data-root ../shared/data --models chgnet-0.3.0 --n 500
    python benchmarks/bench_extract.py --data-root ../shared/data --quick    # 50 structures
    python benchmarks/bench_extract.py --data-root ../shared/data --models sevennet-0 \
        --workers 16 --threads 1 --loop-threads 16       # a pool of 16 one-thread runners
    python benchmarks/bench_extract.py --data-root ../shared/data --models sevennet-0 \
        --device cuda --budget 4096                      # runner and loops on the GPU
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ADAPTERS = [
    "chgnet-0.3.0", "chgnet-0.2.0", "sevennet-0", "sevennet-0-22may2024", "sevennet-l3i5",
    "hienet-v3", "diep-fold1", "m3gnet-mp-2021.2.8", "m3gnet-matpes-pbe",
    "m3gnet-matpes-r2scan", "tensornet-matpes-pbe", "tensornet-matpes-r2scan",
    "so3lr", "ani-1x", "m3gnet-ani1x-subset", "tensornet-ani1x-subset", "so3net-ani1x-subset",
    "soap", "acsf", "coulomb-eigenvalues", "composition", "random-gaussian",
]


class Clock:
    """Summed wall and CPU seconds of the calls it wraps."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def wrap(self, function):  # noqa: ANN001, ANN201
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - wall
                self.cpu += time.process_time() - cpu

        return timed


def dataset_for(model_id: str, n: int, data_root: Path):
    """mlearn for models that take materials, else QM9 molecules made of H, C, N, O only."""
    from matteralign.data import mlearn, qm9
    from matteralign.data.sample import Dataset
    from matteralign.models.registry import get_card

    if "materials" in get_card(model_id).domain:
        return "mlearn", mlearn.build(n=n, seed=0, data_root=data_root)
    pool = qm9.build(n=2 * n, seed=0)
    kept = [s for s in pool if set(s.atoms.get_chemical_symbols()) <= {"H", "C", "N", "O"}][:n]
    return "qm9-hcno", Dataset(pool.card, kept)


def bench_runner(model_id: str, dataset, data_root: Path, budget: int, device: str,
                 prepare_workers: int = 0) -> dict:
    """One run of the batched runner, with prepare / embed time measured inside it."""
    from matteralign.models.registry import create_adapter
    from matteralign.run.embed import embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    adapter = create_adapter(model_id, data_root=str(data_root))
    started = time.perf_counter()
    adapter.load(device, "float32")
    load_s = time.perf_counter() - started
    prepare, forward = Clock(), Clock()
    if not prepare_workers:  # with workers, prepare runs in other processes: not timed here
        adapter.prepare = prepare.wrap(adapter.prepare)
    adapter.embed = forward.wrap(adapter.embed)
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = time.perf_counter(), time.process_time()
        summary = embed_dataset(adapter, dataset, EmbeddingStore(folder), layers="all",
                                batch_budget=budget, device=device,
                                prepare_workers=prepare_workers)
        runner_s, runner_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    n = len(dataset)
    return {
        "model": model_id, "device": device, "n": n, "atoms": sum(len(s.atoms) for s in dataset),
        "embedded": summary.n_embedded, "failed": summary.n_failed, "budget": budget,
        "workers": 1, "threads": torch.get_num_threads(), "prepare_workers": prepare_workers,
        "load_s": round(load_s, 2), "prepare_s": round(prepare.wall, 2),
        "forward_s": round(forward.wall, 2), "runner_s": round(runner_s, 2),
        "prepare_cpu_s": round(prepare.cpu, 2), "forward_cpu_s": round(forward.cpu, 2),
        "runner_cpu_s": round(runner_cpu_s, 2),
        "runner_structures_per_s": round(n / runner_s, 3),
    }


def bench_runner_pool(model_id: str, dataset, data_root: Path, budget: int, device: str,
                      workers: int, threads: int) -> dict:
    """The runner through a pool of ``workers`` processes, ``threads`` torch threads each.

    Wall seconds from the pool's start to the last shard: worker start-up and every worker's
    model load are included (the single-process rows exclude the one load). Shards of
    ``ceil(n / 4 workers)`` structures keep every worker busy to the end.
    """
    from matteralign.models.registry import get_card
    from matteralign.run.executors import LocalExecutor, collect_summaries, plan_embed_jobs
    from matteralign.store.embedding_store import EmbeddingStore

    n = len(dataset)
    shard_size = -(-n // (4 * workers))
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddingStore(folder)
        jobs = plan_embed_jobs(get_card(model_id), {"data_root": str(data_root)}, dataset, store,
                               shard_size=shard_size, batch_budget=budget, device=device,
                               cpu_threads=threads)
        wall = time.perf_counter()
        with LocalExecutor(workers, device) as executor:
            (summary,), failures = collect_summaries(jobs, executor.run(jobs), store)
        runner_s = time.perf_counter() - wall
    if failures:
        raise RuntimeError(f"{model_id}: {failures[0][2]}")
    return {
        "model": model_id, "device": device, "n": n, "atoms": sum(len(s.atoms) for s in dataset),
        "embedded": summary.n_embedded, "failed": summary.n_failed, "budget": budget,
        "workers": workers, "threads": threads, "shard_size": shard_size,
        "runner_s": round(runner_s, 2), "runner_structures_per_s": round(n / runner_s, 3),
    }


def ase_calculator(model_id: str, device: str):
    """The package's own per-structure ASE calculator for ``model_id``."""
    if model_id.startswith("chgnet"):
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        version = model_id.removeprefix("chgnet-")
        return CHGNetCalculator(CHGNet.load(model_name=version, verbose=False), use_device=device)
    from sevenn.calculator import SevenNetCalculator

    from matteralign.models.registry import get_card

    return SevenNetCalculator(get_card(model_id).options.get("checkpoint", "7net-0"),
                              device=device)


def energy_predictor(model_id: str, device: str):
    """A function atoms → (energy in eV, per-atom features) through the package's own API."""
    if model_id.startswith("chgnet"):
        from chgnet.model import CHGNet
        from pymatgen.io.ase import AseAtomsAdaptor

        model = CHGNet.load(model_name=model_id.removeprefix("chgnet-"), verbose=False,
                            use_device=device).eval()

        def predict_chgnet(atoms):  # noqa: ANN001, ANN202
            out = model.predict_structure(AseAtomsAdaptor.get_structure(atoms), task="e",
                                          return_atom_feas=True)
            return float(out["e"]) * len(atoms), out["atom_fea"]

        return predict_chgnet

    import sevenn._keys as KEY
    import sevenn.util as util
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    from matteralign.models.registry import get_card

    checkpoint = util.load_checkpoint(get_card(model_id).options.get("checkpoint", "7net-0"))
    model = checkpoint.build_model()
    model.delete_module_by_key("force_output")
    model.edge_embedding.is_stress = False  # as in SevenNetAdapter.load
    model.key_grad = None
    model.set_is_batch_data(False)
    model.to(device).eval()
    cutoff = float(checkpoint.config[KEY.CUTOFF])

    def predict_sevennet(atoms):  # noqa: ANN001, ANN202
        data = AtomGraphData.from_numpy_dict(
            unlabeled_atoms_to_graph(atoms, cutoff, with_shift=True)).to(device)
        with torch.inference_mode():
            out = model(data)
        return float(out[KEY.PRED_TOTAL_ENERGY]), out[KEY.NODE_FEATURE]

    return predict_sevennet


def bench_loop(model_id: str, dataset, kind: str, device: str) -> dict:
    """Seconds of a per-structure loop: ``kind`` "ase" (calculator) or "energy" (own API)."""
    if kind == "ase":
        calculator = ase_calculator(model_id, device)

        def step(atoms):  # noqa: ANN001, ANN202
            atoms.calc = calculator
            return atoms.get_potential_energy()
    else:
        predict = energy_predictor(model_id, device)

        def step(atoms):  # noqa: ANN001, ANN202
            return predict(atoms)[0]

    energies = []
    wall, cpu = time.perf_counter(), time.process_time()
    for sample in dataset:
        energies.append(step(sample.atoms.copy()))
    loop_s, loop_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    return {f"{kind}_loop_threads": torch.get_num_threads(),
            f"{kind}_loop_s": round(loop_s, 2), f"{kind}_loop_cpu_s": round(loop_cpu_s, 2),
            f"{kind}_structures_per_s": round(len(dataset) / loop_s, 3),
            f"{kind}_energy_sum_eV": round(float(np.sum(energies)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path,
                        default=Path(os.environ.get("MATTERALIGN_DATA_ROOT", "../shared/data")))
    parser.add_argument("--n", type=int, default=500,
                        help="structures: seeded mlearn subset, or QM9 H/C/N/O molecules")
    parser.add_argument("--quick", action="store_true", help="50 structures, 4 adapters")
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--baseline", nargs="*", default=["chgnet-0.3.0", "sevennet-0"],
                        help="models also timed with per-structure loops (ASE and energy-only)")
    parser.add_argument("--loops", nargs="*", default=["ase", "energy"],
                        help="which per-structure loops to time for the baseline models")
    parser.add_argument("--budget", type=int, default=2048, help="atoms per batch")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads of the runner (of each worker with --workers)")
    parser.add_argument("--loop-threads", type=int, default=None,
                        help="torch threads of the per-structure loops (default: --threads)")
    parser.add_argument("--workers", type=int, default=1,
                        help="runner processes (a local process pool when above 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for runner and loops")
    parser.add_argument("--prepare-workers", type=int, default=0,
                        help="processes that build graphs while the model runs (runner only)")
    parser.add_argument("--out", type=Path, default=None, help="append the rows (JSON lines)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    n = 50 if args.quick else args.n
    models = args.models or (["chgnet-0.3.0", "sevennet-0", "diep-fold1", "m3gnet-matpes-pbe"]
                             if args.quick else ADAPTERS)
    print(f"# {args.device}; runner {args.workers} process(es) x {args.threads} torch "
          f"threads; loops {args.loop_threads or args.threads} threads; batch budget "
          f"{args.budget} atoms; load {os.getloadavg()[0]:.2f}")
    for model_id in models:
        name, dataset = dataset_for(model_id, n, args.data_root)
        if args.workers > 1:
            runner = bench_runner_pool(model_id, dataset, args.data_root, args.budget,
                                       args.device, args.workers, args.threads)
        else:
            runner = bench_runner(model_id, dataset, args.data_root, args.budget, args.device,
                                  args.prepare_workers)
        row = {"dataset": name, **runner}
        if model_id in args.baseline:
            torch.set_num_threads(args.loop_threads or args.threads)
            for kind in args.loops:
                row.update(bench_loop(model_id, dataset, kind, args.device))
                row[f"speedup_runner_vs_{kind}"] = round(row[f"{kind}_loop_s"] / row["runner_s"],
                                                         2)
                if "runner_cpu_s" in row:  # a pool's CPU seconds are the workers'
                    row[f"cpu_speedup_runner_vs_{kind}"] = round(
                        row[f"{kind}_loop_cpu_s"] / row["runner_cpu_s"], 2)
            torch.set_num_threads(args.threads)
        row["loadavg_end"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
