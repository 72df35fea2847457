"""matgl ANI-1x-subset potentials (M3GNet, TensorNet, SO3Net): per-atom block features.

matgl wheels ship no weights: the card's ``weights: matgl/<name>`` folder (``model.json``,
``model.pt``, ``state.pt``) is found under the data root or through the ``path`` option.
The ``aggregate_on_destination`` option (see :mod:`matteralign.models.matgl_models`) makes
matgl 4.1.2 run DGL-era M3GNet/TensorNet checkpoints as trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from matteralign.errors import AdapterError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.atom_features import pooled_structures_output
from matteralign.models.matgl_models import apply_aggregation_option

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def tensor_invariants(x: torch.Tensor) -> torch.Tensor:
    """Rotation invariants of TensorNet's per-atom Cartesian tensors.

    Parameters
    ----------
    x : (N, C, 3, 3) tensor
        Per-atom, per-channel rank-2 tensors X.

    Returns
    -------
    (N, 3C) tensor
        ``[|I|², |A|², |S|²]`` per channel, blocks of C columns: the squared Frobenius norms of
        the isotropic part I = tr(X)/3 · 1, the antisymmetric part A = (X − Xᵀ)/2 and the
        symmetric traceless part S = (X + Xᵀ)/2 − I, as TensorNet's own readout computes them.
    """
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    trace = x.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] / 3.0
    isotropic = trace * eye
    antisymmetric = 0.5 * (x - x.transpose(-2, -1))
    traceless = 0.5 * (x + x.transpose(-2, -1)) - isotropic
    return torch.cat(
        [(part**2).sum((-2, -1)) for part in (isotropic, antisymmetric, traceless)], dim=-1
    )


class MatglMolecularAdapter(ModelAdapter):
    """Node features after every interaction block of a matgl potential; its total energy.

    Options
    -------
    path : str, optional
        Model folder; default ``<data root>/weights/<card.weights>``.
    invariants_only : bool, default True
        TensorNet: ``True`` gives per channel the squared norms of the isotropic, antisymmetric
        and symmetric-traceless parts (3·64 columns); ``False`` the flattened tensors
        (64·9 columns, channel-major, then row, column). SO3Net: ``True`` gives the l = 0
        channels (64); ``False`` all real-spherical-harmonic components (9·64 columns,
        component-major in the order (l, m) = (0, 0), (1, -1..1), (2, -2..2)). M3GNet node
        features are invariant either way.
    aggregate_on_destination : bool or {"all", "embedding"}, default False
        Apply :func:`~matteralign.models.matgl_models.aggregate_on_destination` after loading
        (``True`` means ``"all"``): for M3GNet and TensorNet checkpoints trained with a DGL-era
        matgl (TensorNet ≤ 2.1.x, M3GNet ≤ 2.2.x), which matgl 4.1.2 otherwise runs with
        messages summed onto the other end of each edge.
    """

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if getattr(self, "_potential", None) is not None:
            return
        import matgl
        from matgl.ext.ase import Atoms2Graph

        self.device, self.dtype = device, dtype
        potential = matgl.load_model(str(self.weights_path()))
        potential.calc_forces = False
        potential.calc_stresses = False
        potential.calc_hessian = False
        potential = potential.to(device=device, dtype=_DTYPES[dtype]).eval()
        for parameter in potential.parameters():
            parameter.requires_grad_(False)
        self._kind = type(potential.model).__name__
        if self._kind not in ("M3GNet", "TensorNet", "SO3Net"):
            raise AdapterError(
                f"model {self.id}: expected a matgl M3GNet, TensorNet or SO3Net potential at "
                f"{self.weights_path()}, found {self._kind}"
            )
        apply_aggregation_option(potential, self.options, self.id)
        self._potential = potential
        self._converter = Atoms2Graph(potential.model.element_types, potential.model.cutoff)

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self._potential.parameters())

    def cost(self, item: Any) -> int:
        return len(item)

    def _layer(self, name: str, feature_dict: dict[str, Any]) -> torch.Tensor:
        """Per-atom rows of one layer, invariant or full as the options ask."""
        invariants_only = bool(self.options.get("invariants_only", True))
        if self._kind == "M3GNet":
            return feature_dict[name]["node_feat"]
        if self._kind == "TensorNet":
            if name == "atom_scalars":
                return feature_dict["readout"]
            x = feature_dict[name]
            return tensor_invariants(x) if invariants_only else x.flatten(1)
        x = feature_dict[name]  # SO3Net: (N, (lmax+1)^2, C)
        return x[:, 0] if invariants_only else x.flatten(1)

    def embed(
        self,
        batch: Sequence[Any],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Embed ase.Atoms in one batched forward pass (forces and stresses off).

        Returns pooled (B, D) per requested layer and the total energy (B,) in eV.
        """
        from torch_geometric.data import Batch

        self._check_layers(layers)
        graphs, lattices = [], []
        for atoms in batch:
            graph, lattice, _ = self._converter.get_graph(atoms)
            graphs.append(graph)
            lattices.append(torch.as_tensor(lattice).reshape(1, 3, 3))
        graph = Batch.from_data_list(graphs).to(self.device)
        lattice = torch.cat(lattices).to(self.device)
        with torch.inference_mode():
            energies = self._potential(graph, lattice, None)[0]
            feature_dict = self._potential.model.feature_dict
            features = {layer: self._layer(layer, feature_dict) for layer in layers}
        energy = energies.detach().cpu().to(torch.float64).numpy().reshape(len(batch))
        return pooled_structures_output(features, batch, pooling, per_item=per_item, energy=energy)

    def unload(self) -> None:
        self._potential = None
