"""Wall time of permutation nulls for every model pair (:mod:`matteralign.metrics.calibration`).

Synthetic models share a latent signal (so pairs are aligned) plus their own noise. Times the
per-model work (neighbour graphs, done once) and the rounds (all M (M - 1) ordered pairs of a
round from one relabelled-edge lookup), and extrapolates the measured per-round time to
``--target-rounds`` (labelled as an extrapolation unless ``--rounds`` equals it).

Run (the issue's size, 1,000 rounds of 60 models at N = 5,000, CKNNA k = 25)::

    .venv/bin/python benchmarks/bench_calibration.py --models 60 --n 5000 --rounds 1000

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=60)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--metric", default="cknna-k25")
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--target-rounds", type=int, default=1000)
    ap.add_argument("--device", default="cpu", help="neighbour search device (rounds run on CPU)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from matteralign.metrics import get_metric
    from matteralign.metrics._backend import resolve_backend
    from matteralign.metrics.calibration import _KnnNull, calibrate, null_matrices, permutations
    from matteralign.metrics.engine import NeighbourGraphKernel, kernel_for, prepare_inputs
    from matteralign.metrics.neighbours import nearest_neighbours

    rng = np.random.default_rng(args.seed)
    latent = rng.normal(size=(args.n, 8))
    emb = {f"model{i:02d}": latent @ rng.normal(size=(8, args.dim))
           + rng.uniform(0.3, 2.0) * rng.normal(size=(args.n, args.dim))
           for i in range(args.models)}
    spec = get_metric(args.metric)
    be = resolve_backend(args.device)
    names, xs = prepare_inputs(emb, spec, ())
    perms = permutations(args.n, args.rounds, args.seed)
    out: dict[str, object] = {
        "metric": spec.id, "models": args.models, "n": args.n, "dim": args.dim,
        "rounds": args.rounds, "device": str(be.device), "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    kern = kernel_for(spec, be)
    if isinstance(kern, NeighbourGraphKernel):
        t0 = time.perf_counter()
        graphs = [nearest_neighbours(x, spec.k, "inner", be, name=nm)
                  for x, nm in zip(xs, names, strict=True)]
        t1 = time.perf_counter()
        fast = _KnnNull(kern.mode, graphs)
        t2 = time.perf_counter()
        null = np.empty((args.rounds, len(xs), len(xs)))
        for r in range(args.rounds):
            null[r] = fast.round(perms[r])
        t3 = time.perf_counter()
        out |= {"graphs_s": t1 - t0, "index_s": t2 - t1, "rounds_s": t3 - t2}
    else:
        t0 = time.perf_counter()
        null = null_matrices(spec, xs, names, be, perms, progress=False)
        t3 = time.perf_counter()
        t2 = t0
        out |= {"rounds_s": t3 - t0}
    per_round = (t3 - t2) / args.rounds
    calibrate(np.zeros((len(xs), len(xs))), null)
    out |= {
        "per_round_s": per_round,
        "ordered_pairs_per_round": len(xs) * (len(xs) - 1),
        "target_rounds": args.target_rounds,
        "target_total_s": out.get("graphs_s", 0.0) + out.get("index_s", 0.0)
        + per_round * args.target_rounds,
        "target_is_extrapolated": args.rounds != args.target_rounds,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
