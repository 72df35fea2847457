"""Model environments: build time from a warm pip cache, and worker start-up per job.

Build: every environment named in ``--envs`` is built from scratch into a temporary environment
folder (pip's cache is the user's, so a second run measures a warm cache), timed end to end.

Start-up: a tiny random-weight MACE (the test suite's, two interactions, 8 channels) embeds
``--shards`` shards of ``--shard-size`` elemental crystals through
:func:`matteralign.run.worker.run_in_environment` (one worker for all shards, as the local
executor runs them). The worker's overhead is its wall time minus the seconds its jobs report
(interpreter start, imports of matteralign, torch and mace, unpickling the jobs, streaming the
results back); divided by the number of jobs it is the start-up cost per job. The first job's
seconds also hold the model load, reported apart.

    python benchmarks/bench_environments.py                  # mace, 20 shards of 4 crystals
    python benchmarks/bench_environments.py --skip-build --shards 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_seconds(name: str) -> dict:
    """Seconds to build environment ``name`` from nothing into a temporary folder."""
    from matteralign.run.environments import build_environment, get_environment

    with tempfile.TemporaryDirectory() as folder:
        os.environ["MATTERALIGN_ENV_DIR"] = folder
        started = time.perf_counter()
        environment = build_environment(name)
        seconds = time.perf_counter() - started
        record = environment.record()
        del os.environ["MATTERALIGN_ENV_DIR"]
    assert get_environment(name).path.parent != Path(folder)
    return {"environment": name, "build_s": round(seconds, 1),
            "installed": record["packages"]}


def worker_startup(shards: int, shard_size: int) -> dict:
    """Worker overhead per job for a tiny MACE over ``shards`` jobs (see the module docstring)."""
    from matteralign.data.registry import load_dataset
    from matteralign.models.registry import get_card
    from matteralign.run.environments import build_environment
    from matteralign.run.executors import plan_embed_jobs
    from matteralign.run.worker import run_in_environment
    from matteralign.store.embedding_store import EmbeddingStore

    environment = build_environment("mace")
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "tiny.model"
        subprocess.run([str(environment.python),
                        str(REPO / "tests" / "models" / "environments" / "tiny_mace.py"),
                        str(checkpoint)], check=True, capture_output=True)
        dataset = load_dataset("elemental-crystals", n=shards * shard_size, seed=0)
        store = EmbeddingStore(Path(folder) / "store")
        jobs = plan_embed_jobs(get_card("mace-mp-0-small"), {"checkpoint": str(checkpoint)},
                               dataset, store, shard_size=shard_size, cpu_threads=1)
        started = time.perf_counter()
        results = list(run_in_environment(environment, jobs))
        wall = time.perf_counter() - started
    failed = [result.error for result in results if result.status == "failed"]
    assert not failed, failed[0]
    inside = sum(result.seconds for result in results)
    return {
        "jobs": len(results), "shard_size": shard_size, "worker_wall_s": round(wall, 2),
        "jobs_s": round(inside, 2), "first_job_s (incl. model load)": round(results[0].seconds, 2),
        "other_jobs_mean_s": round((inside - results[0].seconds) / max(1, len(results) - 1), 3),
        "worker_overhead_s": round(wall - inside, 2),
        "startup_per_job_s": round((wall - inside) / len(results), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=["mace"])
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--shard-size", type=int, default=4)
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    out = {"build": [] if args.skip_build else [build_seconds(name) for name in args.envs],
           "worker": worker_startup(args.shards, args.shard_size)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
