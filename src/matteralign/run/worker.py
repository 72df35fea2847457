"""Embedding jobs of one model in a worker process that runs in the model's own environment.

The coordinator writes the jobs to a file and starts ``<environment python> -m
matteralign.run.worker <jobs file>``; the worker runs them one after another with
:func:`matteralign.run.executors.run_embed_job` (the function every executor runs, so shards,
provenance, checksums and resuming are those of an in-process job) and streams each
:class:`JobResult` back as a length-prefixed pickle on its standard output. Everything the model
packages print goes to standard error instead. All shards of one model share one worker, so the
interpreter start and the model load are paid once.

The worker stops when its standard input closes: the coordinator keeps it open, so a killed
coordinator takes its worker with it.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from matteralign.run.environments import BuiltEnvironment, card_environment, require_built
from matteralign.run.executors import EmbedJob, JobResult, release_adapter, run_embed_job

_HEADER = struct.Struct("<Q")


def _write_frame(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> object | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))


def _exit_when_orphaned() -> None:
    """Block on standard input; when the coordinator closes it (or dies), exit at once."""
    sys.stdin.buffer.read()
    os._exit(3)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the pickled jobs in ``argv[0]`` and stream their results on the original stdout."""
    jobs_file = (argv or sys.argv[1:])[0]
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # prints of the model's packages (and of C code) go to stderr
    sys.stdout = sys.stderr
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    with open(jobs_file, "rb") as handle:
        jobs: list[EmbedJob] = pickle.load(handle)
    for job in jobs:
        _write_frame(results, run_embed_job(job))
    release_adapter()
    results.close()


def environment_groups(
    jobs: Sequence[EmbedJob],
) -> tuple[list[EmbedJob], list[tuple[BuiltEnvironment, list[EmbedJob]]]]:
    """Split jobs into those of the main environment and, per (environment, model), the rest.

    Returns
    -------
    here : list of EmbedJob
        Jobs of models without a named environment, in the given order.
    elsewhere : list of (BuiltEnvironment, list of EmbedJob)
        One group per (environment, model), in order of first appearance; each runs in one
        worker.
    """
    here: list[EmbedJob] = []
    groups: dict[tuple[str, str], tuple[BuiltEnvironment, list[EmbedJob]]] = {}
    for job in jobs:
        environment = card_environment(job.card)
        if environment is None:
            here.append(job)
        else:
            key = (environment.spec.name, job.model)
            groups.setdefault(key, (environment, []))[1].append(job)
    return here, list(groups.values())


def run_in_environment(
    environment: BuiltEnvironment, jobs: Sequence[EmbedJob]
) -> Iterator[JobResult]:
    """Run ``jobs`` (of one model) in one worker inside ``environment``; yield their results.

    A missing environment, or a worker that dies, gives ``"failed"`` results for the jobs it
    did not finish, naming the cause (the build command, or the worker's last stderr lines).

    Parameters
    ----------
    environment : BuiltEnvironment
    jobs : sequence of EmbedJob
        Jobs of one model; they run in the given order.

    Yields
    ------
    JobResult
        One per job, as each finishes.
    """
    if not jobs:
        return
    try:
        require_built(environment, jobs[0].model)
    except Exception as error:
        for job in jobs:
            yield _failed(job, f"{type(error).__name__}: {error}")
        return
    with tempfile.TemporaryDirectory(prefix="matteralign-worker-") as folder:
        jobs_file = Path(folder) / "jobs.pkl"
        jobs_file.write_bytes(pickle.dumps(list(jobs), protocol=pickle.HIGHEST_PROTOCOL))
        stderr_path = Path(folder) / "stderr.txt"
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                [str(environment.python), "-m", "matteralign.run.worker", str(jobs_file)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            )
            finished = 0
            try:
                while finished < len(jobs):
                    result = _read_frame(process.stdout)
                    if result is None:
                        break
                    finished += 1
                    yield result
            finally:
                process.stdin.close()  # the worker exits when its stdin closes
                process.wait()
        if finished < len(jobs):
            tail = stderr_path.read_text(errors="replace").strip().splitlines()[-5:]
            reason = (f"the worker in environment {environment.spec.name!r} exited with code "
                      f"{process.returncode}: " + " | ".join(tail))
            for job in jobs[finished:]:
                yield _failed(job, reason)


def _failed(job: EmbedJob, error: str) -> JobResult:
    return JobResult(dataset=job.dataset, model=job.model, shard=job.shard, status="failed",
                     n_samples=len(job.samples), error=error)


if __name__ == "__main__":
    main()
