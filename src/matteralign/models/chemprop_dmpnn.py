"""Adapter for a Chemprop v2 D-MPNN checkpoint, by default one bundled with ADMET-AI.

Layers: the message-passing atom states (pooled over atoms), the model's own molecular
fingerprint (its aggregation of those states) and each hidden layer of its feed-forward head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matteralign.data.sample import Sample
from matteralign.errors import AdapterError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.pooling import POOLINGS, pool_segments
from matteralign.models.smiles import canonical_smiles
from matteralign.models.token_encoder import torch_dtype
from matteralign.models.transformer_encoders import package_folder

ATOM_LAYER = "message_passing"
FINGERPRINT_LAYER = "fingerprint"
FFN_PREFIX = "ffn_"


@dataclass(frozen=True)
class MolecularGraph:
    """One molecule prepared for Chemprop.

    Attributes
    ----------
    smiles : str
        RDKit canonical SMILES the graph was built from.
    graph : chemprop.data.MolGraph
        Atom features (n_atoms, 72), bond features (2 n_bonds, 14) and directed edges.
    atomic_numbers : (n_atoms,) int array
        Heavy-atom atomic numbers in graph order (for ``per_element_mean`` pooling).
    """

    smiles: str
    graph: Any
    atomic_numbers: np.ndarray


class ChempropAdapter(ModelAdapter):
    """A Chemprop v2 ``MPNN`` read at its atom states, fingerprint and FFN hidden layers.

    Layers
    ------
    ``message_passing``
        Atom hidden states h_v after the last bond-message-passing step, (n_atoms, 300),
        pooled over atoms with ``mean`` (default), ``sum`` or ``per_element_mean``.
    ``fingerprint``
        The model's learned molecular vector: its aggregation (ADMET-AI: ``NormAggregation``,
        Σ_v h_v / 100) of the atom states, then its batch norm (identity here); (300,).
    ``ffn_<i>``
        Output of the first i blocks of the feed-forward head, ``predictor.encode(fp, i)``:
        ``ffn_1`` is the first Linear layer's output (before its ReLU), (300,).

    Molecule-level layers ignore ``pooling``; their per-item output is one row.

    Options
    -------
    package, folder : str
        The checkpoint is ``<package dir>/<folder>`` (default ADMET-AI's
        ``resources/models/admet_regression/model_0.pt``).
    path : str, optional
        A checkpoint file to use instead.
    """

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self._model: Any = None
        self._featurizer: Any = None

    def weights_path(self) -> Path:
        if self.options.get("path"):
            return super().weights_path()
        return package_folder(
            str(self.options.get("package", "admet_ai")),
            str(self.options.get("folder", "resources/models/admet_regression/model_0.pt")),
            self.id,
        )

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self._model is not None and (device, dtype) == (self.device, self.dtype):
            return
        from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer
        from chemprop.models import load_model

        path = self.weights_path()
        model = load_model(path, multicomponent=False)
        if not isinstance(model.X_d_transform, torch.nn.Identity):
            raise AdapterError(
                f"checkpoint {path} of model {self.id} needs extra molecular descriptors "
                "(X_d), which this adapter does not compute"
            )
        n_hidden = len(model.predictor.ffn) - 1
        expected = [ATOM_LAYER, FINGERPRINT_LAYER] + [f"{FFN_PREFIX}{i}" for i in
                                                       range(1, n_hidden + 1)]
        if expected != self.layer_names:
            raise AdapterError(
                f"checkpoint {path} has layers {expected}; the card of {self.id} lists "
                f"{self.layer_names}"
            )
        model.eval()
        self._model = model.to(device=device, dtype=torch_dtype(dtype))
        self._featurizer = SimpleMoleculeMolGraphFeaturizer()
        self.device, self.dtype = device, dtype

    def prepare(self, sample: Sample) -> MolecularGraph:
        """Canonical SMILES → RDKit molecule → Chemprop graph; :class:`SampleError` if invalid."""
        from rdkit import Chem

        if self._featurizer is None:
            raise AdapterError(f"model {self.id} is not loaded; call load() before prepare()")
        smiles = canonical_smiles(super().prepare(sample), sample.id)
        mol = Chem.MolFromSmiles(smiles)
        numbers = np.array([atom.GetAtomicNum() for atom in mol.GetAtoms()], dtype=np.int64)
        return MolecularGraph(smiles, self._featurizer(mol), numbers)

    def cost(self, item: MolecularGraph) -> int:
        """Number of heavy atoms."""
        return len(item.atomic_numbers)

    def embed(
        self,
        batch: Sequence[MolecularGraph],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Pooled atom states, fingerprints and FFN hidden vectors of a batch of molecules."""
        from chemprop.data import BatchMolGraph

        self._check_loaded(self._model)
        if pooling not in POOLINGS:
            raise ValueError(f"model {self.id} pools atoms with one of {POOLINGS}, not {pooling!r}")
        self._check_layers(layers)
        model = self._model
        dtype = torch_dtype(self.dtype)
        bmg = BatchMolGraph([item.graph for item in batch])
        bmg.to(self.device)
        bmg.V, bmg.E = bmg.V.to(dtype), bmg.E.to(dtype)
        with torch.inference_mode():
            atoms = model.message_passing(bmg)
            fingerprint = model.bn(model.agg(atoms, bmg.batch))
            values: dict[str, torch.Tensor] = {FINGERPRINT_LAYER: fingerprint}
            for layer in layers:
                if layer.startswith(FFN_PREFIX):
                    depth = int(layer[len(FFN_PREFIX):])
                    values[layer] = model.predictor.encode(fingerprint, depth)
            atoms, segment = atoms.to("cpu"), bmg.batch.to("cpu")
            numbers = torch.from_numpy(np.concatenate([item.atomic_numbers for item in batch]))
            pooled: dict[str, np.ndarray] = {}
            rows: dict[str, list[np.ndarray]] = {}
            for layer in layers:
                if layer == ATOM_LAYER:
                    vectors = pool_segments(atoms, segment, len(batch), pooling, numbers)
                    if per_item:
                        rows[layer] = [atoms[segment == b].numpy().copy()
                                       for b in range(len(batch))]
                else:
                    vectors = values[layer].to("cpu")
                    if per_item:
                        rows[layer] = [vectors[b:b + 1].numpy().copy()
                                       for b in range(len(batch))]
                pooled[layer] = vectors.numpy().copy()
        return EmbeddingOutput(pooled=pooled, per_item=rows if per_item else None)

    def unload(self) -> None:
        self._model = None
        self._featurizer = None
