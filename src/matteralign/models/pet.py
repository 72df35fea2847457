"""PET-MAD / uPET adapter: metatomic's ``feature`` output and the energy last-layer features.

Runs in the ``pet`` model environment. Published checkpoints load by name through upet's own
loader (``upet.get_upet``, which downloads from the ``lab-cosmo/upet`` Hugging Face repository;
a checkpoint already in the Hugging Face cache is read from there). A local metatrain checkpoint
(``.ckpt``) goes through the same loader, an exported metatomic model (``.pt``) through
``metatomic.torch.load_atomistic_model``. Structures are evaluated in batches by metatomic's own
ASE interface (``MetatomicCalculator.run_model``: vesin neighbour lists, one model call per
batch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError, ModelNotFoundError
from matteralign.models.mlip_adapter import (
    MLIPAdapter,
    PreparedStructure,
    refuse_uncovered_elements,
)
from matteralign.models.weights import UPET_REPOSITORY, published_file

# Layer name -> metatomic output names, current first (metatomic 0.1.19 renamed the standard
# ``features`` output to ``feature``; models exported before that still list ``features``).
OUTPUTS = {"features": ("feature", "features"),
           "last_layer_features": ("mtt::aux::energy_last_layer_features",)}


class PETAdapter(MLIPAdapter):
    """PET-MAD and the other uPET models (Point Edge Transformer; Pozdnyakov & Ceriotti 2023).

    Options
    -------
    model, size, version : str
        A published uPET checkpoint, as ``upet.get_upet`` names it: ``model="pet-mad"``,
        ``size="s"``, ``version="1.0.2"`` reads ``models/pet-mad-s-v1.0.2.ckpt`` of
        ``lab-cosmo/upet``. The version is required (no "latest"), so a card is one checkpoint.
    checkpoint : str, optional
        A local file instead: a metatrain checkpoint (``.ckpt``, read by upet's loader) or an
        exported metatomic model (``.pt``).

    Layers, both per atom (PET is not equivariant, so every column is a plain scalar):

    - ``features``: metatomic's standard ``feature`` output, PET's backbone features
      ``[node (d_node) | sum_j f_c(r_ij) edge_ij (d_pet)]``, taken after the last GNN layer
      (``featurizer_type: feedforward``, the uPET default) or after every GNN layer and
      concatenated (``residual``, older PETs);
    - ``last_layer_features``: ``mtt::aux::energy_last_layer_features``, what the energy head's
      final linear layers read: the node and (cutoff-weighted, summed) edge features after the
      energy head's MLPs, ``2 d_head`` per readout layer; the last hidden layer, the one
      metatrain's last-layer uncertainty (LLPR) uses.

    Elements outside the model's ``atomic_types`` fail per sample. PET is not rotation invariant
    by construction (it learns the symmetry from rotated training data), so its features change
    slightly under rotation; they are exactly invariant to translation and atom order.
    """

    supported_dtypes = ("float32",)

    def __init__(self, card, **options: Any) -> None:  # noqa: ANN001
        super().__init__(card, **options)
        self.calculator: Any = None  # metatomic_ase.MetatomicCalculator around the model
        self.checkpoint_path: Path | None = None
        self.checkpoint_sha256 = ""

    def _published(self) -> tuple[Any, Path]:
        """upet's model for the options ``model``/``size``/``version``, and the file it read.

        A checkpoint already in the Hugging Face cache is read from there through the same
        loader (``get_upet(checkpoint_path=...)``), so a study reruns without network; otherwise
        ``get_upet`` resolves the name against the repository and downloads the file.
        """
        import upet
        from huggingface_hub import try_to_load_from_cache

        filename = published_file(self.options)
        if filename is None:
            raise AdapterError(f"model {self.id}: give options model, size and version (a "
                               "published uPET checkpoint) or checkpoint=<path>")
        model, size, version = (self.options[key] for key in ("model", "size", "version"))
        cached = try_to_load_from_cache(UPET_REPOSITORY, filename)
        if isinstance(cached, str):
            return upet.get_upet(checkpoint_path=cached), Path(cached)
        try:
            loaded = upet.get_upet(model=str(model), size=str(size), version=str(version))
        except (OSError, ConnectionError, ValueError) as error:
            raise ModelNotFoundError(
                f"model {self.id}: upet could not load {model}-{size}-v{version} ({error}); with "
                "no internet, pass option checkpoint=<path of the .ckpt file>"
            ) from None
        return loaded, Path(str(try_to_load_from_cache(UPET_REPOSITORY, filename)))

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        from metatomic_ase import MetatomicCalculator

        checkpoint = self.options.get("checkpoint")
        if checkpoint:
            path = Path(str(checkpoint)).expanduser()
            if not path.is_file():
                raise ModelNotFoundError(f"model {self.id}: checkpoint {path} not found")
            from metatrain.utils.io import is_exported_file

            if is_exported_file(str(path)):
                from metatomic.torch import load_atomistic_model

                model = load_atomistic_model(str(path))
            else:
                import upet

                model = upet.get_upet(checkpoint_path=str(path))
        else:
            model, path = self._published()
        capabilities = model.capabilities()
        if capabilities.dtype != dtype:
            raise AdapterError(f"model {self.id}: checkpoint {path} runs in "
                               f"{capabilities.dtype}, not {dtype}")
        self._outputs = {}
        for layer in self.layer_names:
            names = [name for name in OUTPUTS.get(layer, ()) if name in capabilities.outputs]
            if not names:
                raise AdapterError(
                    f"model {self.id}: checkpoint {path} has no output for layer {layer!r} "
                    f"({' or '.join(OUTPUTS.get(layer, (layer,)))}); it has "
                    f"{sorted(capabilities.outputs)}"
                )
            self._outputs[layer] = names[0]
        self._types = {int(z) for z in capabilities.atomic_types}
        self.calculator = MetatomicCalculator(model, device=device, neighbor_skin=0.0,
                                              uncertainty_threshold=None)
        self.model = model
        self.device, self.dtype = device, dtype
        self.checkpoint_path = path
        with open(path, "rb") as handle:
            self.checkpoint_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        """The structure itself: metatomic builds systems and neighbour lists per batch."""
        refuse_uncovered_elements(atoms, self._types.__contains__, sample_id, self.id)
        return atoms, None

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        from metatomic.torch import ModelOutput

        outputs = {name: ModelOutput(sample_kind="atom") for name in self._outputs.values()}
        outputs["energy"] = ModelOutput(unit="eV", sample_kind="system")
        results = self.calculator.run_model([item.graph for item in batch], outputs)
        counts = torch.tensor([item.n_atoms for item in batch])
        offsets = torch.cumsum(counts, 0) - counts
        features = {}
        for layer, name in self._outputs.items():
            block = results[name].block()
            samples = block.samples.values.to(torch.long)  # (system, atom) of each row
            rows = torch.empty_like(block.values)
            rows[offsets.to(samples.device)[samples[:, 0]] + samples[:, 1]] = block.values
            features[layer] = rows
        return features, results["energy"].block().values.reshape(-1)

    def unload(self) -> None:
        self.model = self.calculator = None
