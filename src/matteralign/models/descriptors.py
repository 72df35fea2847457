"""Hand-made structure descriptors as baseline "models": SOAP, ACSF and Coulomb eigenvalues.

SOAP and ACSF come from dscribe, the Coulomb and sine matrices from numpy here. Species,
cutoffs and basis sizes are fixed by the card options, so every sample gets the same columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from matteralign.data.sample import Sample
from matteralign.errors import SampleError
from matteralign.models.adapter import EmbeddingOutput, ModelAdapter
from matteralign.models.atom_features import pooled_structures_output


class _DescriptorAdapter(ModelAdapter):
    """Shared parts: species check from the options, cost = atoms, no weights to load."""

    def prepare(self, sample: Sample) -> Any:
        """The sample's atoms; the ``species`` option (not the card's list) sets coverage."""
        if sample.atoms is None:
            raise SampleError(sample.id, f"has no 'atoms' input, which {self.id} reads")
        atoms = sample.atoms
        missing = sorted(set(atoms.get_chemical_symbols()) - set(self.options["species"]))
        if missing:
            raise SampleError(
                sample.id,
                f"element(s) {', '.join(missing)} not in the species list of {self.id}; "
                "pass the option species=[...] to cover them",
            )
        return atoms

    def cost(self, item: Any) -> int:
        return len(item)

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        if getattr(self, "_descriptors", None) is not None:
            return
        self.device, self.dtype = device, dtype
        self._descriptors = {periodic: self._build(periodic) for periodic in (False, True)}

    def _build(self, periodic: bool) -> Any:
        raise NotImplementedError

    def _per_atom(self, atoms: Any) -> np.ndarray:
        """(n_atoms, D) descriptor rows of one structure."""
        descriptor = self._descriptors[bool(atoms.pbc.any())]
        return np.asarray(descriptor.create(atoms), dtype=np.float64).reshape(len(atoms), -1)

    def embed(
        self,
        batch: Sequence[Any],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """Per-atom descriptors of each structure, pooled; float64, one layer."""
        self._check_layers(layers)
        rows = torch.as_tensor(np.concatenate([self._per_atom(atoms) for atoms in batch]))
        return pooled_structures_output(
            {layer: rows for layer in layers}, batch, pooling, per_item=per_item
        )

    def unload(self) -> None:
        self._descriptors = None


class SOAPAdapter(_DescriptorAdapter):
    """Smooth Overlap of Atomic Positions power spectrum per atom, pooled per structure.

    Options: ``species``, ``r_cut`` (Å), ``n_max``, ``l_max``, ``sigma`` (Å), passed to
    ``dscribe.descriptors.SOAP`` (GTO radial basis, no averaging inside dscribe).
    """

    def _build(self, periodic: bool) -> Any:
        from dscribe.descriptors import SOAP

        return SOAP(
            species=list(self.options["species"]),
            r_cut=float(self.options["r_cut"]),
            n_max=int(self.options["n_max"]),
            l_max=int(self.options["l_max"]),
            sigma=float(self.options.get("sigma", 1.0)),
            periodic=periodic,
        )


class ACSFAdapter(_DescriptorAdapter):
    """Behler-Parrinello atom-centred symmetry functions (G1, G2, G4) per atom, pooled.

    Options: ``species``, ``r_cut`` (Å), ``g2_params`` as ``[[eta (Å⁻²), R_s (Å)], ...]``,
    ``g4_params`` as ``[[eta (Å⁻²), zeta, lambda], ...]``, passed to ``dscribe.descriptors.ACSF``.
    """

    def _build(self, periodic: bool) -> Any:
        from dscribe.descriptors import ACSF

        return ACSF(
            species=list(self.options["species"]),
            r_cut=float(self.options["r_cut"]),
            g2_params=[list(map(float, p)) for p in self.options.get("g2_params", [])] or None,
            g4_params=[list(map(float, p)) for p in self.options.get("g4_params", [])] or None,
            periodic=periodic,
        )


def coulomb_matrix(atoms: Any) -> np.ndarray:
    """Coulomb matrix, or the sine matrix for a cell periodic in all three directions.

    Coulomb (Rupp et al. 2012): M_ii = ½ Z_i^2.4, M_ij = Z_i Z_j / |r_i − r_j|.
    Sine (Faber et al. 2015): M_ij = Z_i Z_j / |Σ_k a_k sin²(π f_ijk)|, with f_ij = the
    fractional coordinates of r_i − r_j and a_k the lattice vectors.

    Parameters
    ----------
    atoms : ase.Atoms
        n atoms, positions in Å.

    Returns
    -------
    (n, n) float64 array, in units of Z² Å⁻¹ off the diagonal.
    """
    z = atoms.numbers.astype(np.float64)
    difference = atoms.positions[:, None, :] - atoms.positions[None, :, :]
    if atoms.pbc.all():
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        fractional = difference @ np.linalg.inv(cell)
        difference = np.sin(np.pi * fractional) ** 2 @ cell
    distance = np.linalg.norm(difference, axis=-1)
    np.fill_diagonal(distance, 1.0)
    matrix = np.outer(z, z) / distance
    np.fill_diagonal(matrix, 0.5 * z**2.4)
    return matrix


class CoulombEigenvalueAdapter(ModelAdapter):
    """Eigenvalues of the Coulomb matrix (sine matrix for periodic cells), sorted, padded.

    See :func:`coulomb_matrix`. The eigenvalues are sorted by decreasing absolute value and
    zero-padded to ``n_atoms_max`` (option). Cells periodic in all three directions use the
    sine matrix; anything else (molecules, slabs) the plain Coulomb matrix. The vector describes
    the whole structure, so ``pooling`` is ignored.
    """

    def load(self, device: str = "cpu", dtype: str = "float32") -> None:
        self.device, self.dtype = device, dtype

    def prepare(self, sample: Sample) -> Any:
        atoms = super().prepare(sample)
        size = int(self.options["n_atoms_max"])
        if len(atoms) > size:
            raise SampleError(
                sample.id,
                f"has {len(atoms)} atoms, more than n_atoms_max={size} of {self.id}; "
                "raise the option n_atoms_max",
            )
        return atoms

    def cost(self, item: Any) -> int:
        return len(item)

    def _eigenvalues(self, atoms: Any) -> np.ndarray:
        values = np.linalg.eigvalsh(coulomb_matrix(atoms))
        padded = np.zeros(int(self.options["n_atoms_max"]))
        padded[: len(values)] = values[np.argsort(-np.abs(values), kind="stable")]
        return padded

    def embed(
        self,
        batch: Sequence[Any],
        layers: Sequence[str],
        pooling: str,
        per_item: bool = False,
    ) -> EmbeddingOutput:
        """(B, n_atoms_max) float64 eigenvalue vectors, in units of Z² Å⁻¹."""
        self._check_layers(layers)
        values = np.stack([self._eigenvalues(atoms) for atoms in batch])
        return EmbeddingOutput(
            pooled={layer: values for layer in layers},
            per_item={layer: [row[None] for row in values] for layer in layers}
            if per_item
            else None,
        )
