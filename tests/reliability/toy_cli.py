"""``python -m tests.reliability.toy_cli <command> ...``: the real ``matteralign`` command line,
with the toy models and datasets of :mod:`tests.reliability.faulty_models` registered."""

from __future__ import annotations

from matteralign.cli.main import app
from matteralign.run import study
from tests.reliability.faulty_models import patch_registry

if __name__ == "__main__":
    patch_registry(study)
    app()
