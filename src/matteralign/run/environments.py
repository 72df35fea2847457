"""Model environments: per-model Python environments layered on the main one, built on demand.

A model whose packages cannot share the main environment (mace-torch pins ``e3nn==0.4.4``,
sevenn needs ``e3nn>=0.5``) names an environment in its card. Each environment is defined once,
in ``src/matteralign/models/environments/<name>.yaml``::

    description: one line
    requirements: [mace-torch==0.3.16, e3nn==0.4.4]   # pip requirements, resolved by pip
    no_deps: []                                       # installed with pip --no-deps afterwards

and built as a venv under the environment folder (``MATTERALIGN_ENV_DIR``, default
``~/.cache/matteralign/envs``) named ``<name>-<hash>``, the hash covering the definition, the
main environment's location and the Python version. The venv has no packages of its own at
first: a ``.pth`` file appends the main environment's site-packages *after* its own, so torch,
numpy, ase and matteralign itself are reused (never downloaded again) while the packages pip
installs into the venv — only those the main environment does not already satisfy, and the
model's pins — take precedence. torch is constrained to the main environment's version, so a
requirement that would replace it fails the build instead of downloading another torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from matteralign.errors import ConfigError, MatterAlignError
from matteralign.models.card import ModelCard

DEFINITION_DIR = Path(__file__).parents[1] / "models" / "environments"
ENV_DIR_VARIABLE = "MATTERALIGN_ENV_DIR"
MAIN_PTH = "_matteralign_main_environment.pth"
READY = "matteralign-environment.json"  # written last: its presence means the build finished


class EnvironmentBuildError(MatterAlignError, RuntimeError):
    """A model environment could not be built, or is needed and not built."""


class EnvironmentSpec(BaseModel):
    """The definition of one model environment (one YAML file).

    Attributes
    ----------
    name : str
        The file's stem; cards name the environment by it.
    requirements : list of str
        pip requirement strings, installed together (pip resolves their dependencies and
        skips those the main environment already satisfies).
    no_deps : list of str
        Requirements installed afterwards with ``pip install --no-deps``, for packages whose
        declared dependencies are wrong.
    variables : dict of str to str
        Environment variables set (if unset) whenever the environment's Python starts, by its
        ``.pth`` file; e.g. ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` for packages that
        ``torch.load`` their own pickled files (e3nn 0.4.4 does at import).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    requirements: list[str] = []
    no_deps: list[str] = []
    variables: dict[str, str] = {}


@dataclass(frozen=True)
class BuiltEnvironment:
    """Where an environment lives and whether it is built.

    Attributes
    ----------
    spec : EnvironmentSpec
    path : Path
        ``<environment folder>/<name>-<hash>``.
    """

    spec: EnvironmentSpec
    path: Path

    @property
    def python(self) -> Path:
        """The environment's interpreter (a link to the base Python the venv was made from)."""
        return self.path / "bin" / "python"

    @property
    def built(self) -> bool:
        return (self.path / READY).is_file()

    def record(self) -> dict:
        """What the build recorded: definition, build seconds and installed packages."""
        return json.loads((self.path / READY).read_text()) if self.built else {}

    def create_command(self) -> str:
        """The shell command that builds this environment."""
        return f"matteralign env create {self.spec.name}"


@cache
def environment_specs() -> dict[str, EnvironmentSpec]:
    """Every defined environment, by name, in name order."""
    specs = {}
    for path in sorted(DEFINITION_DIR.glob("*.yaml")):
        with open(path) as handle:
            content = yaml.safe_load(handle) or {}
        try:
            specs[path.stem] = EnvironmentSpec(name=path.stem, **content)
        except Exception as error:
            raise ConfigError(f"environment definition {path.name} is invalid: {error}") from None
    return specs


def get_environment(name: str) -> BuiltEnvironment:
    """The environment called ``name``, built or not.

    Raises
    ------
    ConfigError
        If no environment has that name; the message lists those that exist.
    """
    specs = environment_specs()
    if name not in specs:
        raise ConfigError(
            f"unknown model environment {name!r}; defined: {', '.join(specs) or 'none'}"
        )
    spec = specs[name]
    return BuiltEnvironment(spec, environment_root() / f"{name}-{_spec_hash(spec)}")


def card_environment(card: ModelCard) -> BuiltEnvironment | None:
    """The named environment a card's jobs run in, or None for the main environment.

    An inline ``environment`` block (packages Ray installs) is not a named environment.
    """
    return get_environment(card.environment) if isinstance(card.environment, str) else None


def environment_root() -> Path:
    """The folder of built environments: ``$MATTERALIGN_ENV_DIR`` or ~/.cache/matteralign/envs."""
    configured = os.environ.get(ENV_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "matteralign" / "envs"


def main_site_packages() -> list[str]:
    """The main environment's site-packages folders (purelib, then platlib if different)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def _spec_hash(spec: EnvironmentSpec) -> str:
    """12 hex digits of SHA-256 over the definition, the main environment and the Python."""
    payload = json.dumps({
        "requirements": spec.requirements, "no_deps": spec.no_deps, "variables": spec.variables,
        "main": main_site_packages(), "python": sys.version,
    }, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def build_environment(name: str, force: bool = False, log=None) -> BuiltEnvironment:  # noqa: ANN001
    """Build the defined environment ``name``; see :func:`build`."""
    return build(get_environment(name), force=force, log=log)


def build(environment: BuiltEnvironment, force: bool = False, log=None) -> BuiltEnvironment:  # noqa: ANN001
    """Build ``environment`` (a no-op when it is built, unless ``force``).

    Steps: a venv without pip (``venv.EnvBuilder``), a ``.pth`` that appends the main
    environment's site-packages (processing its ``.pth`` files, so an editable matteralign is
    found), then the main environment's pip, run by the venv's Python, installs
    ``requirements`` under a constraint pinning torch to the main environment's version, then
    ``no_deps``. pip leaves the main environment alone ("not uninstalling ... outside
    environment"): a pinned older version goes into the venv and shadows the main one there.
    A file lock makes concurrent builds of one environment wait for each other; a half-built
    folder (no ready record) is removed and built again.

    Parameters
    ----------
    environment : BuiltEnvironment
        Its definition and folder (:func:`get_environment`).
    force : bool
        Rebuild even if built.
    log : callable, optional
        Called with progress lines (the CLI prints them).

    Returns
    -------
    BuiltEnvironment

    Raises
    ------
    EnvironmentBuildError
        If pip fails; the message names the environment, the log file and pip's last lines.
    """
    from filelock import FileLock

    name = environment.spec.name
    root = environment.path.parent
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(environment.path) + ".lock"):
        if environment.built and not force:
            return environment
        started = time.perf_counter()
        shutil.rmtree(environment.path, ignore_errors=True)
        _say(log, f"creating {environment.path}")
        import venv

        venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(environment.path)
        site_packages = Path(subprocess.run(
            [str(environment.python), "-c",
             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True).stdout.strip())
        lines = [f"import site; site.addsitedir({path!r})" for path in main_site_packages()]
        if environment.spec.variables:
            lines.insert(0, "import os; [os.environ.setdefault(k, v) for k, v in "
                            f"{environment.spec.variables!r}.items()]")
        (site_packages / MAIN_PTH).write_text("\n".join(lines) + "\n")
        constraints = environment.path / "constraints.txt"
        constraints.write_text(f"torch=={version('torch')}\n")
        log_path = environment.path / "build.log"
        pip = [str(environment.python), "-m", "pip", "install", "--disable-pip-version-check",
               "--progress-bar", "off", "--no-input", "-c", str(constraints)]
        steps = [pip + list(environment.spec.requirements)] if environment.spec.requirements else []
        if environment.spec.no_deps:
            steps.append(pip + ["--no-deps", *environment.spec.no_deps])
        for command in steps:
            _say(log, " ".join(command[1:]))
            with open(log_path, "a") as handle:
                handle.write("$ " + " ".join(command) + "\n")
                handle.flush()
                done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = log_path.read_text().splitlines()[-15:]
                raise EnvironmentBuildError(
                    f"building model environment {name!r} failed (pip exit {done.returncode}); "
                    f"log: {log_path}\n" + "\n".join(tail)
                )
        record = {
            "name": name,
            "definition": environment.spec.model_dump(),
            "main_site_packages": main_site_packages(),
            "build_seconds": round(time.perf_counter() - started, 1),
            "packages": _installed(site_packages),
        }
        (environment.path / READY).write_text(json.dumps(record, indent=1) + "\n")
        _say(log, f"built {name} in {record['build_seconds']} s")
        return environment


def _installed(site_packages: Path) -> dict[str, str]:
    """{distribution: version} of what the venv itself holds (not what it borrows)."""
    from importlib.metadata import distributions

    return {dist.metadata["Name"]: dist.version
            for dist in sorted(distributions(path=[str(site_packages)]),
                               key=lambda dist: dist.metadata["Name"].lower())}


def require_built(environment: BuiltEnvironment, model: str) -> None:
    """Raise :class:`EnvironmentBuildError` naming the build command if it is not built."""
    if not environment.built:
        raise EnvironmentBuildError(
            f"model {model} runs in environment {environment.spec.name!r}, which is not built; "
            f"build it with `{environment.create_command()}`"
        )


def _say(log, line: str) -> None:  # noqa: ANN001
    if log is not None:
        log(line)
