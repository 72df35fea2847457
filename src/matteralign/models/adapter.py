"""The model adapter contract: samples in, per-layer pooled embeddings out.

An adapter is small: it loads its model, prepares one sample, and embeds a batch. Batching,
resuming, progress, retries and device placement belong to the runner (``matteralign.run``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matteralign.data.sample import Sample
from matteralign.data.structure_checks import MAX_CELL_LENGTH, MIN_DISTANCE
from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
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

    ``host_prepare = True`` declares that :meth:`prepare` works on the host only (no device
    calls) and returns picklable items, so the runner may call it in forked worker processes
    while the model runs (``prepare_workers``).
    """

    host_prepare: bool = False

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
        the model covers, and returns that modality's content. Structures are also checked by
        :meth:`~matteralign.data.sample.Sample.structure_problem` (atoms closer than the
        ``min_distance`` option, default 0.1 Å; zero-volume periodic cells; periodic vectors
        longer than the ``max_cell_length`` option, default 1000 Å; atomic numbers that are no
        element), once per sample and options in a study, whatever the number of models.
        """
        modality = self.card.input
        if modality not in sample.modalities:
            raise SampleError(sample.id, f"has no {modality!r} input, which {self.id} reads")
        if modality == "atoms":
            problem = sample.structure_problem(
                float(self.options.get("min_distance", MIN_DISTANCE)),
                float(self.options.get("max_cell_length", MAX_CELL_LENGTH)),
            )
            if problem:
                raise SampleError(sample.id, problem)
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

    def provenance(self, sample_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """What a shard's provenance records about how this adapter read ``sample_ids``.

        The default records nothing; token encoders name the long sequences they windowed
        (:meth:`~matteralign.models.token_encoder.TokenEncoderAdapter.provenance`).
        """
        return {}

    def unload(self) -> None:
        """Release the model's memory; :meth:`load` must be called again before use.

        The default holds nothing to release; adapters that keep a model override it.
        """
        return None

    def _check_loaded(self, model: Any) -> None:
        """Raise :class:`AdapterError` if ``model`` (the adapter's loaded object) is None."""
        if model is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() first")

    def _check_layers(self, layers: Sequence[str]) -> None:
        """Raise ``ValueError`` naming the model if a requested layer is not one of its layers.

        The runner resolves layers before it calls :meth:`embed`; this guards direct callers.
        """
        unknown = [layer for layer in layers if layer not in self.layer_names]
        if unknown:
            raise ValueError(
                f"model {self.id} has no layer(s) {unknown}; it has {self.layer_names}"
            )

    def _check_layer_count(self, n_blocks: int) -> None:
        """Raise :class:`AdapterError` unless the card's layers are ``"0"`` .. ``str(n_blocks)``.

        For models whose layers are the embedding output ("0") and each of ``n_blocks`` blocks.
        """
        expected = [str(i) for i in range(n_blocks + 1)]
        if expected != self.layer_names:
            raise AdapterError(
                f"model {self.id}: weights have layers {expected}, card lists {self.layer_names}"
            )
