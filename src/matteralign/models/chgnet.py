"""CHGNet adapter: per-atom features after every atom-convolution block, batched, with energies.

Weights ship in the ``chgnet`` wheel (0.3.0, 0.2.0, r2scan); the ``version`` option picks one.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from matteralign.errors import SampleError
from matteralign.models.mlip_adapter import (
    MLIPAdapter,
    PreparedStructure,
    capture_outputs,
    nonperiodic_in_box,
)


class CHGNetAdapter(MLIPAdapter):
    """CHGNet (Deng et al. 2023) through its own graph converter and ``BatchedGraph``.

    Options
    -------
    version : {"0.3.0", "0.2.0", "r2scan"}
        Bundled checkpoint.

    Layers are ``atom_conv_<i>``: the (n_atoms, 64) atom features after each atom-convolution
    block; the last one is taken after CHGNet's readout norm when the model has one, i.e. the
    input of the energy MLP. CHGNet features are all invariant, so ``invariants_only`` changes
    nothing.
    """

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        from chgnet.model import CHGNet

        self.model = CHGNet.load(
            model_name=str(self.options.get("version", "0.3.0")), use_device=device,
            verbose=False,
        ).eval()
        self.device, self.dtype = device, dtype
        self._converter = self.model.graph_converter

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        from pymatgen.io.ase import AseAtomsAdaptor

        if not atoms.pbc.any():
            atoms = nonperiodic_in_box(atoms, padding=self._converter.atom_graph_cutoff + 2.0)
        try:
            structure = AseAtomsAdaptor.get_structure(atoms)
            with warnings.catch_warnings():
                # The converter's formula sorts elements by electronegativity, which pymatgen
                # warns it lacks for He, Ne and Ar; the order is irrelevant to the graph.
                warnings.filterwarnings("ignore", message="No Pauling electronegativity for")
                graph = self._converter(structure, graph_id=sample_id)
        except (ValueError, RuntimeError) as error:
            raise SampleError(sample_id, f"CHGNet graph conversion failed: {error}") from error
        return graph, None

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        model = self.model
        n_conv = len(model.atom_conv_layers)
        modules = {
            f"atom_conv_{i}": (layer, lambda out: out)
            for i, layer in enumerate(model.atom_conv_layers)
        }
        if model.readout_norm is not None:
            modules[f"atom_conv_{n_conv - 1}"] = (model.readout_norm, lambda out: out)
        graphs = [item.graph.to(self.device) for item in batch]
        with capture_outputs(modules) as captured:
            prediction = model(graphs, task="e")
        energy_per_atom = prediction["e"].reshape(-1)
        n_atoms = torch.tensor([item.n_atoms for item in batch], dtype=energy_per_atom.dtype,
                               device=energy_per_atom.device)
        energy = energy_per_atom * n_atoms if model.is_intensive else energy_per_atom
        return dict(captured), energy
