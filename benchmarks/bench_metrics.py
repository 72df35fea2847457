"""Benchmark of the metrics engine: cached all-pairs engine vs pair-by-pair dense recomputation.

Usage: python benchmarks/bench_metrics.py [--quick] [--speedup] [--matrix] [--models M] [--n N]
[--metrics ids] [--json out.json] ...  (--matrix runs each measure in its own process; peak RSS is
that child's ru_maxrss, from os.wait4)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def synthetic(m: int, n: int, widths: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    """M models sharing a 64-d latent: tanh(z W_m) + model noise, float32, widths cycling."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 64))
    out = {}
    for i in range(m):
        d = widths[i % len(widths)]
        w = rng.normal(size=(64, d)) / 8.0
        out[f"model{i:02d}"] = (np.tanh(z @ w) + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
    return out


def cknna_dense_pair(a, b, k: int) -> float:
    """platonic-rep's algorithm for one pair (dense N x N kernels, top-k masks, O(N^3) HSIC term),
    with the same definition as the engine (no 1e-6, no flooring, lowest-index ties)."""
    import torch

    def hsic(kk, ll):
        n = kk.shape[0]
        kk = kk.clone().fill_diagonal_(0)
        ll = ll.clone().fill_diagonal_(0)
        one = torch.ones(n, 1, dtype=kk.dtype)
        return ((kk * ll.T).sum() + kk.sum() * ll.sum() / ((n - 1) * (n - 2))
                - 2.0 / (n - 2) * (one.T @ kk @ ll @ one).squeeze()) / (n * (n - 3))

    def mask(kk):
        s = kk.clone().fill_diagonal_(-torch.inf)
        idx = torch.sort(-s, dim=1, stable=True).indices[:, :k]
        return torch.zeros_like(kk).scatter_(1, idx, 1.0)

    kk, ll = a @ a.T, b @ b.T
    ma, mb = mask(kk), mask(ll)
    m = ma * mb
    return float(hsic(m * kk, m * ll) / torch.sqrt(hsic(ma * kk, ma * kk) * hsic(mb * ll, mb * ll)))


def speedup(m: int, n: int, d: int, k: int) -> dict:
    import torch

    from matteralign.metrics import l2_normalise, pairwise

    emb = {nm: l2_normalise(x) for nm, x in synthetic(m, n, [d]).items()}
    t0 = time.perf_counter()
    res = pairwise(emb, "cknna", k=k, progress=False)
    t_engine = time.perf_counter() - t0
    names = list(emb)
    ts = {nm: torch.as_tensor(x) for nm, x in emb.items()}
    t0 = time.perf_counter()
    dense = np.full((m, m), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names[i + 1:], start=i + 1):
            dense[i, j] = cknna_dense_pair(ts[a], ts[b], k)
    t_dense = time.perf_counter() - t0
    upper = np.triu(np.ones((m, m), dtype=bool), 1)
    diff = float(np.max(np.abs(res.matrix.values[upper] - dense[upper]) / np.abs(dense[upper])))
    return {"what": f"CKNNA k={k}, M={m}, N={n}, D={d}, float64: engine all {m * (m - 1)} "
                    f"ordered pairs, dense the {m * (m - 1) // 2} unordered pairs",
            "engine_s": t_engine, "dense_s": t_dense, "ratio": t_dense / t_engine,
            "max_rel_diff": diff}


def one_metric(metric: str, m: int, n: int, widths: list[int]) -> dict:
    from matteralign.metrics import pairwise

    emb = synthetic(m, n, widths)
    pre = ("l2",) if metric.startswith(("cknna", "mknn")) else ()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = pairwise(emb, metric, preprocessing=pre, progress=False)
    dt = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    vals = res.matrix.values if res.matrix is not None else res.per_model.values
    if res.matrix is not None:
        vals = vals[~np.eye(m, dtype=bool)]
    return {"metric": res.metric.id, "seconds": dt, "peak_rss_gib": rss1 / 2**20,
            "extra_peak_gib": (rss1 - rss0) / 2**20, "preprocessing": "|".join(pre),
            "median_value": float(np.nanmedian(vals))}


def run_child(metric: str, m: int, n: int, widths: str) -> dict:
    """One measure in a fresh process; peak RSS from that child's own rusage (os.wait4)."""
    cmd = [sys.executable, __file__, "--single", metric, "--models", str(m), "--n", str(n),
           "--widths", widths]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    row = {"metric": metric, "models": m, "n": n, "wall_s": wall,
           "child_maxrss_gib": usage.ru_maxrss / 2**20, "returncode": proc.returncode}
    if proc.returncode:
        row["error"] = stderr.strip()[-300:]
    else:
        row.update(json.loads(stdout.strip().splitlines()[-1]))
    return row


def markdown_row(r: dict) -> str:
    if r["returncode"]:
        return (f"| {r['metric']} | {r['models']} | {r['n']} | failed after {r['wall_s']:.0f} s: "
                f"{r['error'][-120:]} | | |")
    return (f"| {r['metric']} | {r['models']} | {r['n']} | {r['seconds']:.1f} | "
            f"{r['child_maxrss_gib']:.2f} | {r['median_value']:.4f} |")


def main() -> None:
    from matteralign.metrics import list_metrics

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--speedup", action="store_true",
                    help="engine (all ordered pairs) vs dense CKNNA (unordered pairs)")
    ap.add_argument("--matrix", action="store_true", help="M x M matrices for every measure")
    ap.add_argument("--models", type=int, default=60)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--widths", default="128,256,512,1024")
    ap.add_argument("--metrics", default=",".join(list_metrics()),
                    help="comma-separated ids (default: every registered measure)")
    ap.add_argument("--json", help="write the --matrix rows (and the run's context) here")
    ap.add_argument("--speedup-models", type=int, default=16)
    ap.add_argument("--speedup-n", type=int, default=2000)
    ap.add_argument("--speedup-dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--single", help=argparse.SUPPRESS)
    a = ap.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    if a.single:
        print(json.dumps(one_metric(a.single, a.models, a.n, widths)))
        return
    if a.quick:
        a.models, a.n, a.speedup_models, a.speedup_n = 6, 600, 6, 400
    if not (a.speedup or a.matrix):
        a.speedup = a.matrix = True
    if a.speedup:
        r = speedup(a.speedup_models, a.speedup_n, a.speedup_dim, a.k)
        print(f"{r['what']}: engine {r['engine_s']:.2f} s, "
              f"dense pair-by-pair {r['dense_s']:.1f} s, "
              f"ratio {r['ratio']:.1f}x, max rel diff {r['max_rel_diff']:.1e}", flush=True)
    if a.matrix:
        print("| metric | M | N | seconds | peak RSS (GiB) | median value |", flush=True)
        print("|---|---|---|---|---|---|", flush=True)
        rows = []
        context = {"argv": sys.argv, "host": platform.node(), "load_before": os.getloadavg(),
                   "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                   "affinity": sorted(os.sched_getaffinity(0))}
        for met in a.metrics.split(","):
            rows.append(run_child(met, a.models, a.n, a.widths))
            print(markdown_row(rows[-1]), flush=True)
            if a.json:
                context["load_after"] = os.getloadavg()
                with open(a.json, "w") as fh:
                    json.dump({"context": context, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
