"""ANI-1x adapter: the AEV and the hidden layers of ANI's per-element networks.

The 8-model ANI-1x ensemble is built from the NeuroChem files bundled in ``torchani==2.2.4``
(its ``.info`` files are empty, so ``torchani.models.ANI1x()`` would try to download).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matteralign.errors import ModelNotFoundError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.atom_features import pooled_structures_output
from matteralign.threads import one_torch_thread

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
HIDDEN_LAYERS = ("hidden_1", "hidden_2", "hidden_3")


class ANIAdapter(ModelAdapter):
    """AEV and per-element hidden activations of one ANI-1x ensemble member; ensemble energy.

    Options
    -------
    ensemble_member : int, default 0
        Which of the 8 ensemble members gives the hidden-layer features (the energy always
        averages all 8).
    resource_dir : str, optional
        Folder holding ``rHCNO-5.2R_16-3.5A_a4-8.params``, ``sae_linfit.dat`` and
        ``train0..7``; default the one inside the torchani package.

    Notes
    -----
    ANI's hidden layers belong to separate networks for H, C, N and O, whose widths differ
    (H: 160/128/96, C: 144/112/96, N and O: 128/112/96). Each hidden layer is therefore returned
    in an element-block layout: one column block per element in the order H, C, N, O, an atom
    filling its own element's block and zeros elsewhere. Mean pooling then gives, per block, the
    element's share of atoms times its mean activation; ``per_element_mean`` gives each block's
    element mean divided by the number of elements present.
    """

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if getattr(self, "_aev", None) is not None:
            return
        with warnings.catch_warnings():  # harmless notices torchani 2.2.4 gives at import
            warnings.filterwarnings("ignore", message="cuaev not installed")
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            import torchani

        self.device, self.dtype = device, dtype
        root = Path(
            str(self.options.get("resource_dir") or "")
            or Path(torchani.__file__).parent / "resources" / "ani-1x_8x"
        )
        params = root / "rHCNO-5.2R_16-3.5A_a4-8.params"
        if not params.is_file() or not (root / "train0").is_dir():
            raise ModelNotFoundError(
                f"ANI-1x NeuroChem files not found under {root}; install torchani==2.2.4 (later "
                "wheels bundle no weights) or pass the option resource_dir=<ani-1x_8x folder>"
            )
        constants = torchani.neurochem.Constants(str(params))
        self._species = list(constants.species)
        torch_dtype = _DTYPES[dtype]
        self._converter = torchani.SpeciesConverter(self._species).to(device)
        self._aev = torchani.AEVComputer(**constants).to(device=device, dtype=torch_dtype)
        self._ensemble = torchani.neurochem.load_model_ensemble(
            self._species, str(root / "train"), 8
        ).to(device=device, dtype=torch_dtype)
        self._shifter = torchani.neurochem.load_sae(str(root / "sae_linfit.dat")).to(device)
        for module in (self._aev, self._ensemble, self._shifter):
            module.eval()
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        member = int(self.options.get("ensemble_member", 0))
        self._member = self._ensemble[member]
        self._widths = {
            layer: [net[2 * k].out_features for net in self._member.values()]
            for k, layer in enumerate(HIDDEN_LAYERS)
        }

    @property
    def n_parameters(self) -> int:
        """Parameters of the whole 8-member ensemble (the AEV has none)."""
        return sum(p.numel() for p in self._ensemble.parameters())

    def cost(self, item: Any) -> int:
        return len(item)

    def _element_blocks(
        self, species: torch.Tensor, captured: dict[tuple[int, str], torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Element-block hidden activations, one row per atom, from the rows each net saw.

        ``captured[(element, layer)]`` holds the activations of the atoms of that element in
        the order of ``species`` (torchani's ``ANIModel`` takes them by ``nonzero`` of the
        element mask, padding excluded).
        """
        rows = [(species == index).nonzero().flatten() for index in range(len(self._species))]
        out = {}
        for layer, widths in self._widths.items():
            block = species.new_zeros((len(species), sum(widths)), dtype=_DTYPES[self.dtype])
            start = 0
            for index, width in enumerate(widths):
                if (index, layer) in captured:
                    block[rows[index], start : start + width] = captured[(index, layer)]
                start += width
            out[layer] = block
        return out

    def _ensemble_energies(
        self, species: torch.Tensor, aev: torch.Tensor
    ) -> tuple[torch.Tensor, dict[tuple[int, str], torch.Tensor]]:
        """Mean energy of the 8 members and the chosen member's hidden activations.

        The kernels of torchani's ``Ensemble`` of ``ANIModel`` (so the same bits), except that
        each element's AEV rows are selected once for all members instead of once per member.

        Parameters
        ----------
        species : (M, A) int tensor
            torchani species indices, -1 for padding.
        aev : (M, A, 384) tensor

        Returns
        -------
        energies : (M,) tensor
            Mean over members of Σ_atoms E_member(atom), in Hartree, without self energies.
        captured : dict
            ``captured[(element, layer)]``: the chosen member's CELU output of that layer for
            the atoms of that element, in the order of ``species.flatten()``.
        """
        flat, rows = species.flatten(), aev.flatten(0, 1)
        masks = [flat == index for index in range(len(self._species))]
        inputs = [rows.index_select(0, mask.nonzero().flatten()) for mask in masks]
        captured: dict[tuple[int, str], torch.Tensor] = {}
        total: torch.Tensor | int = 0
        for member in self._ensemble:
            atomic = rows.new_zeros(flat.shape)
            for index, net in enumerate(member.values()):
                if len(inputs[index]) == 0:
                    continue
                x = inputs[index]
                for k, module in enumerate(net):  # Linear, CELU, ..., Linear
                    x = module(x)
                    if member is self._member and k % 2:
                        captured[(index, HIDDEN_LAYERS[k // 2])] = x
                atomic.masked_scatter_(masks[index], x.flatten())
            total += torch.sum(atomic.view_as(species), dim=1)
        return total / len(self._ensemble), captured

    def _forward(
        self, group: Sequence[Any]
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """AEV rows, ensemble energies (Hartree) and element-block hidden rows of same-cell
        structures, from one pass of :meth:`_ensemble_energies` over one padded batch."""
        torch_dtype = _DTYPES[self.dtype]
        size = max(len(atoms) for atoms in group)
        numbers = torch.full((len(group), size), -1, dtype=torch.int64)
        coordinates = torch.zeros((len(group), size, 3), dtype=torch_dtype)
        for row, atoms in enumerate(group):
            numbers[row, : len(atoms)] = torch.as_tensor(atoms.numbers)
            coordinates[row, : len(atoms)] = torch.as_tensor(atoms.positions)
        numbers, coordinates = numbers.to(self.device), coordinates.to(self.device)
        species, _ = self._converter((numbers, coordinates))
        cell = pbc = None
        if group[0].pbc.any():
            cell = torch.as_tensor(group[0].cell[:], dtype=torch_dtype, device=self.device)
            pbc = torch.as_tensor(group[0].pbc, device=self.device)
        _, aev = self._aev((species, coordinates), cell=cell, pbc=pbc)
        energies, captured = self._ensemble_energies(species, aev)
        _, energies = self._shifter((species, energies.to(torch.float64)))
        mask = species >= 0
        with one_torch_thread():  # copies only (same bits); 20 ms -> 1 ms on a busy 2-core host
            return aev[mask], energies, self._element_blocks(species[mask], captured)

    def embed(
        self,
        batch: Sequence[Any],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Embed ase.Atoms (H, C, N, O only); molecules go through one padded forward pass.

        Periodic structures go one at a time, since torchani takes one cell per call. Returns
        pooled (B, 384) for ``aev``, (B, 560), (B, 464), (B, 384) for ``hidden_1..3`` and the
        ensemble energy (B,) in eV.
        """
        from ase.units import Hartree

        self._check_layers(layers)
        molecules = [i for i, atoms in enumerate(batch) if not atoms.pbc.any()]
        cells = [[i] for i, atoms in enumerate(batch) if atoms.pbc.any()]
        groups = ([molecules] if molecules else []) + cells
        order = [i for group in groups for i in group]
        energy = np.zeros(len(batch))
        parts = []
        with torch.inference_mode():
            for group in groups:
                aev, energies, hidden = self._forward([batch[i] for i in group])
                parts.append({"aev": aev, **hidden})
                energy[group] = energies.cpu().numpy() * Hartree
            features = {
                layer: parts[0][layer] if len(parts) == 1 else torch.cat([p[layer] for p in parts])
                for layer in layers
            }
            if order != list(range(len(batch))):  # molecules first, then cells: back to batch order
                lengths = [len(atoms) for atoms in batch]
                starts = np.zeros(len(batch), dtype=np.int64)
                starts[order] = np.cumsum([0] + [lengths[i] for i in order])[:-1]
                rows = torch.as_tensor(np.concatenate(
                    [np.arange(start, start + n) for start, n in zip(starts, lengths, strict=True)]
                ), device=features[layers[0]].device)
                features = {layer: value[rows] for layer, value in features.items()}
        return pooled_structures_output(
            features,
            batch,
            pooling,
            per_item=per_item,
            energy=energy,
        )

    def unload(self) -> None:
        self._aev = None
        self._ensemble = None
