"""matgl adapters (M3GNet, TensorNet): per-atom features of every block, batched PyG graphs.

matgl wheels ship no weights: the card's ``weights: matgl/<folder>`` is found under a data root
(see :meth:`ModelAdapter.weights_path`); the option ``name`` instead loads a matgl model name,
which downloads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from matteralign.errors import AdapterError, SampleError
from matteralign.models.mlip_adapter import MLIPAdapter, PreparedStructure, capture_outputs


def tensor_invariants(features: torch.Tensor) -> torch.Tensor:
    """Rotation invariants of TensorNet's rank-2 per-channel features.

    Each (3, 3) channel tensor X splits into its isotropic part I, antisymmetric part A and
    symmetric traceless part S; the invariants are the squared Frobenius norms
    ``[|I|², |A|², |S|²]``, exactly what TensorNet feeds its own readout.

    Parameters
    ----------
    features : (n_atoms, C, 3, 3) tensor

    Returns
    -------
    (n_atoms, 3 C) tensor, ordered [all |I|², all |A|², all |S|²].
    """
    from matgl.utils.maths import decompose_tensor, tensor_norm

    isotropic, antisymmetric, traceless = decompose_tensor(features)
    return torch.cat(
        (tensor_norm(isotropic), tensor_norm(antisymmetric), tensor_norm(traceless)), dim=-1
    )


class MatGLAdapter(MLIPAdapter):
    """A matgl ``Potential`` (M3GNet or TensorNet) with forces and stresses switched off.

    Options
    -------
    path : str, optional
        Folder with ``model.json``, ``model.pt``, ``state.pt``; default from the data root.
    name : str, optional
        A matgl model name for :func:`matgl.load_model` (downloads; not used by tests).

    Layers
    ------
    M3GNet: ``gc_<i>``, the (n_atoms, 64) node features after graph convolution block i.
    TensorNet: ``gc_<i>``, the (n_atoms, C, 3, 3) tensor features after interaction block i
    (invariants: (n_atoms, 3 C) norms of their isotropic / antisymmetric / traceless parts;
    ``invariants_only: false`` gives the flattened C×9 tensors), then ``readout``, the
    (n_atoms, C) scalars after TensorNet's norm and linear layer, input of the energy MLP.
    """

    architectures: tuple[str, ...] = ("M3GNet", "TensorNet")
    """Names of the model classes whose blocks :meth:`_modules` knows how to hook."""

    def _load_potential(self) -> Any:
        import matgl

        if self.options.get("name") and not self.options.get("path"):
            return matgl.load_model(str(self.options["name"]))
        path = self.weights_path()
        missing = [f for f in ("model.json", "model.pt", "state.pt") if not (path / f).is_file()]
        if missing:
            raise AdapterError(
                f"{path} is not a matgl model folder for {self.id} (missing {missing})"
            )
        return matgl.load_model(path)

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        potential = self._load_potential()
        potential.calc_forces = False
        potential.calc_stresses = False
        potential.calc_hessian = False
        self.model = potential.to(device).eval()
        self.device, self.dtype = device, dtype
        inner = potential.model
        self.element_types = tuple(inner.element_types)
        self.cutoff = float(inner.cutoff)
        self.architecture = type(inner).__name__
        if self.architecture not in self.architectures:
            raise AdapterError(f"model {self.id}: matgl class {self.architecture} is not supported")

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        from matgl.ext.ase import Atoms2Graph

        if atoms.pbc.any() and not atoms.pbc.all():
            raise SampleError(
                sample_id,
                f"{self.id} takes fully periodic or non-periodic cells, got pbc={atoms.pbc}",
            )
        graph, lattice, state = Atoms2Graph(self.element_types, self.cutoff).get_graph(atoms)
        lattice = torch.as_tensor(np.asarray(lattice), dtype=torch.float32).reshape(1, 3, 3)
        return graph, (lattice, torch.as_tensor(np.asarray(state), dtype=torch.float32))

    def _modules(self) -> dict[str, tuple[torch.nn.Module, Any]]:
        inner = self.model.model
        if self.architecture == "M3GNet":
            return {
                f"gc_{i + 1}": (layer, lambda out: out[1])
                for i, layer in enumerate(inner.graph_layers)
            }
        convert = tensor_invariants if self.invariants_only else (lambda x: x.flatten(1))
        modules = {
            f"gc_{i + 1}": (layer, lambda out, convert=convert: convert(out))
            for i, layer in enumerate(inner.layers)
        }
        modules["readout"] = (inner.linear, lambda out: out)
        return modules

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        from torch_geometric.data import Batch

        graphs = Batch.from_data_list([item.graph for item in batch]).to(self.device)
        lattice = torch.cat([item.extra[0] for item in batch]).to(self.device)
        state = torch.stack([item.extra[1] for item in batch]).to(self.device)
        with capture_outputs(self._modules()) as captured:
            energy = self.model(graphs, lattice, state)[0]
        return dict(captured), energy.reshape(-1)
