"""PET on the CPU: the batched runner vs metatomic's own ASE calculator, one structure at a time.

Run with the ``pet`` environment's Python (``matteralign env list`` shows its folder)::

    <pet env>/bin/python benchmarks/bench_pet_cpu.py --data-root ../shared/data --n 100

A full-size PET with random weights (metatrain's default PET hypers, elements 1-86; speed does
not depend on weight values) is exported as a metatomic model and read by ``PETAdapter`` under
the ``pet-mad-s-v1.0.2`` card. Each round times :func:`bench_extract.bench_runner` (the runner end
to end, both layers) and then ``MetatomicCalculator(do_gradients_with_energy=False)`` with
``atoms.get_potential_energy()`` per structure (energy only, no forces), on ``--n`` seeded mlearn
structures. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def export_random_pet(path: Path) -> int:
    """Save a full-size random-weight PET as a metatomic model at ``path``; its parameter count."""
    from metatrain.pet import PET
    from metatrain.utils.architectures import get_default_hypers
    from metatrain.utils.data import DatasetInfo
    from metatrain.utils.data.target_info import get_energy_target_info

    torch.manual_seed(0)
    energy = get_energy_target_info("energy", {"quantity": "energy", "unit": "eV"})
    info = DatasetInfo(length_unit="angstrom", atomic_types=list(range(1, 87)),
                       targets={"energy": energy})
    model = PET(get_default_hypers("pet")["model"], info)
    model.export().save(str(path))
    return sum(parameter.numel() for parameter in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=int, default=2048, help="atoms per batch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from bench_extract import bench_runner
    from metatomic_ase import MetatomicCalculator

    from matteralign.data import mlearn
    from matteralign.models import registry

    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "pet.pt"
        parameters = export_random_pet(model)
        create = registry.create_adapter  # bench_runner creates the adapter by id
        registry.create_adapter = lambda model_id, **options: create(model_id,
                                                                     checkpoint=str(model))
        dataset = mlearn.build(n=args.n, seed=0, data_root=args.data_root)
        calculator = MetatomicCalculator(str(model), do_gradients_with_energy=False,
                                         uncertainty_threshold=None, neighbor_skin=0.0)
        out = {"parameters": parameters, "n": len(dataset),
               "atoms": sum(len(s.atoms) for s in dataset), "threads": args.threads}
        for round_ in range(args.rounds):
            runner = bench_runner("pet-mad-s-v1.0.2", dataset, args.data_root, args.budget, "cpu")
            out[f"runner_s_{round_}"] = runner["runner_s"]
            out[f"forward_s_{round_}"] = runner["forward_s"]
            started = time.perf_counter()
            for sample in dataset:
                atoms = sample.atoms.copy()
                atoms.calc = calculator
                atoms.get_potential_energy()
            out[f"ase_loop_s_{round_}"] = round(time.perf_counter() - started, 2)
        out["load"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
