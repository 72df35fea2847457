"""matgl ANI-1x-subset potentials (M3GNet, TensorNet, SO3Net): per-atom block features.

matgl wheels ship no weights: the card's ``weights: matgl/<name>`` folder (``model.json``,
``model.pt``, ``state.pt``) is found under the data root or through the ``path`` option.
``aggregate_on_destination`` makes matgl 4.1.2 run DGL-era M3GNet/TensorNet checkpoints as trained.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from matteralign.errors import AdapterError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.atom_features import pooled_structures_output

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _swap_first_two_blocks(linear: torch.nn.Linear, width: int) -> None:
    """Exchange input columns [0, width) and [width, 2 width) of a linear layer, in place."""
    weight = linear.weight.data
    linear.weight.data = torch.cat(
        [weight[:, width : 2 * width], weight[:, :width], weight[:, 2 * width :]], dim=1
    )


def _edge_index_hook(
    position: int, transform: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[torch.nn.Module, tuple[Any, ...]], tuple[Any, ...]]:
    """Forward pre-hook that replaces positional argument ``edge_index`` by its transform."""

    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        edge_index = args[position] if len(args) > position else None
        if not (isinstance(edge_index, torch.Tensor) and edge_index.ndim == 2
                and edge_index.shape[0] == 2):
            raise AdapterError(
                f"{type(module).__name__} was not called with edge_index (2, E) as positional "
                f"argument {position}; aggregate_on_destination supports matgl 4.1.x only"
            )
        return (*args[:position], transform(edge_index), *args[position + 1 :])

    return hook


def aggregate_on_destination(model: torch.nn.Module) -> torch.nn.Module:
    """Make matgl 4.1.x's M3GNet or TensorNet compute what a DGL-era checkpoint was trained to.

    matgl's DGL implementations summed each edge message onto the edge's *destination* atom
    (``update_all`` into ``dst``); TensorNet from matgl 2.2.0 and M3GNet from 3.0.0 sum onto
    the *source* atom instead, with the same weights (checked against matgl 2.1.2 with its
    DGL backend: energies within 5e-4 eV, features within 4e-4). Edges run both ways, so the
    change is invisible for a sum of messages that depend on the edge length only, but not for
    these messages, which concatenate the two end atoms' features in (source, destination)
    order (M3GNet edge and node updates, TensorNet embedding) or carry the destination atom's
    tensors (TensorNet interactions: at the destination, the old sum was that atom's own
    tensors weighted by its radial filters; at the source it is its neighbours'). The
    correction, in place and exact up to float rounding:

    - M3GNet: each ``M3GNetGraphConv`` runs on reversed edges (destination, source) with the
      source and destination blocks of the first layers of its edge- and node-update gated
      MLPs exchanged, so every message is the old one, summed onto the old destination.
      Bond vectors, the three-body block and the readout keep the original edges.
    - TensorNet: the embedding runs on reversed edges with the two halves of ``emb2``
      exchanged; each interaction gets edges (destination, destination).

    Parameters
    ----------
    model : matgl ``Potential`` or its ``M3GNet`` / ``TensorNet`` model
        Loaded with matgl 4.1.x (plain PyTorch layers, not the warp kernels).

    Returns
    -------
    torch.nn.Module
        The same object, corrected.

    Raises
    ------
    AdapterError
        For any other model or layer implementation.
    """
    net = getattr(model, "model", model)
    kind = type(net).__name__
    if kind == "M3GNet":
        for block in net.graph_layers:
            conv = block.conv
            if type(conv).__name__ != "M3GNetGraphConv" or conv.include_state:
                raise AdapterError(
                    "aggregate_on_destination supports stateless M3GNetGraphConv layers only"
                )
            width = conv.edge_update_func.in_feats // 3
            for gated in (conv.edge_update_func, conv.node_update_func):
                for branch in (gated.layers, gated.gates):
                    first = next(m for m in branch.modules() if isinstance(m, torch.nn.Linear))
                    _swap_first_two_blocks(first, width)
            conv.register_forward_pre_hook(_edge_index_hook(0, lambda e: e.flip(0)))
        return model
    if kind == "TensorNet":
        embedding = net.tensor_embedding
        if getattr(net, "_use_warp", False) or type(embedding).__name__ != "TensorEmbedding":
            raise AdapterError(
                "aggregate_on_destination supports TensorNet's PyTorch layers, not the warp kernels"
            )
        _swap_first_two_blocks(embedding.emb2, embedding.emb2.in_features // 2)
        embedding.register_forward_pre_hook(_edge_index_hook(1, lambda e: e.flip(0)))
        for layer in net.layers:
            layer.register_forward_pre_hook(_edge_index_hook(0, lambda e: e[1].expand(2, -1)))
        return model
    raise AdapterError(f"aggregate_on_destination applies to M3GNet and TensorNet, not {kind}")


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
    aggregate_on_destination : bool, default False
        Apply :func:`aggregate_on_destination` after loading: for M3GNet and TensorNet
        checkpoints trained with a DGL-era matgl (TensorNet ≤ 2.1.x, M3GNet ≤ 2.2.x), which
        matgl 4.1.2 otherwise runs with messages summed onto the other end of each edge.
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
        if self.options.get("aggregate_on_destination", False):
            aggregate_on_destination(potential)
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
