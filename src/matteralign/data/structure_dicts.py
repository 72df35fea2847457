"""Serialised crystal structures (pymatgen ``Structure.as_dict``, JARVIS atoms) as ASE Atoms.

Parsing the dicts directly avoids importing pymatgen, which takes many seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from matteralign.errors import DatasetError


def atoms_from_pymatgen_dict(structure: Mapping[str, Any], where: str) -> Any:
    """An ``ase.Atoms`` from a pymatgen ``Structure``/``Molecule`` dict.

    Parameters
    ----------
    structure : mapping
        ``{"lattice": {"matrix": (3, 3) Å, "pbc": ...}, "sites": [{"species": [{"element",
        "occu"}], "abc": fractional, "xyz": Å}, ...]}``; a dict without ``lattice`` is a molecule.
    where : str
        Record name for error messages.

    Raises
    ------
    DatasetError
        On partial occupancies, unknown elements or malformed fields.
    """
    from ase import Atoms

    try:
        sites = structure["sites"]
        symbols = []
        for site in sites:
            species = site["species"]
            if len(species) != 1 or abs(float(species[0].get("occu", 1.0)) - 1.0) > 1e-6:
                raise DatasetError(f"{where}: site with partial occupancy {species}; not supported")
            symbols.append(species[0]["element"])
        lattice = structure.get("lattice")
        if lattice is None:
            positions = np.array([site["xyz"] for site in sites], dtype=np.float64)
            return Atoms(symbols=symbols, positions=positions.reshape(-1, 3))
        cell = np.asarray(lattice["matrix"], dtype=np.float64)
        pbc = lattice.get("pbc", (True, True, True))
        fractional = np.array([site["abc"] for site in sites], dtype=np.float64).reshape(-1, 3)
        return Atoms(symbols=symbols, scaled_positions=fractional, cell=cell, pbc=pbc)
    except DatasetError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise DatasetError(
            f"{where}: malformed structure dict ({type(error).__name__}: {error})"
        ) from None


def atoms_from_jarvis_dict(atoms: Mapping[str, Any], where: str) -> Any:
    """An ``ase.Atoms`` from a JARVIS ``atoms`` dict (``lattice_mat``, ``coords``, ``elements``).

    ``coords`` are fractional unless ``cartesian`` is true; the cell is periodic.
    """
    from ase import Atoms

    try:
        cell = np.asarray(atoms["lattice_mat"], dtype=np.float64)
        coords = np.asarray(atoms["coords"], dtype=np.float64).reshape(-1, 3)
        symbols = list(atoms["elements"])
        if atoms.get("cartesian", False):
            return Atoms(symbols=symbols, positions=coords, cell=cell, pbc=True)
        return Atoms(symbols=symbols, scaled_positions=coords, cell=cell, pbc=True)
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(
            f"{where}: malformed JARVIS atoms dict ({type(error).__name__}: {error})"
        ) from None


def attach_forces(atoms: Any, forces: Any, where: str) -> None:
    """Store per-atom forces (eV/Å) as ``atoms.arrays["forces"]``, shape (N, 3).

    Raises
    ------
    DatasetError
        If the forces do not have one row of 3 per atom.
    """
    array = np.asarray(forces, dtype=np.float64)
    if array.shape != (len(atoms), 3):
        raise DatasetError(f"{where}: forces have shape {array.shape}; expected ({len(atoms)}, 3)")
    atoms.arrays["forces"] = array
