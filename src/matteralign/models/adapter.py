"""The model adapter contract: samples in, per-layer pooled embeddings out.

An adapter is small: it loads its model, prepares one sample, and embeds a batch. Batching,
resuming, progress, retries and device placement belong to the runner (``matteralign.run``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import os
from pathlib import Path

import numpy as np

from matteralign.data.sample import Sample
from matteralign.errors import ModelNotFoundError, SampleError
from matteralign.models.card import ModelCard


@dataclass
class EmbeddingOutput:
    """What one forward pass over a batch of B samples gives.

    Attributes
    ----------
    pooled : dict of str to (B, D_layer) float array
        One pooled vector per sample for each requested layer.
    energy : (B,) float array, optional
        Predicted total energy in eV, for models that predict one.
    per_item : dict of str to list of (n_i, D_layer) arrays, optional
        Unpooled per-atom / per-token features, when asked for.
    """

    pooled: dict[str, np.ndarray]
    energy: np.ndarray | None = None
    per_item: dict[str, list[np.ndarray]] | None = None


class ModelAdapter(ABC):
    """Base class of every model adapter.

    Parameters
    ----------
    card : ModelCard
        The model's card; ``card.options`` are merged under ``options``.
    **options
        Adapter-specific settings (checkpoint path, variant, ...), stored as given.

    Notes
    -----
    Subclasses implement :meth:`load` and :meth:`embed`, and usually :meth:`prepare` and
    :meth:`cost`. ``prepare`` runs once per sample and raises :class:`SampleError` for a sample
    the model cannot take (the runner records it and goes on); ``embed`` takes prepared items.
    """

    def __init__(self, card: ModelCard, **options: Any) -> None:
        self.card = card
        self.options: dict[str, Any] = {**card.options, **options}
        self.device: str = "cpu"
        self.dtype: str = "float32"

    @property
    def id(self) -> str:
        return self.card.id

    @property
    def layer_names(self) -> list[str]:
        return self.card.layer_names

    @abstractmethod
    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        """Load weights onto ``device`` in ``dtype``, in eval mode. Idempotent."""

    def weights_path(self) -> Path:
        """Where this model's weights are, for models whose package ships none.

        The ``path`` option wins; otherwise ``<data root>/weights/<card.weights>``, the data root
        being the ``data_root`` option or the ``MATTERALIGN_DATA_ROOT`` environment variable.

        Raises
        ------
        ModelNotFoundError
            If neither is given or the weights are not there; the message says what to pass.
        """
        if self.options.get("path"):
            path = Path(str(self.options["path"])).expanduser()
        else:
            root = self.options.get("data_root") or os.environ.get("MATTERALIGN_DATA_ROOT")
            if not root or not self.card.weights:
                raise ModelNotFoundError(
                    f"model {self.id} needs weights that no package ships: pass the option "
                    f"path=<folder> or a data root holding weights/{self.card.weights}"
                )
            path = Path(str(root)).expanduser() / "weights" / self.card.weights
        if not path.exists():
            raise ModelNotFoundError(f"weights of model {self.id} not found at {path}")
        return path

    def prepare(self, sample: Sample) -> Any:
        """Turn one sample into the model's input; raise :class:`SampleError` if it can't.

        The default checks that the sample has the model's input modality and only elements
        the model covers, and returns that modality's content.
        """
        modality = self.card.input
        if modality not in sample.modalities:
            raise SampleError(sample.id, f"has no {modality!r} input, which {self.id} reads")
        if modality == "atoms" and self.card.elements is not None:
            covered = set(self.card.elements)
            missing = sorted(set(sample.atoms.get_chemical_symbols()) - covered)
            if missing:
                raise SampleError(
                    sample.id, f"element(s) {', '.join(missing)} not covered by {self.id}"
                )
        return {
            "atoms": sample.atoms,
            "smiles": sample.smiles,
            "sequence": sample.sequence,
            "backbone": sample.protein,
        }[modality]

    def cost(self, item: Any) -> int:
        """Size of one prepared item for batching under a budget (atoms, tokens); default 1."""
        return 1

    @abstractmethod
    def embed(
        self,
        batch: Sequence[Any],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Embed prepared items; return pooled (B, D) arrays for each of ``layers``."""

    def unload(self) -> None:
        """Release the model's memory; :meth:`load` must be called again before use."""
