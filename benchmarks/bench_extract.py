"""Structures per second of the crystal-MLIP adapters on CPU, batched runner vs per-structure ASE.

For each adapter: the batched runner (``matteralign.run.embed.embed_dataset``, every layer, mean
pooling, into a temporary store) over mlearn structures, split into graph building (``prepare``)
and forward passes (``embed``). For CHGNet and SevenNet also the package's own ASE calculator,
one structure at a time (``atoms.get_potential_energy()``), which is how one would otherwise
loop.

    python benchmarks/bench_extract.py --data-root ../shared/data            # 500 structures
    python benchmarks/bench_extract.py --data-root ../shared/data --quick    # 50 structures
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

ADAPTERS = [
    "chgnet-0.3.0", "chgnet-0.2.0", "sevennet-0", "sevennet-0-22may2024", "sevennet-l3i5",
    "hienet-v3", "diep-fold1", "m3gnet-mp-2021.2.8", "m3gnet-matpes-pbe",
    "m3gnet-matpes-r2scan", "tensornet-matpes-pbe", "tensornet-matpes-r2scan",
]


def ase_calculator(model_id: str):
    """The package's own per-structure ASE calculator for ``model_id``."""
    if model_id.startswith("chgnet"):
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        version = model_id.removeprefix("chgnet-")
        return CHGNetCalculator(CHGNet.load(model_name=version, verbose=False), use_device="cpu")
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator("7net-0", device="cpu")


def bench_batched(model_id: str, dataset, data_root: Path, budget: int) -> dict:
    from matteralign.models.registry import create_adapter
    from matteralign.run.embed import embed_dataset
    from matteralign.store.embedding_store import EmbeddingStore

    adapter = create_adapter(model_id, data_root=str(data_root))
    started = time.perf_counter()
    adapter.load("cpu", "float32")
    load_s = time.perf_counter() - started

    # Phases, measured directly: graph building, then batched forward passes.
    started = time.perf_counter()
    items = [adapter.prepare(sample) for sample in dataset]
    prepare_s = time.perf_counter() - started
    started = time.perf_counter()
    batch, used = [], 0
    for item in items:
        if batch and used + adapter.cost(item) > budget:
            adapter.embed(batch, adapter.layer_names, "mean")
            batch, used = [], 0
        batch.append(item)
        used += adapter.cost(item)
    if batch:
        adapter.embed(batch, adapter.layer_names, "mean")
    forward_s = time.perf_counter() - started

    # The whole runner, as `matteralign embed` runs it (store writes included).
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        summary = embed_dataset(adapter, dataset, EmbeddingStore(folder), layers="all",
                                batch_budget=budget)
        runner_s = time.perf_counter() - started
    n = len(dataset)
    return {
        "model": model_id, "n": n, "embedded": summary.n_embedded, "failed": summary.n_failed,
        "load_s": round(load_s, 2), "prepare_s": round(prepare_s, 2),
        "forward_s": round(forward_s, 2), "runner_s": round(runner_s, 2),
        "runner_structures_per_s": round(n / runner_s, 2),
    }


def bench_ase_loop(model_id: str, dataset) -> dict:
    calculator = ase_calculator(model_id)
    started = time.perf_counter()
    for sample in dataset:
        atoms = sample.atoms.copy()
        atoms.calc = calculator
        atoms.get_potential_energy()
    loop_s = time.perf_counter() - started
    n = len(dataset)
    return {"model": model_id, "n": n, "ase_loop_s": round(loop_s, 2),
            "ase_structures_per_s": round(n / loop_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path,
                        default=Path(os.environ.get("MATTERALIGN_DATA_ROOT", "../shared/data")))
    parser.add_argument("--n", type=int, default=500, help="mlearn structures (seeded subset)")
    parser.add_argument("--quick", action="store_true", help="50 structures, 4 adapters")
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--baseline", nargs="*", default=["chgnet-0.3.0", "sevennet-0"],
                        help="models also timed with their per-structure ASE calculator")
    parser.add_argument("--budget", type=int, default=2048, help="atoms per batch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from matteralign.data import mlearn

    n = 50 if args.quick else args.n
    models = args.models or (["chgnet-0.3.0", "sevennet-0", "diep-fold1", "m3gnet-matpes-pbe"]
                             if args.quick else ADAPTERS)
    dataset = mlearn.build(n=n, seed=0, data_root=args.data_root)
    atoms = sum(len(s.atoms) for s in dataset)
    print(f"# mlearn: {len(dataset)} structures, {atoms} atoms; torch threads {args.threads}; "
          f"batch budget {args.budget} atoms")
    rows = []
    for model_id in models:
        row = bench_batched(model_id, dataset, args.data_root, args.budget)
        if model_id in args.baseline:
            row.update(bench_ase_loop(model_id, dataset))
            row["speedup_runner_vs_ase"] = round(row["ase_loop_s"] / row["runner_s"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
