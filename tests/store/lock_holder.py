"""Hold a store's lock from another process, as a concurrent ``matteralign`` run would.

The lock is re-entrant within one process (a command's stages nest), so a test of a second
writer needs a second process: :func:`held_elsewhere` starts one that holds the lock until the
``with`` block ends.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_HOLD = (
    "import sys\n"
    "from matteralign.store.embedding_store import EmbeddingStore\n"
    "with EmbeddingStore(sys.argv[1]).lock():\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


@contextmanager
def held_elsewhere(root: Path) -> Iterator[None]:
    """Hold the lock of the store at ``root`` in a child process for the ``with`` block."""
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(root)], cwd=REPO,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held", "the child did not take the lock"
        yield
    finally:
        child.stdin.close()
        child.wait(timeout=60)
