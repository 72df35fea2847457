"""Orb adapter: node features after every message-passing step (forward hooks), one batched graph.

Runs in the ``orb`` model environment. Published checkpoints load by name through orb-models'
own loaders (``orb_models.forcefield.pretrained.ORB_PRETRAINED_MODELS``, which fetch the weights
with ``cached_path``); the ``weights`` option points the same loader at a local file.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError, ModelNotFoundError
from matteralign.models.mlip_adapter import MLIPAdapter, PreparedStructure, capture_outputs


class OrbAdapter(MLIPAdapter):
    """Orb v2 / v3 (Neumann et al. 2024; Rhodes et al. 2025), forces and stress switched off.

    Options
    -------
    checkpoint : str
        A name in orb-models' ``ORB_PRETRAINED_MODELS`` (``orb-v2``,
        ``orb-v3-conservative-inf-omat``, ``orb-v3-direct-20-mpa``, ...).
    weights : str, optional
        A local weights file (state dict) for that loader; default the published URL, fetched and
        cached by orb-models.
    architecture : dict, optional
        Build another architecture with one of orb-models' own constructors instead of the
        published one: ``{function: orb_v3_conservative_architecture, latent_dim: 16, ...,
        system_config: {radius: 6.0, max_num_neighbors: 20}}``; needs ``weights``.

    Layers are ``message_passing_<i>``: the node features returned by step i of the GNS
    (``model.model.gnn_stacks[i]``); the last one is what the energy head reads. All Orb features
    are invariant (Orb is not equivariant; v3 is trained towards rotational invariance).
    """

    supported_dtypes = ("float32", "float64")

    def __init__(self, card, **options: Any) -> None:  # noqa: ANN001
        super().__init__(card, **options)
        self.checkpoint_path: Path | None = None
        self.checkpoint_sha256 = ""

    def _build(self, device: str, precision: str) -> tuple[Any, str]:
        """orb-models' model for the options, and the weights it read (URL or path)."""
        from orb_models.forcefield import pretrained
        from orb_models.forcefield.atomic_system import SystemConfig

        weights = self.options.get("weights")
        architecture = self.options.get("architecture")
        if architecture:
            if not weights:
                raise AdapterError(f"model {self.id}: option architecture needs option weights")
            arguments = dict(architecture)
            build = getattr(pretrained, str(arguments.pop("function")))
            system = SystemConfig(**arguments.pop("system_config",
                                                  {"radius": 6.0, "max_num_neighbors": 20}))
            model = build(device="cpu", system_config=system, **arguments)
            return pretrained.load_model(model, str(weights), device, precision=precision,
                                         compile=False), str(weights)
        name = str(self.options.get("checkpoint", ""))
        if name not in pretrained.ORB_PRETRAINED_MODELS:
            raise AdapterError(f"model {self.id}: orb-models has no checkpoint {name!r}; it has "
                               f"{sorted(pretrained.ORB_PRETRAINED_MODELS)}")
        loader = pretrained.ORB_PRETRAINED_MODELS[name]
        weights = str(weights or inspect.signature(loader).parameters["weights_path"].default)
        return loader(weights_path=weights, device=device, precision=precision,
                      compile=False), weights

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        from cached_path import cached_path

        precision = "float64" if dtype == "float64" else "float32-highest"  # no TF32
        try:
            model, weights = self._build(device, precision)
            path = Path(cached_path(weights))  # the local file (no second download)
        except (OSError, ConnectionError, FileNotFoundError) as error:
            raise ModelNotFoundError(
                f"model {self.id}: orb-models could not fetch its weights ({error}); with no "
                "internet, pass option weights=<path of the .ckpt file>"
            ) from None
        steps = len(model.model.gnn_stacks)
        expected = [f"message_passing_{i}" for i in range(steps)]
        if expected != self.layer_names:
            raise AdapterError(
                f"model {self.id}: weights have layers {expected}, card lists {self.layer_names}"
            )
        self.model = model.eval()
        self.device, self.dtype = device, dtype
        self.system_config = model.system_config
        self.energy_name = getattr(model, "energy_name", "energy")
        self.checkpoint_path = path
        with open(path, "rb") as handle:
            self.checkpoint_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        from orb_models.forcefield.atomic_system import ase_atoms_to_atom_graphs

        graph = ase_atoms_to_atom_graphs(
            atoms, self.system_config, device=torch.device("cpu"), edge_method="knn_scipy",
            output_dtype=getattr(torch, self.dtype),
        )
        return graph, None

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        from orb_models.forcefield.base import batch_graphs

        graphs = batch_graphs([item.graph for item in batch]).to(self.device)
        modules = {f"message_passing_{i}": (step, lambda out: out[0])
                   for i, step in enumerate(self.model.model.gnn_stacks)}
        with capture_outputs(modules) as captured:
            nodes = self.model.model(graphs)["node_features"]
        # The energy as orb-models computes it, without the force/stress autograd pass.
        head = self.model.heads[self.energy_name]
        energy = head.denormalize(head(nodes, graphs), graphs)
        if self.model.pair_repulsion:
            energy = energy + self.model.pair_repulsion_fn(graphs)["energy"]
        return dict(captured), energy.reshape(-1)

    def unload(self) -> None:
        self.model = None
