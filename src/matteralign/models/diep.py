"""DIEP adapter: node features after every graph-convolution block of a DIEP potential, batched.

``diep==2.0.0`` bundles ``diep_fold1`` (MatPES r2SCAN); the ``path`` option loads another
exported DIEP folder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from matteralign.errors import AdapterError, SampleError
from matteralign.models.matgl_models import MatGLAdapter


class DIEPAdapter(MatGLAdapter):
    """DIEP (M3GNet-like message passing on a density-integral edge basis), PyG backend.

    Options
    -------
    path : str, optional
        Exported model folder; default the bundled ``diep/pretrained_models/diep_fold1``.

    Layers are ``gc_<i>``, the (n_atoms, 64) node features after graph convolution block i;
    all are invariant.
    """

    architectures = ("DIEP",)  # the only model class the diep package has

    def _load_potential(self) -> Any:
        from diep.pretrained import load_potential

        try:
            return load_potential(self.options.get("path"), stress=False)
        except FileNotFoundError as error:
            raise AdapterError(f"model {self.id}: {error}") from error

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        from diep.ext.ase import Atoms2Graph

        if atoms.pbc.any() and not atoms.pbc.all():
            raise SampleError(
                sample_id,
                f"{self.id} takes fully periodic or non-periodic cells, got pbc={atoms.pbc}",
            )
        wrapped = atoms.copy()
        wrapped.wrap()  # exact under PBC; keeps the neighbour search small (see diep.pretrained)
        graph, lattice, state = Atoms2Graph(self.element_types, self.cutoff).get_graph(wrapped)
        lattice = torch.as_tensor(np.asarray(lattice), dtype=torch.float32).reshape(1, 3, 3)
        return graph, (lattice, torch.as_tensor(np.asarray(state), dtype=torch.float32))

    def _modules(self) -> dict[str, tuple[torch.nn.Module, Any]]:
        return {
            f"gc_{i + 1}": (layer, lambda out: out[1])
            for i, layer in enumerate(self.model.model.graph_layers)
        }
