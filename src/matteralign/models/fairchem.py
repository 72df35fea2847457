"""fairchem adapters (UMA, eSEN, EquiformerV2): the L=0 node embedding after every block.

:class:`FairChemAdapter` runs in the ``fairchem`` model environment (fairchem-core 2: UMA and
eSEN). Published checkpoints load by name through fairchem's own loader
(``pretrained_mlip.resolve_checkpoint``, which downloads from the Hugging Face hub into
``~/.cache/fairchem``, then ``load_predict_unit``, as ``pretrained_mlip.get_predict_unit`` does).
:class:`FairChemV1Adapter` runs in the ``fairchem-v1`` environment (fairchem-core 1: the
EquiformerV2 and eSEN checkpoints trained on OMat24, MPtrj and sAlex, which fairchem-core 2
cannot load) through fairchem 1's ``OCPCalculator``. Both take a local checkpoint file too.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import pkgutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from matteralign.errors import AdapterError, ModelNotFoundError, SampleError
from matteralign.models.mlip_adapter import (
    MLIPAdapter,
    PreparedStructure,
    capture_outputs,
    nonperiodic_in_box,
    refuse_uncovered_elements,
)

# The backbone's output: the last block's node embedding after the final norm, what every
# output head reads (fairchem's own ``embeddings`` output).
FINAL_LAYER = "node_embedding"
# The seed of the random rotation about each edge that fairchem draws in every forward pass.
ROLL_SEED = 0
# fairchem 1's modules that register what the published OMat24 / MPtrj checkpoints need: the
# ``ocp`` trainer and the hydra model, and (with every module below them) the eSEN and
# EquiformerV2 packages: backbones, heads, DeNS variants and their trainers.
V1_MODULES = ("fairchem.core.common.logger", "fairchem.core.trainers.ocp_trainer",
              "fairchem.core.models.base")
V1_PACKAGES = ("fairchem.core.models.esen", "fairchem.core.models.equiformer_v2")


@contextmanager
def seeded_edge_rotations(device: str) -> Iterator[None]:
    """Fix the random rotation about each edge that fairchem draws in a forward pass.

    fairchem rotates every edge onto an axis with a random roll about it (its SO(2)
    convolutions make the output independent of the roll up to rounding). Seeding the draw makes
    reruns bit-identical; the caller's random state is restored afterwards.
    """
    place = torch.device(device)
    forked = [place.index or 0] if place.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(ROLL_SEED)
        yield


def l0_part(values: torch.Tensor, invariants_only: bool) -> torch.Tensor:
    """(N, n_coefficients, C) node embedding → its l = 0 row (N, C), or all rows flattened."""
    return values[:, 0, :] if invariants_only else values.flatten(1)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def register_v1_models() -> None:
    """Register fairchem 1's classes in :data:`V1_MODULES` and :data:`V1_PACKAGES`; mark its
    registry set up.

    fairchem 1 fills its registry by importing every model module (``setup_imports``); DimeNet++
    and GemNet import torch_sparse, which has no wheel for the torch the environments share, so
    only the modules the published OMat24 / MPtrj checkpoints use are imported. Their
    ``torch_scatter`` import is served by matteralign's stand-in.
    """
    from matteralign.models._torch_scatter_shim import install

    install()
    from fairchem.core.common.registry import registry

    for module in V1_MODULES:
        importlib.import_module(module)
    for name in V1_PACKAGES:
        package = importlib.import_module(name)
        for found in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            importlib.import_module(found.name)
    registry.register("imports_setup", True)


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

    fairchem draws a random rotation about every edge in each forward pass (its SO(2)
    convolutions make the output independent of it up to rounding); the adapter seeds that draw
    per batch (:func:`seeded_edge_rotations`), so a rerun is bit-identical.
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
        self.checkpoint_sha256 = file_sha256(path)

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        refuse_uncovered_elements(atoms, lambda z: z < self._max_z, sample_id, self.id)
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
        with seeded_edge_rotations(self.device), capture_outputs(modules) as captured:
            output = self.model(data)
        # The energy as fairchem's predict unit computes it: denormalised, element references
        # added back.
        task = self._energy_task
        energy = task.normalizer.denorm(output[task.name][task.property])
        if task.element_references is not None:
            energy = task.element_references.undo_refs(data, energy)
        features = {layer: l0_part(values, self.invariants_only)
                    for layer, values in captured.items()}
        return features, energy.reshape(-1)

    def provenance(self, sample_ids: Sequence[str] | None = None) -> dict[str, Any]:
        """The task head the embeddings were read with."""
        return {"task": self.task}

    def unload(self) -> None:
        self.model = None
        self._unit = None


class FairChemV1Adapter(MLIPAdapter):
    """EquiformerV2 (Liao et al. 2024) and eSEN (Fu et al. 2025) checkpoints of fairchem-core 1,
    trained on OMat24, MPtrj and sAlex (Barroso-Luque et al. 2024); forces off.

    Options
    -------
    checkpoint : str
        A name in fairchem 1's ``model_registry.available_pretrained_models``
        (``EquiformerV2-31M-OMAT24``, ``EquiformerV2-31M-OMAT24-MP-sAlex``,
        ``eSEN-30M-OAM``, ...), downloaded from the Hugging Face hub by fairchem's own
        ``model_name_to_local_file``, or the path of a fairchem 1 checkpoint file.
    invariants_only : bool, default True
        As for :class:`FairChemAdapter`.

    Layers are ``block_<i>``, the node embedding returned by block i (``backbone.blocks[i]``:
    eSEN's message-passing blocks, EquiformerV2's equivariant graph-attention blocks), and
    ``node_embedding``, the backbone's output after the final norm, which the heads read; each
    keeps its l = 0 row. The model is the one ``OCPCalculator`` builds, with the checkpoint's
    EMA weights where it has them (as the calculator predicts), energy as its trainer computes it
    (denormalised, element references added). Radius graphs are built one structure at a time
    (fairchem's ``use_pbc_single``), so a structure's neighbours, among them the ties that
    ``max_neighbors`` cuts through, do not depend on the rest of the batch. fairchem 1 cannot mix
    periodic and non-periodic structures in a batch, so molecules go in a cubic box with a vacuum
    wider than the cutoff (nothing the model sees changes); structures periodic along some axes
    only fail per sample.
    """

    supported_dtypes = ("float32",)

    def __init__(self, card, **options: Any) -> None:  # noqa: ANN001
        super().__init__(card, **options)
        self.checkpoint_path: Path | None = None
        self.checkpoint_sha256 = ""

    def _checkpoint_file(self) -> Path:
        """The local file of the ``checkpoint`` option, downloaded by fairchem if it is a name."""
        from fairchem.core.models.model_registry import (
            available_pretrained_models,
            model_name_to_local_file,
        )

        checkpoint = str(self.options.get("checkpoint", ""))
        local = Path(checkpoint).expanduser()
        if local.is_file():
            return local
        if checkpoint not in available_pretrained_models:
            raise AdapterError(
                f"model {self.id}: checkpoint {checkpoint!r} is neither a file nor one of "
                f"fairchem 1's names {sorted(available_pretrained_models)}"
            )
        try:
            return Path(model_name_to_local_file(checkpoint, Path.home() / ".cache" / "fairchem"))
        except OSError as error:  # hub unreachable, offline mode, gated repository
            raise ModelNotFoundError(
                f"model {self.id}: fairchem could not fetch checkpoint {checkpoint!r} ({error}); "
                "with no internet, pass option checkpoint=<path of the .pt file>"
            ) from None

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self._check_dtype(dtype)
        if self.model is not None:
            return
        register_v1_models()
        from fairchem.core.common.data_parallel import data_list_collater
        from fairchem.core.common.relaxation.ase_utils import OCPCalculator

        path = self._checkpoint_file()
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)  # the calculator logs its whole training configuration
        try:
            calculator = OCPCalculator(checkpoint_path=path, only_output=["energy"],
                                       cpu=torch.device(device).type == "cpu")
        finally:
            logging.disable(previous)
        trainer = calculator.trainer
        if trainer.ema is not None:
            trainer.ema.copy_to()  # the weights OCPTrainer.predict uses
        model = trainer._unwrapped_model
        backbone = model.backbone
        expected = [f"block_{i}" for i in range(len(backbone.blocks))] + [FINAL_LAYER]
        if expected != self.layer_names:
            raise AdapterError(
                f"model {self.id}: checkpoint has layers {expected}, card lists {self.layer_names}"
            )
        for module in model.modules():  # energy only: no autograd forces or stress
            for flag in ("regress_forces", "regress_stress"):
                if hasattr(module, flag):
                    setattr(module, flag, False)
        # One radius graph per structure, as for a structure alone: over a whole batch, the
        # ties among equidistant neighbours that max_neighbors cuts through would be broken
        # differently depending on the other structures.
        backbone.use_pbc_single = True
        model.requires_grad_(False)
        self.model = model.eval()
        self.device, self.dtype = device, dtype
        self._trainer = trainer
        self._a2g = calculator.a2g
        self._collate = data_list_collater
        self._max_z = int(backbone.max_num_elements)
        self._cutoff = float(getattr(backbone, "cutoff", None) or backbone.max_radius)
        self.checkpoint_path = path
        self.checkpoint_sha256 = file_sha256(path)

    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        refuse_uncovered_elements(atoms, lambda z: z < self._max_z, sample_id, self.id)
        if not atoms.pbc.any():
            atoms = nonperiodic_in_box(atoms, padding=self._cutoff + 1.0)
        elif not atoms.pbc.all():
            raise SampleError(sample_id, f"{self.id} takes structures periodic along all three "
                                         "axes or none")
        return self._a2g.convert(atoms), None

    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        data = self._collate([item.graph for item in batch], otf_graph=True)  # graphs in-model
        backbone = self.model.backbone
        modules = {f"block_{i}": (block, lambda out: getattr(out, "embedding", out))
                   for i, block in enumerate(backbone.blocks)}
        modules[FINAL_LAYER] = (backbone, lambda out: getattr(out["node_embedding"], "embedding",
                                                              out["node_embedding"]))
        with seeded_edge_rotations(self.device), capture_outputs(modules) as captured:
            output = self._trainer._forward(data)  # model output picked as the trainer does
        energy = self._trainer._denorm_preds("energy", output["energy"], data)
        features = {layer: l0_part(values, self.invariants_only)
                    for layer, values in captured.items()}
        return features, energy.reshape(-1)

    def unload(self) -> None:
        self.model = None
        self._trainer = None
