"""fairchem adapter (UMA, eSEN): the L=0 part of the node embedding after every block.

Runs in the ``fairchem`` model environment (fairchem-core 2). Published checkpoints load by name
through fairchem's own loader (``pretrained_mlip.resolve_checkpoint``, which downloads from the
Hugging Face hub into ``~/.cache/fairchem``, then ``load_predict_unit``, as
``pretrained_mlip.get_predict_unit`` does); a local checkpoint file works too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
from matteralign.models.mlip_adapter import MLIPAdapter, PreparedStructure, capture_outputs

# The backbone's output: the last block's node embedding after the final norm, what every
# output head reads (fairchem's own ``embeddings`` output).
FINAL_LAYER = "node_embedding"
# The seed of the random roll angle about each edge that fairchem draws in every forward pass.
ROLL_SEED = 0


class FairChemAdapter(MLIPAdapter):
    """UMA (Wood et al. 2025) and eSEN (Fu et al. 2025) through fairchem-core 2; forces off.

    Options
    -------
    checkpoint : str
        A name in fairchem's ``pretrained_mlip.available_models`` (``uma-s-1p1``,
        ``uma-m-1p1``, ``esen-sm-conserving-all-omol``, ...) or the path of a checkpoint file
        in fairchem's inference format (``MLIPInferenceCheckpoint``).
    task : str, optional
        The task head, which for UMA also selects the dataset embedding and the experts:
        ``omat`` (inorganic materials, the paper's choice on materials), ``omol`` (molecules and
        proteins), ``oc20``, ``odac``, ``omc``. Default: the checkpoint's only task. For
        ``omol`` a structure's charge and spin come from ``atoms.info`` (default 0 and 1, as
        fairchem's calculator sets them). Recorded in each shard's provenance.
    invariants_only : bool, default True
        Layers hold the L=0 coefficient of every channel; ``False`` gives all (l, m)
        coefficients, flattened l-major ((lmax + 1)² x channels per atom).

    Layers are ``block_<i>``: the node embedding (N, (lmax + 1)², C) returned by message-passing
    block i (``backbone.blocks[i]``), and ``node_embedding``: the backbone's output, the last
    block after the final RMS norm, which the energy head reads. Coefficient 0 along the
    second axis is l = 0, the invariant part; fairchem itself warns that its l > 0 parts are
    not in a standard basis. Elements with atomic number at or above the backbone's
    ``max_num_elements`` (100) fail per sample.

    fairchem draws a random roll angle about every edge in each forward pass (its SO(2)
    convolutions make the output independent of it up to rounding); the adapter seeds that draw
    per batch, so a rerun is bit-identical.
    """

    supported_dtypes = ("float32", "float64")

    def __init__(self, card, **options: Any) -> None:  # noqa: ANN001
        super().__init__(card, **options)
        self.checkpoint_path: Path | None = None
        self.checkpoint_sha256 = ""
        self.task = ""

    def _predict_unit(self, device: str, dtype: str) -> tuple[Any, Path]:
        """fairchem's MLIPPredictUnit for the ``checkpoint`` option, and the file it read."""
        from fairchem.core.calculate import pretrained_mlip
        from fairchem.core.units.mlip_unit import load_predict_unit
        from fairchem.core.units.mlip_unit.api.inference import InferenceSettings

        checkpoint = str(self.options.get("checkpoint", ""))
        try:
            resolved = pretrained_mlip.resolve_checkpoint(checkpoint)
        except pretrained_mlip.UnknownCheckpointError:
            raise AdapterError(
                f"model {self.id}: checkpoint {checkpoint!r} is neither a file nor one of "
                f"fairchem's names {sorted(pretrained_mlip.available_models)}"
            ) from None
        except OSError as error:  # hub unreachable, offline mode, gated repository
            raise ModelNotFoundError(
                f"model {self.id}: fairchem could not fetch checkpoint {checkpoint!r} ({error}); "
                "with no internet, pass option checkpoint=<path of the .pt file>"
            ) from None
        # The general backend in full precision, experts unmerged (batches mix compositions),
        # no compilation, no activation checkpointing, no force/stress tasks added.
        settings = InferenceSettings(
            tf32=False, activation_checkpointing=False, merge_mole=False, compile=False,
            external_graph_gen=False, execution_mode="general",
            base_precision_dtype=getattr(torch, dtype), auto_add_default_untrained_tasks=False,
        )
        unit = load_predict_unit(resolved.path, inference_settings=settings,
                                 device=torch.device(device).type,
                                 atom_refs=resolved.atom_refs,
                                 form_elem_refs=resolved.form_elem_refs)
        return unit, Path(resolved.path)

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        from fairchem.core.datasets.atomic_data import AtomicData, atomicdata_list_to_batch
        from fairchem.core.units.mlip_unit.api import inference

        unit, path = self._predict_unit(device, dtype)
        datasets = sorted(unit.dataset_to_tasks)
        task = str(self.options.get("task") or (datasets[0] if len(datasets) == 1 else ""))
        if task not in datasets:
            raise AdapterError(f"model {self.id}: option task must be one of {datasets}, "
                               f"not {task or 'unset'!r}")
        energy = [t for t in unit.dataset_to_tasks[task] if t.property == "energy"]
        if not energy:
            raise AdapterError(f"model {self.id}: checkpoint has no energy task for {task!r}")
        model = unit.model.module  # the HydraModel: backbone and output heads
        backbone = model.backbone
        expected = [f"block_{i}" for i in range(len(backbone.blocks))] + [FINAL_LAYER]
        if expected != self.layer_names:
            raise AdapterError(
                f"model {self.id}: checkpoint has layers {expected}, card lists {self.layer_names}"
            )
        # Energy only: no autograd forces or stress (heads and backbone share this config).
        backbone.regress_config.forces = False
        backbone.regress_config.stress = False
        backbone.regress_config.hessian = False
        model.requires_grad_(False)
        self.model = model.to(device=device, dtype=getattr(torch, dtype)).eval()
        self.device, self.dtype = device, dtype
        self.task = task
        self._unit = unit
        self._settings = unit.inference_settings
        self._prepared = False  # fairchem prepares the model on its first batch
        self._energy_task = energy[0]
        self._max_z = int(backbone.max_num_elements)
        self._cutoff = float(backbone.cutoff)
        self._defaults = ({"charge": inference.DEFAULT_CHARGE, "spin": inference.DEFAULT_SPIN_OMOL}
                          if task == inference.UMATask.OMOL.value else {})
        self._from_ase = AtomicData.from_ase
        self._collate = atomicdata_list_to_batch
        self.checkpoint_path = path
        with open(path, "rb") as handle:
            self.checkpoint_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        unknown = sorted({int(z) for z in atoms.numbers if z >= self._max_z})
        if unknown:
            from ase.data import chemical_symbols

            symbols = ", ".join(chemical_symbols[z] for z in unknown)
            raise SampleError(sample_id, f"element(s) {symbols} not covered by {self.id}")
        atoms = atoms.copy()
        for key, value in self._defaults.items():  # set quietly; fairchem warns per structure
            atoms.info.setdefault(key, value)
        try:
            self._unit.validate_atoms_data(atoms, self.task)
        except (TypeError, ValueError) as error:
            raise SampleError(sample_id, f"{self.id} task {self.task}: {error}") from None
        data = self._from_ase(atoms, task_name=self.task, r_edges=False, radius=self._cutoff,
                              r_data_keys=["spin", "charge"],
                              target_dtype=getattr(torch, self.dtype))
        return data, None

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        data = self._collate([item.graph for item in batch]).to(self.device)
        if not self._prepared:
            self.model.prepare_for_inference(data, self._settings)
            self._prepared = True
        backbone = self.model.backbone
        modules = {f"block_{i}": (block, lambda out: out)
                   for i, block in enumerate(backbone.blocks)}
        modules[FINAL_LAYER] = (backbone, lambda out: out["node_embedding"])
        # fairchem rotates each edge onto the y axis with a random roll about it (its SO(2)
        # convolutions make the result independent of the roll up to rounding); a fixed seed,
        # with the caller's random state restored afterwards, makes reruns bit-identical.
        device = torch.device(self.device)
        forked = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked), capture_outputs(modules) as captured:
            torch.manual_seed(ROLL_SEED)
            output = self.model(data)
        # The energy as fairchem's predict unit computes it: denormalised, element references
        # added back.
        task = self._energy_task
        energy = task.normalizer.denorm(output[task.name][task.property])
        if task.element_references is not None:
            energy = task.element_references.undo_refs(data, energy)
        features = {layer: values[:, 0, :] if self.invariants_only else values.flatten(1)
                    for layer, values in captured.items()}
        return features, energy.reshape(-1)

    def provenance(self, sample_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """The task head the embeddings were read with."""
        return {"task": self.task}

    def unload(self) -> None:
        self.model = None
        self._unit = None
