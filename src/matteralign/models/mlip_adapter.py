"""Shared base of the crystal interatomic-potential adapters: atoms in, per-block atom features out.

Each MLIP adapter builds its package's own graph for one structure in ``prepare``, runs one
batched forward pass in ``embed`` with forward hooks on every interaction block, and pools the
captured per-atom features with :func:`matteralign.models.pooling.pool_segments`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError, SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.pooling import pool_segments


@dataclass
class PreparedStructure:
    """One structure turned into a model's own graph.

    Attributes
    ----------
    sample_id : str
    numbers : (n_atoms,) int array
        Atomic numbers, in the order of the graph's nodes.
    graph : object
        The package's graph object (CrystalGraph, AtomGraphData, PyG Data, ...).
    extra : object, optional
        Whatever else the model needs per structure (lattice, state attributes).
    """

    sample_id: str
    numbers: np.ndarray
    graph: Any
    extra: Any = None

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)


@contextmanager
def capture_outputs(
    modules: dict[str, tuple[torch.nn.Module, Callable[[Any], torch.Tensor]]],
) -> Iterator[dict[str, torch.Tensor]]:
    """Record what each named module returns during the forward passes run inside the block.

    Parameters
    ----------
    modules : dict of str to (module, extract)
        ``extract(output)`` picks the per-atom tensor out of the module's output.

    Yields
    ------
    dict of str to tensor
        Filled with ``extract(output)`` of the last call of each module.
    """
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name, (module, extract) in modules.items():

        def hook(_module, _inputs, output, name=name, extract=extract):  # noqa: ANN001
            captured[name] = extract(output)

        handles.append(module.register_forward_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def nonperiodic_in_box(atoms: Any, padding: float) -> Any:
    """A copy of a non-periodic ``atoms`` centred in a cubic periodic box, for PBC-only models.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure with ``pbc`` all False.
    padding : float
        Vacuum in Å added to the largest extent; more than the model's cutoff keeps periodic
        images out of reach, so the box changes nothing the model sees.
    """
    boxed = atoms.copy()
    extent = float(np.ptp(boxed.positions, axis=0).max()) if len(boxed) else 0.0
    side = extent + 2.0 * padding
    boxed.set_cell([side, side, side])
    boxed.positions = boxed.positions - boxed.positions.mean(axis=0) + side / 2.0
    boxed.pbc = True
    return boxed


def refuse_uncovered_elements(atoms: Any, covered: Callable[[int], bool], sample_id: str,
                               model_id: str) -> None:
    """Raise :class:`SampleError` naming the elements of ``atoms`` that ``covered(z)`` rejects
    (the elements a checkpoint was not trained on), so the sample is recorded as failed."""
    unknown = sorted({int(z) for z in atoms.numbers if not covered(int(z))})
    if unknown:
        from ase.data import chemical_symbols

        symbols = ", ".join(chemical_symbols[z] for z in unknown)
        raise SampleError(sample_id, f"element(s) {symbols} not covered by {model_id}")


class MLIPAdapter(ModelAdapter):
    """Base class of the crystal MLIP adapters (CHGNet, SevenNet, HIENet, DIEP, matgl).

    Options
    -------
    invariants_only : bool, default True
        Return only the invariant (L=0) channels of each block; ``False`` returns the full
        equivariant features (layout in the card notes).

    Subclasses implement :meth:`load`, :meth:`_graph` (one structure → package graph) and
    :meth:`_forward` (batch → per-atom features of every layer and total energies).
    """

    supported_dtypes: tuple[str, ...] = ("float32",)
    host_prepare = True  # graphs are built on the host from numpy / CPU tensors

    def __init__(self, card, **options: Any) -> None:  # noqa: ANN001
        super().__init__(card, **options)
        self.model: Any = None

    @property
    def invariants_only(self) -> bool:
        return bool(self.options.get("invariants_only", True))

    def _check_dtype(self, dtype: str) -> torch.dtype:
        if dtype not in self.supported_dtypes:
            raise AdapterError(
                f"model {self.id} runs in {', '.join(self.supported_dtypes)}; got dtype={dtype!r}"
            )
        return getattr(torch, dtype)

    def prepare(self, sample: Sample) -> PreparedStructure:
        atoms = super().prepare(sample)
        graph, extra = self._graph(atoms, sample.id)
        return PreparedStructure(sample.id, np.asarray(atoms.numbers), graph, extra)

    def cost(self, item: PreparedStructure) -> int:
        """Number of atoms: the runner packs batches under an atom budget."""
        return item.n_atoms

    @abstractmethod
    def _graph(self, atoms: Any, sample_id: str) -> tuple[Any, Any]:
        """The package's graph of one structure and any per-structure extras."""

    @abstractmethod
    def _forward(
        self, batch: Sequence[PreparedStructure]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One forward pass: per-atom features {layer: (N_total, D)} and energies (B,) in eV.

        Rows follow the batch order, atoms of each structure in their graph order.
        """

    def embed(
        self,
        batch: Sequence[PreparedStructure],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Pooled features of ``layers`` and total energies for a batch of structures.

        Returns
        -------
        EmbeddingOutput
            ``pooled[layer]`` (B, D) float32, ``energy`` (B,) float64 in eV, and with
            ``per_item`` the (n_atoms_i, D) features of each structure.
        """
        self._check_loaded(self.model)
        self._check_layers(layers)
        counts = torch.tensor([item.n_atoms for item in batch])
        segment = torch.repeat_interleave(torch.arange(len(batch)), counts)
        numbers = torch.as_tensor(np.concatenate([item.numbers for item in batch]))
        with torch.inference_mode():
            features, energy = self._forward(batch)
        pooled: dict[str, np.ndarray] = {}
        items: dict[str, list[np.ndarray]] = {}
        for layer in layers:
            values = features[layer].detach().reshape(len(segment), -1).to("cpu", torch.float32)
            pooled[layer] = pool_segments(
                values, segment, len(batch), pooling, atomic_numbers=numbers
            ).numpy()
            if per_item:
                items[layer] = [part.numpy() for part in torch.split(values, counts.tolist())]
        return EmbeddingOutput(
            pooled=pooled,
            energy=energy.detach().to("cpu", torch.float64).reshape(-1).numpy(),
            per_item=items if per_item else None,
        )

    def unload(self) -> None:
        self.model = None
