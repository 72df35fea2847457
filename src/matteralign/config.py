"""Study configuration: pydantic models loaded from YAML, with built-in presets.

The resolved configuration is written next to every result, so a result says how it was made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from matteralign.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"


class DatasetSelection(BaseModel):
    """One dataset of a study, optionally a seeded subset."""

    model_config = ConfigDict(extra="forbid")

    name: str
    n: int | None = Field(None, ge=1, description="seeded random subset of this many samples")
    seed: int = 0


class ModelSelection(BaseModel):
    """One model of a study, with adapter options (checkpoint path, variant, ...)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    options: dict[str, object] = {}
    pooling: str | None = None
    datasets: list[str] | None = Field(
        None, description="only these datasets (default: every dataset with the model's input)"
    )


class StudyConfig(BaseModel):
    """Everything a study run needs: datasets, models, layers, metrics and execution.

    Every model is run on every dataset whose samples carry the model's input modality.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    datasets: list[DatasetSelection]
    models: list[ModelSelection]
    layers: Literal["last", "all"] | list[str] = "all"
    metrics: list[str] = ["cknna-k25"]
    preprocess: list[str] = ["l2"]
    shard_size: int = Field(256, ge=1)
    batch_budget: int | None = Field(None, ge=1)
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = 0
    data_root: Path | None = None
    executor: Literal["local", "ray"] = Field(
        "local", description="where embedding jobs (model x dataset shard) run"
    )
    workers: int | Literal["auto"] = Field(
        1, description="local executor: 1 = serial in process; 'auto' = one per GPU (or core)"
    )
    ray_address: str | None = Field(None, description="Ray cluster address; None = local Ray")
    prepare_workers: int = Field(
        0, ge=0, description="processes per job that build graphs on the host while the model "
        "runs (models whose preparation is host-only, on Linux); 0 = in the job's process"
    )
    cpu_threads: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="torch threads per CPU job; 'auto' = this process's torch threads "
        "shared among the local workers (1 per Ray task)"
    )

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def load_config(source: str | Path) -> StudyConfig:
    """Load a study from a YAML file, or a built-in preset by name (``default``, ``smoke``).

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or has an unknown key or a bad value; the message
        names the file and the offending key.
    """
    path = Path(source)
    if not path.exists():
        preset = PRESET_DIR / f"{source}.yaml"
        if not preset.exists():
            raise ConfigError(
                f"{source!r} is neither a YAML file nor a preset; presets: "
                f"{', '.join(preset_names())}"
            )
        path = preset
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} cannot be read as a YAML text file ({error})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(raw).__name__}")
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
