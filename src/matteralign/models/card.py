"""Model cards: what a model is, read from YAML without importing the model's package."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from matteralign.data.sample import Modality

Family = Literal[
    "mlip", "molecular-graph", "string", "protein-sequence", "protein-structure", "text",
    "llm", "baseline",
]
Pooling = Literal[
    "mean", "sum", "per_element_mean", "mean_std", "cumulants-1", "cumulants-2", "cumulants-3",
    "cumulants-4", "cumulants-5", "cumulants-6", "cumulants-7", "cumulants-8", "cls", "last",
]
"""Every pooling a card may declare: models.pooling.POOLINGS (atoms) and TOKEN_POOLINGS (tokens)."""


class LayerInfo(BaseModel):
    """One layer whose output an adapter can return."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""


class PublishedMetric(BaseModel):
    """A number the model's authors or a benchmark published, with where it comes from."""

    model_config = ConfigDict(extra="forbid")

    name: str
    value: float
    unit: str = ""
    source: str


class Environment(BaseModel):
    """Where a model must run when it cannot share the main environment."""

    model_config = ConfigDict(extra="forbid")

    python: str | None = None
    requirements: list[str] = []
    no_deps: list[str] = []


class ModelCard(BaseModel):
    """Metadata of one model: identity, input, layers, license, training data and metrics.

    Attributes
    ----------
    id : str
        Registry id, e.g. ``"chgnet-0.3.0"``.
    adapter : str
        ``"module:Class"`` of the adapter, imported only when the model is loaded.
    input : {"atoms", "smiles", "sequence", "backbone"}
        The sample modality the model reads.
    layers : list of LayerInfo
        Layers in forward order; the last is the paper's "last hidden layer" unless
        ``default_layer`` says otherwise.
    elements : list of str, optional
        Elements the model covers; samples with others fail for this model, naming the element.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    family: Family
    architecture_family: str | None = Field(
        None,
        description="the architecture the model belongs to (mace, chgnet, sevennet, m3gnet, esm, "
        "unirep, ...), shared by its sizes, checkpoints and training sets; condensed matrices "
        "average over it",
    )
    input: Modality
    domain: list[Literal["molecules", "materials", "proteins"]]
    adapter: str
    options: dict[str, object] = {}
    layers: list[LayerInfo]
    default_layer: str | None = None
    default_pooling: Pooling = "mean"
    batch_budget: int | None = Field(
        None,
        ge=1,
        description="atoms (or tokens) per batch when the run gives no batch_budget; None: the "
        "input's default (matteralign.run.embed.default_batch_budget)",
    )
    predicts_energy: bool = False
    architecture: str = ""
    training_data: str = ""
    level_of_theory: str = ""
    parameters: int | None = None
    license: str
    license_note: str = ""
    version: str = ""
    checkpoint: str = ""
    checkpoint_sha256: str = ""
    weights: str = Field(
        "",
        description="folder or file of weights that no package ships, relative to "
        "<data root>/weights; empty when the package bundles them",
    )
    elements: list[str] | None = None
    published_metrics: list[PublishedMetric] = []
    extra: str = Field("", description="pip extra of matteralign that installs the model")
    environment: str | Environment | None = Field(
        None,
        description="the name of a model environment (src/matteralign/models/environments/"
        "<name>.yaml, built by `matteralign env create <name>`) in whose Python every job of this "
        "model runs; or an inline block of packages that Ray installs for it; None: the main "
        "environment",
    )
    notes: str = ""

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def last_layer(self) -> str:
        """The layer used when a study names none: ``default_layer`` or the last in order."""
        return self.default_layer or self.layers[-1].name

    @classmethod
    def from_yaml(cls, path: Path) -> ModelCard:
        with open(path) as handle:
            return cls.model_validate(yaml.safe_load(handle))
