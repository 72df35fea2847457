"""SO3LR adapter: so3krates transformer features of every Euclidean-transformer block.

SO3LR (so3krates-torch) couples a short-range SO(3)-equivariant transformer with ZBL,
electrostatic and dispersion terms; the checkpoint ships in the ``so3krates-torch`` wheel.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.atom_features import pooled_output

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Set torch's default dtype inside the block only (so3krates reads it to build inputs)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class SO3LRAdapter(ModelAdapter):
    """Per-atom features after each of SO3LR's three Euclidean-transformer blocks.

    Options
    -------
    invariants_only : bool, default True
        ``True``: the 128 invariant channels per atom. ``False``: those followed by the 24
        equivariant channels (spherical-harmonic degrees 1, 2, 3, 4: 3 + 5 + 7 + 9 components).
    lr_cutoff : float, default 12.0
        Long-range (electrostatics, dispersion) cutoff in Å, as in ``SO3LRCalculator``.
    dispersion_damping : float, default 2.0
        Damping width in Å of the dispersion cutoff, as in ``SO3LRCalculator``.

    Notes
    -----
    The calculator's own ``SO3LRCalculator`` changes torch's global default dtype; this adapter
    loads the checkpoint itself and sets the default dtype only while building inputs.
    """

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if getattr(self, "_model", None) is not None:
            return
        from so3krates_torch.data.utils import KeySpecification
        from so3krates_torch.tools import utils

        self.device, self.dtype = device, dtype
        resource = importlib.resources.files("so3krates_torch.pretrained.so3lr") / "so3lr.model"
        with importlib.resources.as_file(resource) as path:
            model = torch.load(path, map_location=device, weights_only=False)
        model.r_max_lr = float(self.options.get("lr_cutoff", 12.0))
        model.dispersion_energy_cutoff_lr_damping = float(
            self.options.get("dispersion_damping", 2.0)
        )
        model = model.to(device=device, dtype=_DTYPES[dtype]).eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        self._model = model
        self._z_table = utils.AtomicNumberTable(list(range(1, 119)))
        self._keys = KeySpecification(
            info_keys={"total_charge": "charge", "total_spin": "total_spin"},
            arrays_keys={"charges": "Qs"},
        )
        self._blocks: dict[str, torch.Tensor] = {}
        self._hooks = [
            block.register_forward_hook(self._keep(f"transformer_{index + 1}"))
            for index, block in enumerate(model.euclidean_transformers)
        ]

    def _keep(self, name: str):
        """Forward hook storing a block's ``(invariant, equivariant)`` output under ``name``."""

        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            self._blocks[name] = output

        return hook

    def cost(self, item: Any) -> int:
        return len(item)

    def _graph(self, batch: Sequence[Any]) -> dict[str, torch.Tensor]:
        from so3krates_torch.data.atomic_data import AtomicData
        from so3krates_torch.data.utils import config_from_atoms
        from so3krates_torch.tools import torch_geometric

        model = self._model
        with default_dtype(_DTYPES[self.dtype]):
            data = [
                AtomicData.from_config(
                    config_from_atoms(atoms, key_specification=self._keys),
                    z_table=self._z_table,
                    cutoff=float(model.r_max),
                    cutoff_lr=model.r_max_lr,
                )
                for atoms in batch
            ]
            loader = torch_geometric.dataloader.DataLoader(
                dataset=data, batch_size=len(data), shuffle=False, drop_last=False
            )
            graph = next(iter(loader)).to(self.device)
        return graph.to_dict()

    def embed(
        self,
        batch: Sequence[Any],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Embed ase.Atoms in one batched forward pass.

        Returns pooled (B, 128) invariant features per requested block (B, 152 with
        ``invariants_only: false``) and the total energy (B,) in eV.
        """
        self._check_layers(layers)
        self._blocks.clear()
        graph = self._graph(batch)
        with torch.inference_mode():
            out = self._model(graph, compute_force=False)
        invariants_only = bool(self.options.get("invariants_only", True))
        features = {}
        for layer in layers:
            scalars, vectors = self._blocks[layer]
            features[layer] = scalars if invariants_only else torch.cat([scalars, vectors], 1)
        energy = out["energy"].detach().cpu().to(torch.float64).numpy().reshape(len(batch))
        return pooled_output(
            features,
            [len(atoms) for atoms in batch],
            graph["atomic_numbers"].reshape(-1),
            pooling,
            per_item=per_item,
            energy=np.asarray(energy),
        )

    def unload(self) -> None:
        for hook in getattr(self, "_hooks", []):
            hook.remove()
        self._model = None
