"""Wall time of the commands that must answer at once: ``--help`` and ``models list``.

Run: ``.venv/bin/python benchmarks/bench_cli.py``. Prints the median of 5 fresh processes each,
against the bare interpreter start-up measured in the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "matteralign --help": [sys.executable, "-m", "matteralign.cli.main", "--help"],
    "matteralign models list": [sys.executable, "-m", "matteralign.cli.main", "models", "list"],
    "matteralign datasets list": [sys.executable, "-m", "matteralign.cli.main", "datasets", "list"],
}


def median_seconds(command: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    results = {name: median_seconds(command) for name, command in COMMANDS.items()}
    baseline = results["python -c pass (baseline)"]
    print(f"{'command':32s} {'median s':>9s} {'× baseline':>11s}")
    for name, seconds in results.items():
        print(f"{name:32s} {seconds:9.3f} {seconds / baseline:11.1f}")


if __name__ == "__main__":
    main()
