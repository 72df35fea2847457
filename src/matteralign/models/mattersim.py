"""MatterSim adapter: atom features after every M3GNet interaction block, one batched graph.

Runs in the ``mattersim`` model environment. Published checkpoints load by name through
mattersim's own loader (``Potential.from_checkpoint``, which downloads into
``~/.local/mattersim/pretrained_models``); a local checkpoint file works too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError, ModelNotFoundError
from matteralign.models.mlip_adapter import MLIPAdapter, PreparedStructure, capture_outputs
from matteralign.models.weights import MATTERSIM_CHECKPOINTS, mattersim_published_path


class MatterSimAdapter(MLIPAdapter):
    """MatterSim v1 (Yang et al. 2024), an M3GNet graph network; forces and stress off.

    Options
    -------
    checkpoint : str
        ``mattersim-v1.0.0-1M`` or ``mattersim-v1.0.0-5M`` (mattersim's published names), or the
        path of a checkpoint file in mattersim's format (``model_args`` and ``model``).

    Layers are ``interaction_<i>``: the atom features returned by M3GNet block i
    (``model.graph_conv[i]``); the last is what the energy MLP reads. All are invariant.
    Non-periodic structures are put in a large box by mattersim's own graph converter.
    """

    supported_dtypes = ("float32",)

    def __init__(self, card, **options: Any) -> None:  # noqa: ANN001
        super().__init__(card, **options)
        self.checkpoint_path: Path | None = None
        self.checkpoint_sha256 = ""

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        from mattersim.datasets.utils.convertor import GraphConvertor
        from mattersim.forcefield.potential import Potential, batch_to_dict

        checkpoint = str(self.options.get("checkpoint", ""))
        local = Path(checkpoint).expanduser()
        if local.is_file():
            path = local
        elif (published := mattersim_published_path(checkpoint)) is not None:
            path = published
        else:
            raise AdapterError(f"model {self.id}: checkpoint {checkpoint!r} is neither a file "
                               f"nor one of mattersim's names {sorted(MATTERSIM_CHECKPOINTS)}")
        try:
            potential = Potential.from_checkpoint(load_path=checkpoint, device=device,
                                                  load_training_state=False)
        except (OSError, RuntimeError, ConnectionError) as error:
            raise ModelNotFoundError(
                f"model {self.id}: mattersim could not load checkpoint {checkpoint!r} ({error}); "
                "with no internet, pass option checkpoint=<path of the .pth file>"
            ) from None
        model = potential.model
        steps = len(model.graph_conv)
        expected = [f"interaction_{i}" for i in range(steps)]
        if expected != self.layer_names:
            raise AdapterError(
                f"model {self.id}: checkpoint has layers {expected}, card lists {self.layer_names}"
            )
        arguments = model.get_model_args()
        self._convertor = GraphConvertor("m3gnet", arguments["cutoff"], True,
                                         arguments["threebody_cutoff"])
        self._to_inputs = batch_to_dict
        self.model = model.eval()
        self.device, self.dtype = device, dtype
        self.checkpoint_path = path
        with open(path, "rb") as handle:
            self.checkpoint_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        import warnings

        with warnings.catch_warnings():  # "No PBC detected, using a large supercell"
            warnings.simplefilter("ignore", UserWarning)
            return self._convertor.convert(atoms.copy(), None, None, None), None

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        from torch_geometric.data import Batch

        graphs = Batch.from_data_list([item.graph for item in batch])
        inputs = self._to_inputs(graphs, model_type="m3gnet", device=self.device)
        modules = {f"interaction_{i}": (block, lambda out: out[0])
                   for i, block in enumerate(self.model.graph_conv)}
        with capture_outputs(modules) as captured:
            energy = self.model(inputs)
        return dict(captured), energy.reshape(-1)

    def unload(self) -> None:
        self.model = None
