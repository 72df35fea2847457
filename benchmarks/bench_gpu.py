"""GPU benchmark of the metric engine at the paper's size, and of extraction throughput.

One run does everything: measured ceilings of the card, a GPU-vs-CPU-float64 correctness check
on a small case, then 60 models x N = 50,000 (widths 64..1024) for CKNNA (k = 25), dCor, CKA,
information imbalance and intrinsic dimension with each one's FLOP / byte floor beside it,
exact neighbours at N = 1,000,000, and transformer extraction throughput GPU vs CPU.

    PYTHONUNBUFFERED=1 PYTHONPATH=src python benchmarks/bench_gpu.py --out results/gpu

The user-path targets alone (pairwise from raw float32 host arrays with ``preprocessing=["l2"]``,
N = 1,000,000 exact/approximate, ``align`` from a store the benchmark writes), on any device::

    PYTHONPATH=src python benchmarks/bench_gpu.py --targets --device cuda --out results/targets
    PYTHONPATH=src python benchmarks/bench_gpu.py --targets --device cpu --models 4 --n 300 \
        --million 3000 --out /tmp/targets     # a CPU smoke run

Every ``--targets`` scoring run also prints the seconds of its stages (upload, checks and
steps, neighbour screen, float64 fallback rows, recall sample, graph copies, pair kernel), N =
``--million`` is repeated with ``--million-block-gib`` row blocks, and ``align`` is followed by
its reading and scoring timed apart.

Writes ``bench_gpu.json`` and ``bench_gpu.log`` under ``--out``; prints a table last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS: dict[str, Any] = {}
LOG: list[str] = []


def say(*parts: Any) -> None:
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    LOG.append(line)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    sync()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    sync()
    return out, time.perf_counter() - t0


def section(name: str):
    def wrap(fn):
        def run(*args, **kwargs):
            say(f"\n=== {name} ===")
            t0 = time.perf_counter()
            try:
                fn(*args, **kwargs)
            except Exception as error:  # keep going: one broken section must not lose the rest
                say(f"!! {name} failed: {type(error).__name__}: {error}")
                say(traceback.format_exc())
                RESULTS.setdefault("failed", {})[name] = f"{type(error).__name__}: {error}"
            say(f"--- {name}: {time.perf_counter() - t0:.1f} s")
            torch.cuda.empty_cache()
            save()
        return run
    return wrap


# ---- ceilings ------------------------------------------------------------------------------


@section("ceilings")
def ceilings() -> None:
    dev = "cuda"
    RESULTS["device"] = torch.cuda.get_device_name(0)
    RESULTS["torch"] = torch.__version__
    RESULTS["host"] = f"{platform.machine()} {os.cpu_count()} cores"
    x = torch.randn(2**28, device=dev)  # 1 GiB float32
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    _, t = timed(lambda: [y.copy_(x) for _ in range(10)])
    bw = 10 * 2 * x.numel() * 4 / t
    out = {"copy_GBps": bw / 1e9}
    for name, dtype, tf32 in [("tf32", torch.float32, True), ("fp32", torch.float32, False),
                              ("fp64", torch.float64, False), ("bf16", torch.bfloat16, False)]:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        n = 8192 if dtype != torch.float64 else 4096
        a = torch.randn(n, n, device=dev, dtype=dtype)
        b = torch.randn(n, n, device=dev, dtype=dtype)
        for _ in range(2):
            a @ b
        reps = 10
        _, t = timed(lambda a=a, b=b, reps=reps: [a @ b for _ in range(reps)])
        out[f"{name}_TFLOPs"] = reps * 2 * n**3 / t / 1e12
    torch.backends.cuda.matmul.allow_tf32 = True
    RESULTS["ceilings"] = out
    say(json.dumps(out, indent=1))


OUT_DIR = Path(".")


def save() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "bench_gpu.json").write_text(json.dumps(RESULTS, indent=1, default=float))
    (OUT_DIR / "bench_gpu.log").write_text("\n".join(LOG))


def peak(kind: str) -> float:
    return RESULTS["ceilings"][f"{kind}_TFLOPs"] * 1e12


def bandwidth() -> float:
    return RESULTS["ceilings"]["copy_GBps"] * 1e9


# ---- data ----------------------------------------------------------------------------------


WIDTHS = [64, 128, 256, 384, 512, 768, 1024]


def make_models(m: int, n: int, seed: int = 0, latent: int = 32) -> dict[str, np.ndarray]:
    """M related embeddings (N, D_m) sharing a latent, L2-normalised rows, float32 on the host."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    z = torch.randn(n, latent, device="cuda", generator=g)
    out = {}
    for i in range(m):
        d = WIDTHS[i % len(WIDTHS)]
        w = torch.randn(latent, d, device="cuda", generator=g) / latent**0.5
        x = torch.tanh(z @ w + (0.3 + 0.1 * (i % 5)) * torch.randn(n, d, device="cuda",
                                                                   generator=g))
        x = x / x.norm(dim=1, keepdim=True)
        out[f"m{i:02d}-d{d}"] = x.cpu().numpy()
    return out


# ---- correctness ---------------------------------------------------------------------------


@section("correctness: GPU engine vs CPU float64")
def correctness() -> None:
    from matteralign.metrics import pairwise
    from matteralign.run.ray_metrics import pairwise_blocks

    emb = {k: v.astype(np.float64) for k, v in make_models(4, 3000, seed=7).items()}
    rows = {}
    for metric in ["cknna-k25", "dcor", "cka-linear", "cka-rbf", "ii-k1", "id-twonn"]:
        ref = pairwise(emb, metric, device="cpu")
        a = ref.matrix.to_numpy() if ref.matrix is not None else ref.per_model.to_numpy()
        for precision in ("float64", None):
            label = f"{metric} cuda {precision or 'default(tf32)'}"
            gpu, t = timed(lambda precision=precision, metric=metric: (
                pairwise_blocks(emb, metric, device="cuda", precision=precision,
                                pairs_per_block=10**6)
                if metric == "cknna-k25"  # the Ray block path of the batched kNN pairs
                else pairwise(emb, metric, device="cuda", precision=precision)))
            b = gpu.matrix.to_numpy() if gpu.matrix is not None else gpu.per_model.to_numpy()
            rel = float(np.linalg.norm(b - a) / np.linalg.norm(a))
            rows[label] = {"rel_err": rel, "max_abs": float(np.max(np.abs(b - a))), "s": t}
            say(f"{label:34s} ||gpu - cpu64|| / ||cpu64|| = {rel:.2e}   max |diff| "
                f"{rows[label]['max_abs']:.2e}   {t:.2f} s")
    RESULTS["correctness"] = rows


# ---- paper size ----------------------------------------------------------------------------


def floors(flops: float, kind: str, nbytes: float) -> dict[str, float]:
    f = flops / peak(kind)
    b = nbytes / bandwidth()
    return {"flops": flops, "flop_kind": kind, "bytes": nbytes, "t_flops": f, "t_bytes": b,
            "floor_s": max(f, b)}


@section("paper size: 60 models x N = 50,000")
def paper(m: int, n: int, knn_precision: str = "float64", metrics: Sequence[str] = ()) -> None:
    from matteralign.metrics import nearest_neighbours, pairwise
    from matteralign.metrics._backend import Backend
    from matteralign.metrics.cknna import cknna_from_graphs, self_hsic
    from matteralign.metrics.knn_pairs import StackedGraphs, knn_pair_scores
    from matteralign.metrics.neighbours import sorted_graph

    emb, t_gen = timed(make_models, m, n)
    names = list(emb)
    xs = [emb[k] for k in names]
    dsum = sum(x.shape[1] for x in xs)
    say(f"generated {m} models, N = {n}, sum D = {dsum}, in {t_gen:.1f} s")
    out: dict[str, Any] = {"M": m, "N": n, "sum_D": dsum}
    RESULTS["paper"] = out
    be = Backend("cuda", knn_precision, block_bytes=2**31)
    out["knn_precision"] = knn_precision
    k = 25

    # CKNNA: kNN per model on the GPU, then all M^2 pairs batched on the GPU
    nearest_neighbours(xs[0][:2000], k, "inner", be)
    graphs, t_knn = timed(lambda: [nearest_neighbours(x, k, "inner", be) for x in xs])
    stacked, t_stack = timed(StackedGraphs.build, graphs, be)
    big = Backend("cuda", "float64", block_bytes=2**33)

    def all_pairs():
        h = np.empty((m, m))
        for a in range(m):
            h[a] = knn_pair_scores(stacked, a, list(range(m)), big)[0]
        d = np.diag(h).copy()
        return h / np.sqrt(d[:, None] * d[None, :])

    all_pairs()
    mat, t_pairs = timed(all_pairs)
    # the engine's CPU pair kernel on a few pairs, for comparison
    sg = [sorted_graph(g) for g in graphs[:6]]
    hs = [self_hsic(s) for s in sg]
    pairs = [(a, b) for a in range(6) for b in range(6) if a != b][:20]
    vals, t_cpu = timed(lambda: [cknna_from_graphs(sg[a], sg[b], hs[a], hs[b])[0]
                                 for a, b in pairs])
    diff = max(abs(v - mat[a, b]) for v, (a, b) in zip(vals, pairs, strict=True))
    nk = n * k
    out["cknna"] = {
        "knn_s": t_knn, "stack_s": t_stack, "pairs_s": t_pairs,
        "total_s": t_knn + t_stack + t_pairs, "pairs": m * m,
        "cpu_pair_kernel_s_per_pair": t_cpu / len(pairs), "gpu_vs_cpu_pair_max_diff": diff,
        "floor_knn": floors(2.0 * n * n * dsum, "fp64", 8.0 * n * dsum),
        "floor_pairs": floors(0.0, "fp64", m * m * 2 * nk * 16.0),
    }
    say(f"CKNNA k=25: kNN {t_knn:.2f} s ({t_knn / m * 1e3:.0f} ms/model), graph prep "
        f"{t_stack:.2f} s, {m * m} pairs {t_pairs:.2f} s; CPU pair kernel "
        f"{t_cpu / len(pairs):.3f} s/pair; GPU vs CPU pair |diff| {diff:.1e}")
    out["cknna"]["fallback_fraction_mean"] = float(
        np.mean([getattr(g, "fallback_fraction", 0.0) for g in graphs]))
    say(f"kNN rows sent to the exact fallback: {out['cknna']['fallback_fraction_mean']:.2%}")
    stacked = graphs = None
    torch.cuda.empty_cache()

    def engine(metric: str, backend: Any, key: str, floor: dict[str, float]) -> None:
        if metric not in metrics:
            return
        res, t = timed(pairwise, emb, metric, device=backend)
        out[key] = {"total_s": t, "engine_reported_s": res.seconds, **{"floor": floor}}
        say(f"{metric}: {t:.1f} s (floor {floor['floor_s']:.2f} s: "
            f"{floor['t_flops']:.2f} s FLOPs, {floor['t_bytes']:.2f} s bytes)")

    # the user's path: pairwise(..., device="cuda") end to end on the float32 host arrays
    # (device-side input checks, TF32 certified kNN, batched pairs), the backend's defaults
    engine("cknna-k25", "cuda", "cknna_engine", out["cknna"]["floor_knn"])
    stream = Backend("cuda", "float64", block_bytes=2**34)
    tiles = 2.0 * n * n * dsum  # distance GEMMs
    cross = 2.0 * m * m * n * n  # (M, N^2) x (N^2, M) sums
    engine("dcor", stream, "dcor", floors(tiles + cross, "fp64", 8.0 * m * n * n * 2))
    engine("cka-rbf", stream, "cka_rbf", floors(tiles + cross, "fp64", 8.0 * m * n * n * 2))
    lin_flops = sum(2.0 * n * a.shape[1] * b.shape[1] for a in xs for b in xs) / 2
    engine("cka-linear", Backend("cuda", "float64"), "cka_linear",
           floors(lin_flops, "fp64", 8.0 * n * dsum))
    engine("ii-k1", Backend("cuda", "float64", block_bytes=2**32), "ii_k1",
           floors(2 * tiles, "fp64", 8.0 * n * dsum))
    engine("id-twonn", Backend("cuda", "float64", block_bytes=2**31), "id_twonn",
           floors(tiles, "fp64", 8.0 * n * dsum))


@section("N = 1,000,000: exact vs approximate neighbours")
def million(n: int, d: int) -> None:
    from matteralign.metrics import nearest_neighbours
    from matteralign.metrics._backend import Backend

    g0 = torch.Generator(device="cuda").manual_seed(3)
    z = torch.randn(n, 32, device="cuda", generator=g0)
    w = torch.randn(32, d, device="cuda", generator=g0) / 32**0.5
    xt = torch.tanh(z @ w + 0.3 * torch.randn(n, d, device="cuda", generator=g0))
    xt = xt / xt.norm(dim=1, keepdim=True)
    x = xt.cpu().numpy()
    del z, w, xt
    torch.cuda.empty_cache()
    k = 25
    budget = 2**34  # 16 GiB row blocks: 1,400 rows of 10^6 scores per top-k
    exact, t_exact = timed(nearest_neighbours, x, k, "inner", Backend("cuda", block_bytes=budget))
    approx, t_approx = timed(nearest_neighbours, x, k, "inner",
                             Backend("cuda", block_bytes=budget, neighbours="approximate"))
    # recall of the approximate graph against the exact one on every row
    hit = (approx.indices[:, :, None] == exact.indices[:, None, :]).any(axis=2)
    recall = float(hit.mean())
    RESULTS["million"] = {
        "N": n, "D": d, "k": k, "exact_tf32_certified_s": t_exact,
        "exact_fallback_fraction": exact.fallback_fraction, "approximate_bf16_s": t_approx,
        "approximate_recall_all_rows": recall, "approximate_recall_reported": approx.recall,
        "rows_with_a_miss": float((~hit.all(axis=1)).mean()),
        "floor_tf32": floors(2.0 * n * n * d, "tf32", 4.0 * n * d),
        "floor_bf16": floors(2.0 * n * n * d, "bf16", 2.0 * n * d),
    }
    say(json.dumps(RESULTS["million"], indent=1, default=float))


@section("kNN breakdown: where one model's exact graph spends its time")
def knn_breakdown(n: int, d: int) -> None:
    from matteralign.metrics import nearest_neighbours
    from matteralign.metrics._backend import Backend

    k, fetch = 25, 50
    x = next(iter(make_models(1, n, seed=5, latent=32).values()))
    x = np.concatenate([x] * (d // x.shape[1]), axis=1) if x.shape[1] < d else x
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)
    be = Backend("cuda", "float64", block_bytes=2**31)
    nearest_neighbours(x[:2000], k, "inner", be)
    g, t_engine = timed(nearest_neighbours, x, k, "inner", be)
    x32h = x.astype(np.float32)
    nearest_neighbours(x32h[:2000], k, "inner", Backend("cuda"))
    g32, t_engine32 = timed(nearest_neighbours, x32h, k, "inner", Backend("cuda"))
    x64 = torch.as_tensor(x, device="cuda")
    x32 = x64.float()
    step = be.block_rows(n, n_tiles=3)

    def gemm(xw):
        for s in range(0, n, step):
            xw[s : s + step] @ xw.T

    def gemm_topk(xw, f):
        for s in range(0, n, step):
            t = xw[s : s + step] @ xw.T
            t[torch.arange(t.shape[0], device="cuda"), torch.arange(s, s + t.shape[0],
                                                                    device="cuda")] = -torch.inf
            torch.topk(t, f, dim=1)

    def tf32_rerank():
        out = torch.empty((n, k), dtype=torch.int64, device="cuda")
        for s in range(0, n, step):
            rows = torch.arange(s, min(n, s + step), device="cuda")
            t = x32[rows] @ x32.T
            t[torch.arange(rows.numel(), device="cuda"), rows] = -torch.inf
            cand = torch.topk(t, fetch, dim=1).indices
            ex = (x64[rows][:, None, :] * x64[cand]).sum(-1)
            o = torch.sort(-ex, dim=1, stable=True).indices[:, :k]
            out[rows] = cand.gather(1, o)
        return out

    _, t_g64 = timed(gemm, x64)
    _, t_gt64 = timed(gemm_topk, x64, k + 12)
    _, t_g32 = timed(gemm, x32)
    _, t_gt32 = timed(gemm_topk, x32, fetch)
    idx, t_tf = timed(tf32_rerank)
    same = float(np.mean(np.sort(idx.cpu().numpy(), 1) == np.sort(g.indices, 1)))
    RESULTS["knn_breakdown"] = {
        "N": n, "D": d, "engine_fp64_s": t_engine, "engine_default_float32_input_s": t_engine32,
        "engine_default_fallback_fraction": g32.fallback_fraction, "gemm_fp64_s": t_g64,
        "gemm_topk_fp64_s": t_gt64, "gemm_tf32_s": t_g32, "gemm_topk_tf32_s": t_gt32,
        "tf32_topk50_fp64_rerank_s": t_tf, "tf32_rerank_same_as_exact": same,
    }
    say(json.dumps(RESULTS["knn_breakdown"], indent=1))


# ---- extraction ----------------------------------------------------------------------------


@section("extraction: transformer encoder, GPU vs CPU")
def extraction() -> None:
    from transformers import BertConfig, BertModel

    # all-MiniLM-L6-v2 / rxnfp-style architecture; weights random (throughput does not depend
    # on their values; no checkpoint can be carried in the 64 MiB budget)
    configs = {
        "minilm-l6-h384 (22.7 M)": BertConfig(vocab_size=30522, hidden_size=384,
                                              num_hidden_layers=6, num_attention_heads=12,
                                              intermediate_size=1536),
        "rxnfp-bert-h256 (6.7 M)": BertConfig(vocab_size=600, hidden_size=256,
                                              num_hidden_layers=12, num_attention_heads=4,
                                              intermediate_size=512),
    }
    seq, batch, n_mol = 64, 256, 8192
    res = {}
    for name, cfg in configs.items():
        model = BertModel(cfg).eval()
        ids = torch.randint(5, cfg.vocab_size, (n_mol, seq))
        mask = torch.ones_like(ids)
        mask[:, 40:] = torch.randint(0, 2, (n_mol, 1)).expand(-1, seq - 40)  # mixed lengths

        def run(device: str, dtype: torch.dtype | None, n: int, model=model, ids=ids,
                mask=mask) -> float:
            mdl = model.to(device)
            with torch.inference_mode(), torch.autocast(device_type=device, dtype=dtype,
                                                        enabled=dtype is not None):
                for s in range(0, n, batch):
                    i, m_ = ids[s : s + batch].to(device), mask[s : s + batch].to(device)
                    h = mdl(input_ids=i, attention_mask=m_, output_hidden_states=True)
                    pooled = [(t * m_[..., None]).sum(1) / m_.sum(1, keepdim=True)
                              for t in h.hidden_states]
                    _ = [p.float().cpu() for p in pooled]
            return n

        run("cuda", None, batch)
        _, t32 = timed(run, "cuda", None, n_mol)
        run("cuda", torch.bfloat16, batch)
        _, t16 = timed(run, "cuda", torch.bfloat16, n_mol)
        torch.set_num_threads(os.cpu_count() or 1)
        n_cpu = 1024
        run("cpu", None, batch)
        _, tc = timed(run, "cpu", None, n_cpu)
        res[name] = {"gpu_fp32_mol_s": n_mol / t32, "gpu_bf16_mol_s": n_mol / t16,
                     "cpu_fp32_mol_s": n_cpu / tc, "seq_len": seq, "batch": batch,
                     "cpu_threads": torch.get_num_threads()}
        say(f"{name}: GPU fp32 {n_mol / t32:,.0f} mol/s, GPU bf16 {n_mol / t16:,.0f} mol/s, "
            f"CPU ({torch.get_num_threads()} threads) {n_cpu / tc:,.0f} mol/s")
    RESULTS["extraction"] = res


@section("extraction: interatomic potentials through the runner, GPU vs CPU")
def extraction_mlip(models: list[str], n: int, n_cpu: int, budget: int) -> None:
    """Structures per second of ``embed_dataset`` (every layer, mean pooling).

    ``models`` are ids, or ``id@dataset`` for a dataset other than mlearn (e.g. ``ani-1x@g2``).
    Needs the model packages and ``MATTERALIGN_DATA_ROOT`` holding ``materials/mlearn`` (and
    ``weights/matgl/...`` for matgl models). The first ``n_cpu`` structures are embedded on both
    devices and their last-layer embeddings compared.
    """
    import tempfile

    from matteralign.data.registry import load_dataset
    from matteralign.models.registry import create_adapter
    from matteralign.run.embed import embed_dataset
    from matteralign.store import EmbeddingStore

    root = Path(os.environ["MATTERALIGN_DATA_ROOT"])
    res: dict[str, Any] = {"N_requested": n, "N_cpu": n_cpu, "batch_budget_atoms": budget}
    torch.set_num_threads(os.cpu_count() or 1)
    for spec in models:
        model_id, _, dataset = spec.partition("@")
        row: dict[str, Any] = {}
        try:
            full = load_dataset(dataset or "mlearn", data_root=root)
            ds = full.subset(min(n, len(full)), seed=0)
            small = ds.subset(min(n_cpu, len(ds)), seed=0)
            row |= {"dataset": ds.name, "N": len(ds),
                    "atoms": sum(len(s.atoms) for s in ds.samples)}
            with tempfile.TemporaryDirectory() as tmp:
                last = {}
                for device, data in (("cuda", ds), ("cpu", small), ("cuda-small", small)):
                    dev = device.split("-")[0]
                    adapter = create_adapter(model_id)
                    warm = EmbeddingStore(Path(tmp) / f"warm-{device}")
                    embed_dataset(adapter, data.subset(8, seed=1), warm, layers="all",
                                  batch_budget=budget, device=dev)
                    store = EmbeddingStore(Path(tmp) / device)
                    summary, t = timed(embed_dataset, adapter, data, store, layers="all",
                                       batch_budget=budget, device=dev)
                    layer = adapter.layer_names[-1]
                    last[device] = store.load(data.name, model_id, layer).values
                    adapter.unload()
                    if device != "cuda-small":
                        row[f"{dev}_structures_s"] = len(data) / t
                        row[f"{dev}_s"] = t
                        row[f"{dev}_failed"] = summary.n_failed
                a, b = last["cuda-small"], last["cpu"]
                row["gpu_vs_cpu_last_layer_max_rel"] = float(
                    np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
                row["gpu_over_cpu"] = row["cuda_structures_s"] / row["cpu_structures_s"]
        except Exception as error:  # noqa: BLE001 - a missing package skips one model
            row = {"error": f"{type(error).__name__}: {error}"}
        res[spec] = row
        say(f"{model_id}: {json.dumps(row, default=float)}")
    res["cpu_threads"] = torch.get_num_threads()
    RESULTS["extraction_mlip"] = res


# ---- the user path: the targets -----------------------------------------------------


def raw_models(m: int, n: int, device: str, seed: int = 0, latent: int = 32,
               widths: Sequence[int] = WIDTHS) -> dict[str, np.ndarray]:
    """M related raw embeddings (N, D_m), float32 on the host, rows NOT normalised (scales and
    offsets differ per model), as a user's arrays arrive."""
    gen_device = "cuda" if device.startswith("cuda") else "cpu"
    g = torch.Generator(device=gen_device).manual_seed(seed)
    z = torch.randn(n, latent, device=gen_device, generator=g)
    out = {}
    for i in range(m):
        d = widths[i % len(widths)]
        w = torch.randn(latent, d, device=gen_device, generator=g) / latent**0.5
        x = torch.tanh(z @ w + (0.3 + 0.1 * (i % 5)) * torch.randn(n, d, device=gen_device,
                                                                   generator=g))
        out[f"m{i:02d}-d{d}"] = ((1.0 + i % 7) * x + 0.1 * (i % 3)).cpu().numpy()
    return out


def write_study_store(out: Path, emb: dict[str, np.ndarray], shard_size: int
                      ) -> tuple[list[str], str]:
    """A finished store under ``out/store``: the arrays of ``emb`` as the last layers of the first
    len(emb) registered cards on the first registered dataset, safetensors shards of
    ``shard_size`` rows, completion records written. Returns (card ids, dataset)."""
    from matteralign.data.registry import dataset_names
    from matteralign.models.registry import list_cards
    from matteralign.store.embedding_store import EmbeddingStore, ShardRecord

    cards = list_cards()[: len(emb)]
    if len(cards) < len(emb):
        raise SystemExit(f"only {len(cards)} registered cards for {len(emb)} stored models")
    dataset = dataset_names()[0]
    store = EmbeddingStore(out / "store")
    for card, x in zip(cards, emb.values(), strict=True):
        n = x.shape[0]
        starts = range(0, n, shard_size)
        for shard, lo in enumerate(starts):
            ids = [f"s{i:07d}" for i in range(lo, min(n, lo + shard_size))]
            store.write_shard(dataset, card.id, shard, ShardRecord(
                ids, {card.last_layer: x[lo : lo + shard_size]}, None, [], "bench",
                {"layers": [card.last_layer]}))
        store.mark_complete(dataset, card.id, len(starts))
    return [card.id for card in cards], dataset


def show_stages(label: str, stages: dict[str, float]) -> dict[str, float]:
    """Print the per-stage seconds a Backend recorded (nested stages are indented by name)."""
    say(f"    stages of {label}:")
    for name, value in stages.items():
        unit = "" if name.endswith(" rows") else " s"
        say(f"      {name:38s} {value:10.3f}{unit}")
    return dict(stages)


@section("user path: pairwise from raw host float32 arrays with l2, and align from a store")
def targets(device: str, m: int, n: int, million_n: int, metrics: Sequence[str],
            workdir: Path, shard_size: int, million_block_gib: float = 0.0) -> None:
    """The targets of the scoring-path issue, each timed end to end as a user runs it.

    1. ``pairwise(raw, metric, preprocessing=["l2"], device=device)`` for each metric, on M raw
       float32 host arrays (N, 64..1024): upload, normalisation, checks and scoring included.
    2. N = ``million_n``, 2 models x 256, CKNNA k = 25 with ``l2``, exact and approximate
       neighbours (recall recorded); with ``million_block_gib``, both again with row blocks of
       that many GiB (the default budget is a sixteenth of GPU memory, at most 4 GiB).
    3. ``align_study`` on a store of the M models written as safetensors shards (CKNNA k = 25,
       one layer, ``preprocess: [l2]``): reading the shards included; then its two halves apart
       (reading every model's shards; scoring them with :func:`score_dataset`).

    Every scoring run records the seconds of its stages (``Backend(stages=...)``: device
    synchronised at each stage's ends): upload / checks and steps per model, neighbour search
    (screen, float64 fallback rows and their count, sampled recall, copy to the host), stacking
    the graphs and the pair kernel.
    """
    from matteralign.analysis.matrices import score_dataset
    from matteralign.config import StudyConfig
    from matteralign.metrics import pairwise
    from matteralign.metrics._backend import Backend
    from matteralign.models.registry import get_card
    from matteralign.run.study import align_study
    from matteralign.store.embedding_store import EmbeddingStore

    res: dict[str, Any] = {"device": device, "M": m, "N": n}
    if device.startswith("cuda"):
        res["card"] = torch.cuda.get_device_name(0)
    warm = raw_models(3, 200, device, seed=1)
    for metric in metrics:  # compile / initialise every kernel once, off the clock
        pairwise(warm, metric, preprocessing=["l2"], device=device, progress=False)
    emb = raw_models(m, n, device)
    res["host_GB"] = sum(x.nbytes for x in emb.values()) / 1e9
    for metric in metrics:
        stages: dict[str, float] = {}
        out, t = timed(pairwise, emb, metric, preprocessing=["l2"],
                       device=Backend(device, stages=stages), progress=False)
        vals = out.matrix.to_numpy()[~np.eye(m, dtype=bool)]
        say(f"pairwise {metric:12s} {m} x {n:,} raw float32, l2, {device}: {t:8.2f} s")
        res[f"pairwise {metric}"] = {"s": t, "median": float(np.nanmedian(vals)),
                                     "stages": show_stages(metric, stages)}
    big = raw_models(2, million_n, device, seed=5, widths=[256])
    runs = [("exact", None), ("approximate", None)]
    if million_block_gib > 0:
        budget = int(million_block_gib * 2**30)
        runs += [("exact", budget), ("approximate", budget)]
    for mode, budget in runs:
        stages = {}
        be = Backend(device, block_bytes=budget, neighbours=mode, stages=stages)
        out, t = timed(pairwise, big, "cknna-k25", preprocessing=["l2"], device=be,
                       progress=False)
        row = {"s": t, "value": float(out.matrix.iloc[0, 1]), "block_bytes": be.block_bytes}
        if mode == "approximate":
            row["recall"] = float(out.rows[["recall_a", "recall_b"]].min().min())
        key = f"million {mode}" + ("" if budget is None else f" {million_block_gib:g} GiB blocks")
        say(f"cknna-k25, 2 x {million_n:,} x 256, l2, {mode}, blocks of "
            f"{be.block_bytes / 2**30:.2f} GiB: {t:8.2f} s "
            f"{ {k: v for k, v in row.items() if k != 's'} }")
        row["stages"] = show_stages(key, stages)
        res[key] = row
    del big
    study_dir = workdir / "align-study"
    models, dataset = write_study_store(study_dir, emb, shard_size)
    del emb
    config = StudyConfig(name="bench-align", datasets=[{"name": dataset}],
                         models=[{"id": mid} for mid in models], metrics=["cknna-k25"],
                         preprocess=["l2"], device=device)
    _, t = timed(align_study, config, study_dir)
    row = {"s": t, "shards_per_model": -(-n // shard_size)}
    say(f"matteralign align, {m} x {n:,} from safetensors shards, cknna-k25, {device}: "
        f"{t:8.2f} s")
    store = EmbeddingStore(study_dir / "store", create=False)
    stored, row["read_shards_s"] = timed(
        lambda: [store.load_finished(dataset, mid, get_card(mid).last_layer) for mid in models])
    stages = {}
    _, row["score_dataset_s"] = timed(score_dataset, stored, dataset, ["cknna-k25"], ["l2"],
                                      Backend(device, stages=stages), False)
    say(f"  its halves apart: reading the shards {row['read_shards_s']:.2f} s, scoring "
        f"{row['score_dataset_s']:.2f} s")
    row["stages"] = show_stages("align's scoring", stages)
    res["align cknna-k25"] = row
    RESULTS["targets"] = res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--models", type=int, default=60)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--skip", nargs="*", default=[])
    parser.add_argument("--mlip", nargs="*", default=["chgnet-0.3.0", "sevennet-0",
                                                      "m3gnet-matpes-pbe"],
                        help="model ids for the interatomic-potential extraction section")
    parser.add_argument("--mlip-n", type=int, default=500)
    parser.add_argument("--mlip-n-cpu", type=int, default=100)
    parser.add_argument("--mlip-budget", type=int, default=8192, help="atoms per batch")
    parser.add_argument("--metrics", nargs="*", default=["cknna-k25", "dcor", "cka-rbf",
                                                         "cka-linear", "ii-k1", "id-twonn"],
                        help="engine measures of the paper-size section")
    parser.add_argument("--knn-precision", choices=["float64", "float32"], default="float64",
                        help="precision of the CKNNA neighbour search at paper size")
    parser.add_argument("--targets", action="store_true",
                        help="only the user-path targets (pairwise with l2 from raw arrays, "
                             "N = --million, align from a store); runs on --device, CPU too")
    parser.add_argument("--device", default="cuda", help="device of --targets")
    parser.add_argument("--target-metrics", nargs="*",
                        default=["cknna-k25", "dcor", "cka-linear", "cka-rbf", "ii-k1"])
    parser.add_argument("--shard-size", type=int, default=5000, help="rows per stored shard")
    parser.add_argument("--million-block-gib", type=float, default=16.0,
                        help="--targets: also run N = --million with row blocks of this many GiB "
                             "(0: only the default budget)")
    args = parser.parse_args()
    global OUT_DIR
    OUT_DIR = args.out
    if args.targets:
        torch.backends.cuda.matmul.allow_tf32 = True
        t0 = time.perf_counter()
        targets(args.device, args.models, args.n, args.million, args.target_metrics, args.out,
                args.shard_size, args.million_block_gib)
        RESULTS["wall_s"] = time.perf_counter() - t0
        save()
        return
    if not torch.cuda.is_available():
        sys.exit("bench_gpu needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    t0 = time.perf_counter()
    ceilings()
    if "knn" not in args.skip:
        knn_breakdown(args.n, 512)
    if "correctness" not in args.skip:
        correctness()
    if "paper" not in args.skip:
        paper(args.models, args.n, args.knn_precision, args.metrics)
    if "extraction" not in args.skip:
        extraction()
    if "mlip" not in args.skip:
        extraction_mlip(args.mlip, args.mlip_n, args.mlip_n_cpu, args.mlip_budget)
    if "million" not in args.skip:
        million(args.million, 256)
    RESULTS["wall_s"] = time.perf_counter() - t0
    save()
    say(json.dumps(RESULTS, indent=1, default=float))


if __name__ == "__main__":
    main()
