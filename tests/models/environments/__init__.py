"""Adapter checks that run inside a model environment, and the tiny models they use.

``check_<family>.py`` files hold pytest tests that import the model's package; they are not
collected by the main suite (no ``test_`` prefix). ``tests/models/test_<family>.py`` builds the
environment (seconds from a warm pip cache), builds the tiny model once (``tiny_<family>.py``, run
by the environment's Python, kept in pytest's cache) and runs the checks with
:func:`run_checks`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def tiny_model(config, environment, family: str, name: str) -> Path:  # noqa: ANN001
    """``tiny_<family>.py OUT`` run once by the environment's Python; OUT is kept in the cache.

    Parameters
    ----------
    config : pytest.Config
    environment : BuiltEnvironment
    family : str
        ``mace`` or ``orb``: which ``tiny_<family>.py`` builds it.
    name : str
        What the script writes (a file or a folder name).
    """
    script = HERE / f"tiny_{family}.py"
    key = hashlib.sha256(script.read_bytes() + str(environment.path).encode()).hexdigest()
    out = Path(config.cache.mkdir(f"tiny-{family}-{key[:12]}")) / name
    if not out.exists():
        partial = out.with_name(out.name + ".part")
        if "." not in name:
            partial.mkdir(exist_ok=True)
        subprocess.run([str(environment.python), str(script), str(partial)], check=True,
                       capture_output=True)
        partial.rename(out)
    return out


def run_checks(environment, family: str, variables: dict[str, str]) -> str:  # noqa: ANN001
    """Run ``check_<family>.py`` with pytest in ``environment``; its output (fails if it fails)."""
    done = subprocess.run(
        [str(environment.python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         str(HERE / f"check_{family}.py")],
        env={**os.environ, **variables}, capture_output=True, text=True, cwd=HERE.parents[2],
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done.stdout
