"""Convergence as a curve: train one architecture (matgl M3GNet) on growing MoNbTaW fractions.

The paper's convergence claim (alignment to the best model rises as the energy error falls) is a
correlation across unrelated models. Here one architecture is trained on nested fractions of one
training pool with two seeds each; every checkpoint is then read back through matteralign's own
matgl adapter (``create_adapter("m3gnet-matpes-pbe", path=...)``), which gives the held-out
embeddings (last block, mean over atoms) and predicted energies. Energy error: MAE of the total
energy per atom on a fixed held-out set. Alignment: CKNNA (k = 25, l2) between every pair of
ladder models on the held-out set, and to the lowest-error ladder model; Spearman rho of error
vs alignment-to-best with an interval from resampling models
(:func:`matteralign.analysis.convergence.rank_correlation`).

    python benchmarks/training_ladder.py --data-root ../shared/data --out /tmp/ladder \\
        --json benchmarks/training_ladder_cpu2.json [--device cuda]

Checkpoints (model.json, model.pt, state.pt; about 0.4 MB each at the default width) go under
--out. Small on purpose: width 32, energies only (no forces), a few epochs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from matteralign.analysis.convergence import rank_correlation
from matteralign.data.registry import load_dataset
from matteralign.metrics import pairwise
from matteralign.models.registry import create_adapter

ELEMENTS = ("Mo", "Nb", "Ta", "W")
#: Any matgl M3GNet card: the adapter reads the checkpoint's own configuration from --out. Its
#: ``aggregate_on_destination`` correction (for checkpoints of older matgl) is switched off: these
#: checkpoints are trained with the matgl installed here.
ADAPTER_CARD = "m3gnet-matpes-pbe"
ADAPTER_OPTIONS = {"aggregate_on_destination": False}


def element_references(samples: list, energies: np.ndarray) -> np.ndarray:
    """Per-element energies r (eV, ``ELEMENTS`` order): least squares of the energy per atom,
    E_i / N_i = sum_e (n_ie / N_i) r_e, the quantity the training loss and the error are on."""
    counts = np.array([[list(s.atoms.get_chemical_symbols()).count(e) for e in ELEMENTS]
                       for s in samples], dtype=float)
    natoms = counts.sum(1, keepdims=True)
    refs, *_ = np.linalg.lstsq(counts / natoms, energies / natoms[:, 0], rcond=None)
    return refs


def new_potential(refs: np.ndarray, width: int, seed: int):
    """An untrained M3GNet potential (3 blocks, ``width`` features) with element references."""
    from matgl.apps.pes import Potential
    from matgl.models import M3GNet

    torch.manual_seed(seed)
    model = M3GNet(element_types=ELEMENTS, is_intensive=False, dim_node_embedding=width,
                   dim_edge_embedding=width, units=width, nblocks=3)
    return Potential(model=model, element_refs=refs, calc_forces=False, calc_stresses=False)


def batches(items: list, size: int, rng: np.random.Generator | None):
    """Index batches of ``items`` (shuffled when ``rng`` is given)."""
    order = rng.permutation(len(items)) if rng is not None else np.arange(len(items))
    for start in range(0, len(items), size):
        yield order[start:start + size]


def forward(potential, prepared: list, index: np.ndarray, device: str) -> torch.Tensor:
    """Total energies (eV) of ``prepared[index]`` (the adapter's graphs) with gradients on.

    matgl's ``Potential.forward`` runs under ``no_grad`` when forces and stresses are off, so
    training sets the Cartesian positions and periodic shifts from the fractional coordinates
    and lattice here (pos = f L, shift = o L) and calls the model and element references.
    """
    from torch_geometric.data import Batch

    chosen = [prepared[i] for i in index]
    g = Batch.from_data_list([p.graph for p in chosen]).to(device)
    lattice = torch.cat([p.extra[0] for p in chosen]).to(device)
    state = torch.stack([p.extra[1] for p in chosen]).to(device)
    g.lattice = lattice[g.batch[g.edge_index[0]]]
    g.pbc_offshift = (g.pbc_offset.unsqueeze(-1) * g.lattice).sum(dim=1)
    g.pos = (g.frac_coords.unsqueeze(-1) * lattice[g.batch]).sum(dim=1)
    energy = potential.model(g=g, state_attr=state, l_g=None).reshape(-1)
    return potential.data_std * energy + potential.data_mean + potential.element_refs(g).reshape(-1)


def train_one(train: list, energies: np.ndarray, epochs: int, width: int, seed: int,
              device: str, folder: Path, batch_size: int, lr: float) -> dict:
    """Train one potential on ``train`` (per-atom energy MSE), save it to ``folder``."""
    refs = element_references(train, energies)
    potential = new_potential(refs, width, seed)
    folder.mkdir(parents=True, exist_ok=True)
    potential.save(folder)  # the adapter builds graphs with the checkpoint's elements and cutoff
    adapter = create_adapter(ADAPTER_CARD, path=str(folder), **ADAPTER_OPTIONS)
    adapter.load("cpu")
    prepared = [adapter.prepare(s) for s in train]
    adapter.unload()
    natoms = torch.tensor([p.n_atoms for p in prepared], dtype=torch.float32, device=device)
    target = torch.tensor(energies, dtype=torch.float32, device=device)
    potential = potential.to(device).train()
    optimiser = torch.optim.AdamW(potential.parameters(), lr=lr)
    steps = epochs * int(np.ceil(len(train) / batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    rng = np.random.default_rng(seed)
    clock = time.perf_counter()
    for _ in range(epochs):
        for index in batches(prepared, batch_size, rng):
            idx = torch.as_tensor(index, device=device)
            pred = forward(potential, prepared, index, device)
            loss = torch.mean(((pred - target[idx]) / natoms[idx]) ** 2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    seconds = time.perf_counter() - clock
    potential.cpu().eval().save(folder)
    return {"train_seconds": seconds, "steps": steps}


def evaluate(folder: Path, test: list, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Held-out embeddings (last block, mean pooled) and energies, through matteralign's adapter."""
    adapter = create_adapter(ADAPTER_CARD, path=str(folder), **ADAPTER_OPTIONS)
    adapter.load(device)
    layer = adapter.layer_names[-1]
    pooled, energy = [], []
    for index in batches(test, 32, None):
        out = adapter.embed([adapter.prepare(test[i]) for i in index], [layer], "mean")
        pooled.append(out.pooled[layer])
        energy.append(out.energy)
    adapter.unload()
    return np.concatenate(pooled), np.concatenate(energy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the checkpoints")
    parser.add_argument("--json", type=Path, required=True, help="results file")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pool", type=int, default=320, help="training pool (structures)")
    parser.add_argument("--test", type=int, default=200, help="held-out structures")
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.0625, 0.125, 0.25, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=4, help="epochs at least")
    parser.add_argument("--min-steps", type=int, default=40,
                        help="optimiser steps at least (small fractions get more epochs)")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-3, help="AdamW, cosine decay to 0")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = load_dataset("monbtaw", data_root=args.data_root)
    order = np.random.default_rng(12345).permutation(len(data.samples))
    test = [data.samples[i] for i in order[:args.test]]
    pool = [data.samples[i] for i in order[args.test:args.test + args.pool]]
    test_e = np.array([s.labels["energy"] for s in test], dtype=float)
    test_n = np.array([len(s.atoms) for s in test], dtype=float)
    runs, embeddings = [], {}
    for fraction in args.fractions:
        for seed in args.seeds:
            n = max(8, round(fraction * len(pool)))
            name = f"m3gnet-f{fraction:g}-s{seed}"
            folder = args.out / name
            done = folder / "heldout.npz"
            if not done.is_file():  # resumable: a finished model keeps its held-out results
                chosen = np.random.default_rng(seed).permutation(len(pool))[:n]
                train = [pool[i] for i in chosen]
                epochs = max(args.epochs, int(np.ceil(args.min_steps * args.batch_size / n)))
                info = train_one(train, np.array([s.labels["energy"] for s in train], dtype=float),
                                 epochs, args.width, seed, args.device, folder, args.batch_size,
                                 args.lr)
                x, energy = evaluate(folder, test, args.device)
                np.savez(done, embedding=x, energy=energy, epochs=epochs, **info)
            saved = np.load(done)
            embeddings[name] = saved["embedding"]
            mae = float(np.mean(np.abs(saved["energy"] - test_e) / test_n))
            runs.append({"model": name, "fraction": fraction, "seed": seed, "n_train": n,
                         "epochs": int(saved["epochs"]), "steps": int(saved["steps"]),
                         "train_seconds": float(saved["train_seconds"]),
                         "mae_ev_per_atom": mae})
            print(f"{name}: n_train {n}, held-out MAE {1000 * mae:.1f} meV/atom, "
                  f"{float(saved['train_seconds']):.0f} s", flush=True)
    matrix = pairwise(embeddings, "cknna-k25", preprocessing=["l2"]).matrix
    best = min(runs, key=lambda r: r["mae_ev_per_atom"])["model"]
    for run in runs:
        others = [m for m in matrix.index if m != run["model"]]
        run["alignment_to_best"] = (float("nan") if run["model"] == best
                                    else float(matrix.loc[run["model"], best]))
        run["mean_alignment_to_others"] = float(matrix.loc[run["model"], others].mean())
    rest = [r for r in runs if r["model"] != best]
    rho = rank_correlation(np.array([r["mae_ev_per_atom"] for r in rest]),
                           np.array([r["alignment_to_best"] for r in rest]), "spearman")
    rho_all = rank_correlation(np.array([r["mae_ev_per_atom"] for r in runs]),
                               np.array([r["mean_alignment_to_others"] for r in runs]), "spearman")
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), "
                   f"device {args.device}",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("out", "json", "data_root")},
        "metric": "cknna-k25 (l2), held-out MoNbTaW structures",
        "best": best,
        "spearman_mae_vs_alignment_to_best": vars(rho),
        "spearman_mae_vs_mean_alignment_to_others": vars(rho_all),
        "runs": runs,
        "cknna_matrix": {a: {b: float(matrix.loc[a, b]) for b in matrix.columns}
                         for a in matrix.index},
    }
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"best {best}; Spearman rho(MAE, alignment to best) = {rho.value:.3f} "
          f"[{rho.ci_low:.3f}, {rho.ci_high:.3f}], n = {rho.n}")


if __name__ == "__main__":
    main()
