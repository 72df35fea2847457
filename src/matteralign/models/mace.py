"""MACE adapter: per-atom node features after every interaction block, one batched graph.

Runs in the ``mace`` model environment (mace-torch pins ``e3nn==0.4.4``). Published checkpoints
load by name through mace-torch's own loaders (``mace_mp`` / ``mace_off``, which download into
``~/.cache/mace``); a local ``.model`` file works too. Either way the model comes from
``MACECalculator``, so dtype conversion, heads and the atomic-number table are the package's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError, ModelNotFoundError
from matteralign.models.mlip_adapter import (
    MLIPAdapter,
    PreparedStructure,
    capture_outputs,
    refuse_uncovered_elements,
)
from matteralign.models.sevennet import scalar_columns


class MACEAdapter(MLIPAdapter):
    """MACE (Batatia et al. 2022) foundation potentials, forces switched off.

    Options
    -------
    checkpoint : str
        A published name of mace-torch's loader for ``source`` (``mp``: ``small``, ``medium``,
        ``large``, ``medium-mpa-0``, ``small-omat-0``, ``medium-omat-0``, ...; ``off``:
        ``small``, ``medium``, ``large``), or the path of a ``.model`` file.
    source : {"mp", "off"}
        Which loader a published name goes to (``mace_mp`` or ``mace_off``).
    head : str, optional
        Head of a multi-head checkpoint; default the package's choice (the only head, or
        ``Default``). Recorded in the options, so in the shard hash and provenance.
    invariants_only : bool, default True
        Layers hold the L=0 (``0e``) channels of each block's node features (the invariant
        embedding); ``False`` gives the full irreps vector, flattened in e3nn order (the
        equivariant embedding).

    Layers are ``interaction_<i>``: the node features after the product basis of interaction
    block i, the tensors that ``MACECalculator.get_descriptors`` concatenates (its
    ``num_layers=k`` takes the first k of them). The last block carries scalars only.
    """

    supported_dtypes = ("float32", "float64")

    def __init__(self, card, **options: Any) -> None:  # noqa: ANN001
        super().__init__(card, **options)
        self.checkpoint_path: Path | None = None
        self.checkpoint_sha256 = ""

    def _calculator(self, device: str, dtype: str) -> Any:
        """mace-torch's MACECalculator for the ``checkpoint`` option, and the file it read."""
        from mace.calculators import MACECalculator, mace_mp, mace_off
        from mace.calculators.foundations_models import download_mace_mp_checkpoint, mace_off_urls
        from mace.tools.utils import get_cache_dir

        checkpoint = str(self.options.get("checkpoint", ""))
        extra = {"head": str(self.options["head"])} if self.options.get("head") else {}
        local = Path(checkpoint).expanduser()
        if local.is_file():
            calculator = MACECalculator(model_paths=str(local), device=device,
                                        default_dtype=dtype, **extra)
            return calculator, local
        source = self.options.get("source", "mp")
        if source not in ("mp", "off"):
            raise AdapterError(f"model {self.id}: option source must be 'mp' or 'off', "
                               f"not {source!r}")
        loader = mace_mp if source == "mp" else mace_off
        try:
            calculator = loader(model=checkpoint, device=device, default_dtype=dtype, **extra)
        except (RuntimeError, FileNotFoundError, OSError) as error:
            raise ModelNotFoundError(
                f"model {self.id}: mace-torch could not load checkpoint {checkpoint!r} "
                f"({error.__cause__ or error}); with no internet, pass option checkpoint=<path "
                "of the .model file>"
            ) from None
        if source == "mp":
            path = Path(download_mace_mp_checkpoint(checkpoint))  # the cached file, no download
        else:
            path = get_cache_dir() / Path(mace_off_urls[checkpoint]).name.split("?")[0]
        return calculator, path

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        from mace import data as mace_data

        calculator, path = self._calculator(device, dtype)
        model = calculator.models[0]
        if calculator.model_type != "MACE" or not hasattr(model, "products"):
            raise AdapterError(f"model {self.id}: checkpoint {path} is no MACE energy model")
        n_blocks = len(model.products)
        expected = [f"interaction_{i}" for i in range(n_blocks)]
        if expected != self.layer_names:
            raise AdapterError(
                f"model {self.id}: checkpoint has layers {expected}, card lists {self.layer_names}"
            )
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        self.model = model.eval()
        self.device, self.dtype = device, dtype
        self._data = mace_data
        self._keys = mace_data.KeySpecification()
        self.z_table = calculator.z_table
        self.cutoff = float(calculator.r_max)
        self.head = calculator.head
        self.heads = list(calculator.available_heads)
        self._numbers = {int(z) for z in self.z_table.zs}
        self._scalars = {
            f"interaction_{i}": scalar_columns(product.linear.irreps_out)
            for i, product in enumerate(model.products)
        }
        self.checkpoint_path = path
        with open(path, "rb") as handle:
            self.checkpoint_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        refuse_uncovered_elements(atoms, self._numbers.__contains__, sample_id, self.id)
        config = self._data.config_from_atoms(atoms, key_specification=self._keys,
                                              head_name=self.head)
        graph = self._data.AtomicData.from_config(config, z_table=self.z_table,
                                                  cutoff=self.cutoff, heads=self.heads)
        return graph, None

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        from mace.tools.torch_geometric import Batch

        data = Batch.from_data_list([item.graph for item in batch]).to(self.device)
        dtype = getattr(torch, self.dtype)
        inputs = {key: value.to(dtype) if torch.is_floating_point(value) else value
                  for key, value in data.to_dict().items() if isinstance(value, torch.Tensor)}
        modules = {f"interaction_{i}": (product, lambda out: out)
                   for i, product in enumerate(self.model.products)}
        with capture_outputs(modules) as captured:
            output = self.model(inputs, compute_force=False, training=False)
        features = {}
        for layer, values in captured.items():
            features[layer] = values[:, self._scalars[layer]] if self.invariants_only else values
        return features, output["energy"].reshape(-1)

    def unload(self) -> None:
        self.model = None

