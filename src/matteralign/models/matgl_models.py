"""matgl adapters (M3GNet, TensorNet): per-atom features of every block, batched PyG graphs.

matgl wheels ship no weights: the card's ``weights: matgl/<folder>`` is found under a data root
(see :meth:`ModelAdapter.weights_path`); the option ``name`` instead loads a matgl model name,
which downloads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from matteralign.errors import AdapterError, SampleError
from matteralign.models.mlip_adapter import MLIPAdapter, PreparedStructure, capture_outputs

AggregationBlocks = Literal["all", "embedding"]
"""Which message-passing blocks :func:`aggregate_on_destination` moves back to the destination."""


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


def aggregation_blocks(option: Any, model_id: str) -> AggregationBlocks | None:
    """Read an ``aggregate_on_destination`` option: ``None`` (off), ``"all"`` or ``"embedding"``.

    ``True`` means ``"all"``; ``False`` or a missing option means off.

    Raises
    ------
    AdapterError
        For any other value, naming the model.
    """
    if option is None or option is False:
        return None
    if option is True or option == "all":
        return "all"
    if option == "embedding":
        return "embedding"
    raise AdapterError(
        f"model {model_id}: option aggregate_on_destination must be true, false, 'all' or "
        f"'embedding', got {option!r}"
    )


def apply_aggregation_option(potential: torch.nn.Module, options: dict[str, Any],
                             model_id: str) -> None:
    """Apply the ``aggregate_on_destination`` adapter option (if set) to a loaded potential."""
    blocks = aggregation_blocks(options.get("aggregate_on_destination"), model_id)
    if blocks is not None:
        aggregate_on_destination(potential, blocks)


def aggregate_on_destination(
    model: torch.nn.Module, blocks: AggregationBlocks = "all"
) -> torch.nn.Module:
    """Make matgl 4.1.x's M3GNet or TensorNet compute what an older checkpoint was trained to.

    matgl's DGL implementations summed each edge message onto the edge's *destination* atom
    (``update_all`` into ``dst``); TensorNet from matgl 2.2.0 and M3GNet from 3.0.0 sum onto
    the *source* atom instead, with the same weights (checked against matgl 2.1.2: ANI-1x
    molecules with its DGL backend, energies within 5e-4 eV and features within 4e-4; 275
    multi-element crystals, within 0.6 meV/atom for the M3GNet MP/MatPES checkpoints and
    0.004 meV/atom for the PyG TensorNet MatPES ones with ``blocks="embedding"``; see their
    cards). Edges run both ways, so the change is invisible for a sum of messages that depend
    on the edge length only, but not for these messages, which concatenate the two end atoms'
    features in (source, destination) order (M3GNet edge and node updates, TensorNet
    embedding) or carry the destination atom's tensors (DGL TensorNet interactions: at the
    destination, the old sum was that atom's own tensors weighted by its radial filters; at
    the source it is its neighbours'). matgl's PyG
    TensorNet of 1.3.0–2.1.x (model version 1, ``matgl.models._tensornet_pyg``) already
    summed interaction messages onto the source as 4.1.x does; only its embedding summed onto
    the destination. The correction, in place and exact up to float rounding:

    - M3GNet (``blocks="all"``): each ``M3GNetGraphConv`` runs on reversed edges
      (destination, source) with the source and destination blocks of the first layers of
      its edge- and node-update gated MLPs exchanged, so every message is the old one, summed
      onto the old destination. Bond vectors, the three-body block and the readout keep the
      original edges.
    - TensorNet: the embedding runs on reversed edges with the two halves of ``emb2``
      exchanged; with ``blocks="all"`` (DGL TensorNet checkpoints) each interaction also gets
      edges (destination, destination); with ``blocks="embedding"`` (PyG TensorNet of matgl
      1.3.0–2.1.x) the interactions are left as they are.

    Parameters
    ----------
    model : matgl ``Potential`` or its ``M3GNet`` / ``TensorNet`` model
        Loaded with matgl 4.1.x (plain PyTorch layers, not the warp kernels).
    blocks : {"all", "embedding"}
        ``"embedding"`` applies to TensorNet only.

    Returns
    -------
    torch.nn.Module
        The same object, corrected.

    Raises
    ------
    AdapterError
        For any other model, layer implementation or ``blocks`` value.
    """
    if blocks not in ("all", "embedding"):
        raise AdapterError(f"aggregate_on_destination: blocks must be 'all' or 'embedding', "
                           f"got {blocks!r}")
    net = getattr(model, "model", model)
    kind = type(net).__name__
    if kind == "M3GNet":
        if blocks != "all":
            raise AdapterError("aggregate_on_destination: M3GNet takes blocks='all' only")
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
        if blocks == "all":
            for layer in net.layers:
                layer.register_forward_pre_hook(_edge_index_hook(0, lambda e: e[1].expand(2, -1)))
        return model
    raise AdapterError(f"aggregate_on_destination applies to M3GNet and TensorNet, not {kind}")


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
    aggregate_on_destination : bool or {"all", "embedding"}, default False
        Apply :func:`aggregate_on_destination` after loading (``True`` means ``"all"``), so
        that matgl 4.1.x computes the function a checkpoint was trained with: ``"all"`` for
        M3GNet checkpoints of the DGL era (matgl < 3.0), ``"embedding"`` for TensorNet
        checkpoints written by the PyG TensorNet of matgl 1.3.0–2.1.x (model version 1).

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
        apply_aggregation_option(potential, self.options, self.id)

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
