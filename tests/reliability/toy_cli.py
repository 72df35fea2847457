"""``python -m tests.reliability.toy_cli <command> ...``: the real ``matteralign`` command line,
with the toy models and datasets of :mod:`tests.reliability.faulty_models` registered.

:func:`spawn` starts it as a child process, for tests that kill it or run two at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from matteralign.cli.main import app
from matteralign.run import study
from tests.reliability.faulty_models import patch_registry

REPO = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen:
    """``matteralign <args>`` with the toy models registered, as a child process whose stdout
    and stderr are read together as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.toy_cli", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


if __name__ == "__main__":
    patch_registry(study)
    app()
