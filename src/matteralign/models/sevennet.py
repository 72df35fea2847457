"""SevenNet adapter: per-atom features after every interaction block, one batched graph.

Checkpoints bundled in ``sevenn`` (7net-0 of 11Jul2024 and 22May2024, 7net-l3i5, 7net-mf-0)
are picked by the ``checkpoint`` option; a path to a checkpoint file works too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from matteralign.errors import AdapterError
from matteralign.models.mlip_adapter import MLIPAdapter, PreparedStructure, capture_outputs


def scalar_columns(irreps: Any) -> torch.Tensor:
    """Column indices of the even scalars (``0e``) in features laid out as ``irreps``.

    Parameters
    ----------
    irreps : e3nn.o3.Irreps
        Layout of the feature columns, e.g. ``128x0e+64x1e+32x2e``.

    Returns
    -------
    (n_scalar,) int64 tensor
    """
    columns, start = [], 0
    for mul, ir in irreps:
        width = mul * ir.dim
        if ir.l == 0 and ir.p == 1:
            columns.extend(range(start, start + width))
        start += width
    return torch.tensor(columns, dtype=torch.int64)


class SevenNetAdapter(MLIPAdapter):
    """SevenNet (NequIP-style, Park et al. 2024) with forces and stress switched off.

    Options
    -------
    checkpoint : str
        A ``sevenn`` pretrained name (``7net-0``, ``7net-0_22may2024``, ``7net-l3i5``,
        ``7net-mf-0``) or a checkpoint path.
    modal : str, optional
        Fidelity of a multi-fidelity checkpoint (``7net-mf-0``: ``PBE`` or ``R2SCAN``).

    Layers are ``interaction_<i>``: the node features ``x`` after the equivariant gate of block
    i. With ``invariants_only`` (default) only the ``0e`` columns are returned.
    """

    keys_module = "sevenn._keys"
    gate_suffix = "_equivariant_gate"

    def _build(self) -> tuple[Any, float, dict[int, int]]:
        """The package's model, its cutoff and its atomic-number → type-index map."""
        import sevenn._keys as KEY
        import sevenn.util as util

        checkpoint = util.load_checkpoint(str(self.options.get("checkpoint", "7net-0")))
        model = checkpoint.build_model()
        return model, float(checkpoint.config[KEY.CUTOFF]), dict(checkpoint.config[KEY.TYPE_MAP])

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        import importlib

        # Imported here, not per structure: the first import of sevenn's data loader takes
        # seconds (it pulls in ase.io's parsers and more), which belongs to loading.
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        self._to_graph = unlabeled_atoms_to_graph
        self._keys = importlib.import_module(self.keys_module)
        model, self.cutoff, self.type_map = self._build()
        model.delete_module_by_key("force_output")  # energy only: no autograd pass
        if "edge_embedding" in model._modules and hasattr(model.edge_embedding, "is_stress"):
            model.edge_embedding.is_stress = False
        if "edge_preprocess" in model._modules:
            model.edge_preprocess.is_stress = False
        model.key_grad = None
        model.set_is_batch_data(True)
        modal = self.options.get("modal")
        if getattr(model, "modal_map", None):
            if modal not in model.modal_map:
                raise AdapterError(
                    f"model {self.id} is multi-fidelity: pass option modal= one of "
                    f"{sorted(model.modal_map)}"
                )
            self._modal = str(modal)  # set on every graph; the model maps it per structure
        else:
            self._modal = None
        self.model = model.to(device).eval()
        self.device, self.dtype = device, dtype
        self._blocks = sorted(
            (int(name.split("_")[0]), name)
            for name in model._modules
            if name.endswith(self.gate_suffix)
        )
        self._type_index = torch.full((120,), -1, dtype=torch.int64)
        for number, index in self.type_map.items():
            self._type_index[int(number)] = int(index)
        self._scalars = {}
        for index, name in self._blocks:
            irreps = self._gate_irreps(model._modules[name])
            self._scalars[f"interaction_{index}"] = scalar_columns(irreps)

    @staticmethod
    def _gate_irreps(gate: Any) -> Any:
        for attribute in ("irreps_out", "gate_irreps_out"):
            if hasattr(gate, attribute):
                return getattr(gate, attribute)
        return gate.gate.irreps_out

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        from sevenn.atom_graph_data import AtomGraphData

        data = AtomGraphData.from_numpy_dict(self._to_graph(atoms, self.cutoff, with_shift=True))
        if self._modal is not None:
            data[self._keys.DATA_MODALITY] = self._modal
        return data, None

    def _collate(self, batch: Sequence[PreparedStructure]) -> Any:
        from torch_geometric.loader.dataloader import Collater

        return Collater([], follow_batch=None, exclude_keys=None)([item.graph for item in batch])

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        KEY = self._keys
        data = self._collate(batch).to(self.device)
        if not getattr(self.model, "eval_type_map", False):
            # HIENet-style models take type indices, not atomic numbers, as node input.
            data[KEY.NODE_FEATURE] = self._type_index.to(self.device)[data[KEY.ATOMIC_NUMBERS]]
        modules = {
            f"interaction_{index}": (
                self.model._modules[name], lambda out: out[KEY.NODE_FEATURE]
            )
            for index, name in self._blocks
        }
        with capture_outputs(modules) as captured:
            output = self.model(data)
        features = {}
        for layer, values in captured.items():
            features[layer] = values[:, self._scalars[layer]] if self.invariants_only else values
        return features, output[KEY.PRED_TOTAL_ENERGY].reshape(-1)
