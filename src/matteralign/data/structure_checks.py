"""Why a 3D structure cannot be any model's input: no atoms, atomic numbers that are no element,
non-finite positions or cells, periodic cells that span no volume or are enormous, overlapping
atoms. Model adapters refuse such a sample (:meth:`matteralign.data.sample.Sample.structure_problem`
remembers the answer, so a study checks each structure once, not once per model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_DISTANCE = 0.1  # Å; closer atoms are duplicated or overlapping, not a structure
MAX_CELL_LENGTH = 1000.0  # Å; longer periodic vectors make neighbour searches blow up
MAX_ATOMIC_NUMBER = 118


def structure_problem(
    atoms: Any, min_distance: float = MIN_DISTANCE, max_cell_length: float = MAX_CELL_LENGTH
) -> str | None:
    """Why a 3D structure cannot be a model's input, or None when it can.

    Parameters
    ----------
    atoms : ase.Atoms
        Positions in Å; periodic directions as ``atoms.pbc`` says.
    min_distance : float
        Smallest allowed distance in Å between two atoms, periodic images included; 0 turns
        the check off.
    max_cell_length : float
        Longest allowed periodic lattice vector in Å (an enormous box costs some models' neighbour
        searches gigabytes: SevenNet takes 8 GB for one 10^5 Å cell).

    Returns
    -------
    str or None
        A sentence naming the problem: atomic numbers outside 1..118, periodic lattice vectors
        that span no volume (or area, or length) or are longer than ``max_cell_length``, or
        atoms closer than ``min_distance``.
    """
    numbers = np.asarray(atoms.numbers)
    if len(numbers) == 0:
        return "has no atoms"
    odd = sorted({int(z) for z in numbers if not 1 <= z <= MAX_ATOMIC_NUMBER})
    if odd:
        return (f"atomic number(s) {', '.join(map(str, odd))} are no chemical element "
                f"(1..{MAX_ATOMIC_NUMBER}); remove dummy or ghost atoms")
    if not np.isfinite(atoms.positions).all():
        return "has NaN or inf atom positions; fix the structure"
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any():
        lattice = np.asarray(atoms.cell[:], dtype=np.float64)[pbc]
        if not np.isfinite(lattice).all():
            return "has NaN or inf lattice vectors; fix the cell"
        lengths = np.linalg.norm(lattice, axis=1)
        gram = np.linalg.det(lattice @ lattice.T)  # squared volume / area / length spanned
        if lengths.min() <= 1e-8 or gram <= (1e-6 * np.prod(lengths)) ** 2:
            return (f"periodic cell has zero volume (lattice vectors {lattice.round(4).tolist()} "
                    "are linearly dependent); fix the cell or set pbc=False")
        if lengths.max() > max_cell_length:
            return (f"periodic cell vector of {lengths.max():.3g} Å is longer than "
                    f"{max_cell_length:g} Å (an enormous cell); set pbc=False for an isolated "
                    "structure, or pass the option max_cell_length")
    if min_distance > 0 and (len(numbers) > 1 or pbc.any()):
        pair = _closest_pair(atoms, min_distance)
        if pair is not None:
            i, j, distance = pair
            other = "its own periodic image" if i == j else f"atom {j}"
            return (f"atom {i} and {other} are {distance:.3g} Å apart (closer than "
                    f"{min_distance} Å: overlapping atoms); fix the structure or pass the option "
                    "min_distance")
    return None


def _closest_pair(atoms: Any, cutoff: float) -> tuple[int, int, float] | None:
    """Two atoms (or an atom and a periodic image) closer than ``cutoff`` Å, or None.

    Positions are wrapped into the cell (fractional coordinates f in [0, 1)). Two atoms closer
    than ``cutoff`` differ along each periodic axis a by less than m_a = cutoff / h_a in
    fractional coordinate (h_a: the cell height along a), so, when every h_a is at least
    ``cutoff``, atom j's image j + n (n a lattice shift in -1, 0, 1) can be that close to an
    atom only if n_a = +1 where f_ja < m_a, n_a = -1 where f_ja > 1 - m_a, and n_a = 0
    elsewhere. Only those images go into the k-d tree with all the atoms, which finds every
    pair closer than ``cutoff`` at the cost of one small tree per structure; thinner cells use
    ASE's neighbour list.
    """
    from itertools import product

    from scipy.spatial import cKDTree

    pbc = np.asarray(atoms.pbc, dtype=bool)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    images, owner = positions, np.arange(len(positions))
    if pbc.any():
        cell = np.asarray(atoms.cell.complete(), dtype=np.float64)
        lengths = np.linalg.norm(cell[pbc], axis=1)
        if lengths.min() < cutoff:  # every atom overlaps its own image
            return 0, 0, float(lengths.min())
        reciprocal = np.linalg.inv(cell)  # columns: reciprocal vectors (without 2 pi)
        heights = 1.0 / np.linalg.norm(reciprocal, axis=0)
        if heights[pbc].min() < cutoff:
            from ase.neighborlist import neighbor_list

            first, second, distance = neighbor_list("ijd", atoms, cutoff)
            if not len(distance):
                return None
            k = int(np.argmin(distance))
            return int(first[k]), int(second[k]), float(distance[k])
        fractional = positions @ reciprocal
        fractional[:, pbc] -= np.floor(fractional[:, pbc])
        positions = fractional @ cell
        margin = np.where(pbc, cutoff / heights, 0.0)
        steps = [(-1, 0, 1) if periodic else (0,) for periodic in pbc]
        shifts = np.array([s for s in product(*steps) if any(s)])  # (S, 3) lattice shifts
        low, high = fractional < margin, fractional > 1.0 - margin  # (n_atoms, 3)
        allowed = ((shifts == 0) | ((shifts == 1) & low[:, None, :])
                   | ((shifts == -1) & high[:, None, :])).all(axis=2)  # (n_atoms, S)
        atom, shift = np.nonzero(allowed)
        images = np.concatenate([positions, positions[atom] + shifts[shift] @ cell])
        owner = np.concatenate([owner, atom])
    distance, index = cKDTree(images).query(positions, k=2)  # the nearest is the atom itself
    nearest = distance[:, 1]
    first = int(np.argmin(nearest))
    if nearest[first] >= cutoff:
        return None
    return first, int(owner[index[first, 1]]), float(nearest[first])
