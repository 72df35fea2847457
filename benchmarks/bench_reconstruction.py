"""LFRE: matteralign's batched local fits against scikit-matter's per-point loop, same data.

Two synthetic feature sets (nonlinear views of one latent) of 2 * n_test samples, so the default
50/50 split gives n_test test points; both implementations run with scikit-matter's defaults and
n_local_points = k. Prints one JSON object: seconds of each, speed-up, and the largest difference
of the pointwise errors. scikit-matter always runs on the CPU; ``--device cuda`` moves ours.

    python benchmarks/bench_reconstruction.py --n-test 5000 --dx 128 --dy 128 --k 128
    python benchmarks/bench_reconstruction.py --n-test 5000 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from matteralign.metrics.reconstruction import gfre, pointwise_lfre


def features(n: int, dx: int, dy: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dx) and (n, dy) nonlinear views of a shared 16-dimensional latent, plus noise."""
    r = np.random.default_rng(seed)
    z = r.normal(size=(n, 16))
    x = np.tanh(z @ r.normal(size=(16, dx)) / 4) + 0.05 * r.normal(size=(n, dx))
    y = np.sin(z @ r.normal(size=(16, dy)) / 4) + 0.05 * r.normal(size=(n, dy))
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--dx", type=int, default=128)
    parser.add_argument("--dy", type=int, default=128)
    parser.add_argument("--k", type=int, default=None, help="n_local_points; default min(dx, dy)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of ours (the fastest is reported; scikit-matter runs once)")
    parser.add_argument("--skip-skmatter", action="store_true")
    parser.add_argument("--skmatter-blas-threads", type=int, default=1,
                        help="BLAS threads for scikit-matter's per-point loop (threadpoolctl); "
                        "one is its fastest on a shared machine, 0 leaves the default")
    args = parser.parse_args()
    k = args.k or min(args.dx, args.dy)
    x, y = features(2 * args.n_test, args.dx, args.dy)
    out: dict[str, object] = {
        "n_test": args.n_test, "dx": args.dx, "dy": args.dy, "k": k, "device": args.device,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    if args.device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
        pointwise_lfre(x[:200], y[:200], min(k, 50), device=args.device)  # warm-up
        torch.cuda.synchronize()
    out["load_average_start"] = os.getloadavg()[0]
    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = pointwise_lfre(x, y, k, device=args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out["matteralign_s"] = min(times)
    out["matteralign_runs_s"] = times
    out["matteralign_cpu_s"] = cpu[times.index(min(times))]  # CPU time of all threads
    out["lfre"] = float(np.sqrt(np.mean(ours**2)))
    out["gfre"] = gfre(x, y, device=args.device)
    if not args.skip_skmatter:
        from skmatter.metrics import pointwise_local_reconstruction_error
        from threadpoolctl import threadpool_limits

        limit = args.skmatter_blas_threads or None
        out["skmatter_blas_threads"] = limit or "default"
        t0, c0 = time.perf_counter(), time.process_time()
        with threadpool_limits(limit, user_api="blas"):
            ref = pointwise_local_reconstruction_error(x, y, k)
        out["skmatter_s"] = time.perf_counter() - t0
        out["skmatter_cpu_s"] = time.process_time() - c0
        out["speedup"] = out["skmatter_s"] / out["matteralign_s"]
        out["cpu_time_ratio"] = out["skmatter_cpu_s"] / out["matteralign_cpu_s"]
        out["max_abs_diff_pointwise"] = float(np.abs(ours - ref).max())
    out["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
