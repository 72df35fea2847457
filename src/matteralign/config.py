"""Study configuration: pydantic models loaded from YAML, with built-in presets.

The resolved configuration is written next to every result, so a result says how it was made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from matteralign.errors import ConfigError

if TYPE_CHECKING:
    from matteralign.data.atom_sample import AtomSampling

PRESET_DIR = Path(__file__).parent / "presets"


class DatasetSelection(BaseModel):
    """One dataset of a study, optionally a seeded subset: a built-in set by ``name``, or a file
    or folder by ``path`` (with the read options of its format; see ``docs/datasets.md``).

    A relative ``path`` is relative to the folder of the study YAML; the resolved configuration
    holds it absolute. The file's dataset is registered under ``name`` (default: the file name
    without suffixes) so every command finds it by that name.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    n: int | None = Field(None, ge=1, description="seeded random subset of this many samples")
    seed: int = Field(0, ge=0)
    path: str | None = Field(None, description="a file or folder to read instead of a built-in "
                              "set (extxyz, CIF, ASE db/LMDB, MPtrj JSON, SMILES CSV, FASTA, PDB)")
    format: str | None = Field(None, description="the file's format; default from its suffix")
    id_key: str | None = Field(None, description="extxyz info key, ASE db key or CSV column of "
                               "the sample ids")
    smiles_column: str | None = None
    labels: list[str] | None = Field(None, description="columns / info keys read as labels")
    units: dict[str, str] = Field({}, description="unit of each label")
    energy_key: str | None = None
    forces_key: str | None = None
    frames: str | None = Field(None, description="frames of a trajectory, ASE index ('::10')")

    @model_validator(mode="before")
    @classmethod
    def _name_from_path(cls, data: object, info: ValidationInfo) -> object:
        if isinstance(data, dict) and data.get("path") is not None:
            base = Path((info.context or {}).get("base", "."))
            path = Path(data["path"]).expanduser()
            data = {**data, "path": str((base / path).resolve())}
            data.setdefault("name", path.name.split(".")[0])
        return data

    @model_serializer(mode="wrap")
    def _without_unused_file_options(self, handler: SerializerFunctionWrapHandler) -> dict:
        """A built-in dataset's entry stays ``{name, n, seed}`` in the resolved YAML."""
        data = handler(self)
        return {key: value for key, value in data.items()
                if key not in _FILE_FIELDS or value not in (None, {})}

    @model_validator(mode="after")
    def _register_file(self) -> DatasetSelection:
        from matteralign.data.readers import ReadOptions
        from matteralign.data.registry import register_file_dataset

        options = {key: getattr(self, key) for key in ReadOptions.model_fields}
        given = sorted(key for key, value in options.items() if value not in (None, {}))
        if self.path is None:
            if self.format is not None or given:
                raise ValueError(f"dataset {self.name!r}: {', '.join(given or ['format'])} "
                                 "apply only to a dataset read from a file (give path:)")
            return self
        register_file_dataset(self.name, self.path, self.format, ReadOptions(**options))
        return self


_FILE_FIELDS = ("path", "format", "id_key", "smiles_column", "labels", "units", "energy_key",
                "forces_key", "frames")


class ModelSelection(BaseModel):
    """One model of a study, with adapter options (checkpoint path, variant, ...)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    card: str | None = Field(None, description="a model card YAML to register (its id is the "
                              "model's); relative to the study YAML's folder")
    options: dict[str, object] = {}
    pooling: str | None = None
    datasets: list[str] | None = Field(
        None, description="only these datasets (default: every dataset with the model's input)"
    )

    @model_serializer(mode="wrap")
    def _without_unused_card(self, handler: SerializerFunctionWrapHandler) -> dict:
        data = handler(self)
        return {k: v for k, v in data.items() if k != "card" or v is not None}

    @model_validator(mode="before")
    @classmethod
    def _register_card(cls, data: object, info: ValidationInfo) -> object:
        if not isinstance(data, dict) or data.get("card") is None:
            return data
        from matteralign.models.registry import register_card_file

        base = Path((info.context or {}).get("base", "."))
        path = (base / Path(data["card"]).expanduser()).resolve()
        card = register_card_file(path)
        if data.get("id", card.id) != card.id:
            raise ValueError(f"id {data['id']!r} differs from the id {card.id!r} of card {path}")
        return {**data, "id": card.id, "card": str(path)}


class AtomLevel(BaseModel):
    """The sample of atoms a study at ``level: atoms`` embeds (see
    :class:`matteralign.data.atom_sample.AtomSampling`)."""

    model_config = ConfigDict(extra="forbid")

    per_structure: int | None = Field(8, ge=1, description="atoms per structure at most, spread "
                                      "over its elements; null = all")
    per_stratum: int | None = Field(None, ge=1, description="atoms per (subset, element) at "
                                    "most over the dataset; null = no cap")
    seed: int = Field(0, ge=0)
    subset_key: str = Field("subset", description="atoms.info key of a structure's subset label")


class StudyConfig(BaseModel):
    """Everything a study run needs: datasets, models, layers, metrics and execution.

    Every model is run on every dataset whose samples carry the model's input modality.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    datasets: list[DatasetSelection] = Field(min_length=1)
    models: list[ModelSelection] = Field(min_length=1)
    layers: Literal["last", "all"] | Annotated[list[str], Field(min_length=1)] = "all"
    metrics: list[str] = Field(["cknna"], min_length=1)  # k from N: analysis.significance.choose_k
    preprocess: list[str] = ["l2"]
    shard_size: int = Field(256, ge=1)
    batch_budget: int | None = Field(None, ge=1)
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = Field(0, ge=0)
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
        "auto", description="torch threads per CPU job, the same under every executor and worker "
        "count (so results do not depend on where jobs ran); 'auto' = 1: parallelism on CPU "
        "comes from workers (a Ray task reserves as many CPUs as threads)"
    )
    level: Literal["structures", "atoms"] = Field(
        "structures", description="'atoms': embed and score a seeded, stratified sample of atoms "
        "(per-atom features, rows keyed by sample id, atom index and element; the alignment "
        "adds per-element views) instead of pooled structures"
    )
    atoms: AtomLevel = AtomLevel()

    @field_validator("datasets")
    @classmethod
    def _datasets_once(cls, datasets: list[DatasetSelection]) -> list[DatasetSelection]:
        _refuse_repeats("dataset", [d.name for d in datasets])
        return datasets

    @field_validator("models")
    @classmethod
    def _models_once(cls, models: list[ModelSelection]) -> list[ModelSelection]:
        _refuse_repeats("model", [m.id for m in models])
        return models

    @field_validator("metrics")
    @classmethod
    def _metrics_once(cls, metrics: list[str]) -> list[str]:
        _refuse_repeats("metric", metrics)
        return metrics

    @field_validator("preprocess")
    @classmethod
    def _known_steps(cls, steps: list[str]) -> list[str]:
        from matteralign.metrics.preprocess import check_steps

        check_steps(steps)  # its ValueError becomes a validation error naming the key
        return steps

    def atom_sampling(self) -> AtomSampling | None:
        """The atom sample of a study at ``level: atoms``; None at structure level."""
        from matteralign.data.atom_sample import AtomSampling

        return AtomSampling(**self.atoms.model_dump()) if self.level == "atoms" else None

    def stored_dataset(self, name: str) -> str:
        """Name under which the store holds this study's embeddings of dataset ``name``."""
        from matteralign.run.embed import atom_level_name

        return atom_level_name(name) if self.level == "atoms" else name

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _refuse_repeats(what: str, names: list[str]) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what} {repeated[0]!r} is listed {names.count(repeated[0])} times; "
                         "list each once")


class _DuplicateKeyError(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives one key twice (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise _DuplicateKeyError(f"key {key!r} is given twice (lines {seen[key].line + 1} "
                                         f"and {key_node.start_mark.line + 1}); give it once")
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> object:
    """The content of a YAML file, refusing duplicate keys.

    Raises
    ------
    ConfigError
        If the file cannot be read as text, is not valid YAML, or repeats a key; the message
        names the file (and the key and line).
    """
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except _DuplicateKeyError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} cannot be read as a YAML text file ({error})") from None


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def load_config(source: str | Path) -> StudyConfig:
    """Load a study from a YAML file, or a built-in preset by name (``default``, ``smoke``).

    Relative ``path:`` and ``card:`` entries are relative to the YAML file's folder.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or has an unknown key or a bad value; the message
        names the file and the offending key.
    """
    path = Path(source)
    if not path.is_file():  # a folder named like a preset (an --out folder) does not shadow it
        preset = PRESET_DIR / f"{source}.yaml"
        if not preset.exists():
            raise ConfigError(
                f"{source!r} is neither a YAML file nor a preset; presets: "
                f"{', '.join(preset_names())}"
            )
        path = preset
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(raw).__name__}")
    try:
        return StudyConfig.model_validate(raw, context={"base": path.parent})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
