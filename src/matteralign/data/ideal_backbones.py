"""Protein structures with no download: natural sequences on ideal PeptideBuilder backbones.

Each residue gets helix, strand or polyproline-II torsions from a seeded segment pattern. The
backbone is placed with PeptideBuilder's geometry (bond lengths and angles per residue type) by a
NeRF loop that reproduces ``PeptideBuilder.make_structure`` without side chains,
about 100x faster.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from matteralign.data.proteome import proteome_sequences
from matteralign.data.sample import Dataset, DatasetCard, ProteinStructure, Sample
from matteralign.data.sources import package_dir, package_version

NAME = "ideal-backbones"
TORSIONS = {"H": (-57.0, -47.0), "E": (-120.0, 130.0), "C": (-75.0, 145.0)}  # (phi, psi), degrees
SEGMENT_LENGTHS = {"H": (8, 20), "E": (4, 10), "C": (3, 8)}
DEFAULT_SIZE = 60
MAX_RESIDUES = 160


def secondary_pattern(length: int, rng: np.random.Generator) -> str:
    """A seeded string of H/E/C segments of the given length (segment lengths from
    :data:`SEGMENT_LENGTHS`, states drawn with weights 0.45/0.25/0.30)."""
    pattern = ""
    while len(pattern) < length:
        state = str(rng.choice(["H", "E", "C"], p=[0.45, 0.25, 0.30]))
        low, high = SEGMENT_LENGTHS[state]
        pattern += state * int(rng.integers(low, high + 1))
    return pattern[:length]


def place_atom(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, length: float, angle: float, torsion: float
) -> np.ndarray:
    """Position of atom D with |CD| = ``length`` Å, angle BCD = ``angle``° and dihedral ABCD =
    ``torsion``° (the natural-extension reference frame, NeRF)."""
    # plain float arithmetic: numpy's cross/norm cost ~50 µs each on 3-vectors
    ax, ay, az = a
    bx, by, bz = b
    cx, cy, cz = c
    ux, uy, uz = cx - bx, cy - by, cz - bz
    scale = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / scale, uy / scale, uz / scale
    vx, vy, vz = bx - ax, by - ay, bz - az
    nx, ny, nz = vy * uz - vz * uy, vz * ux - vx * uz, vx * uy - vy * ux
    scale = math.sqrt(nx * nx + ny * ny + nz * nz)
    nx, ny, nz = nx / scale, ny / scale, nz / scale
    mx, my, mz = ny * uz - nz * uy, nz * ux - nx * uz, nx * uy - ny * ux
    theta, tau = math.radians(angle), math.radians(torsion)
    d1 = -length * math.cos(theta)
    d2 = length * math.sin(theta) * math.cos(tau)
    d3 = length * math.sin(theta) * math.sin(tau)
    return np.array(
        [
            cx + d1 * ux + d2 * mx + d3 * nx,
            cy + d1 * uy + d2 * my + d3 * ny,
            cz + d1 * uz + d2 * mz + d3 * nz,
        ]
    )


def ideal_backbone(sequence: str, pattern: str, where: str = "") -> ProteinStructure:
    """N/CA/C/O backbone (Å) of ``sequence`` with the torsions of ``pattern``, PeptideBuilder style.

    Parameters
    ----------
    sequence : str
        One-letter sequence of length L (standard amino acids).
    pattern : str
        L letters from H/E/C choosing the (phi, psi) of :data:`TORSIONS`; omega is 180°.
    where : str
        Name for error messages.

    Returns
    -------
    ProteinStructure
        Same coordinates as ``PeptideBuilder.make_structure(sequence, phi, psi)`` restricted to
        N, CA, C, O (checked in the tests).
    """
    from PeptideBuilder import Geometry

    geos = [Geometry.geometry(aa) for aa in sequence]
    coords = np.zeros((len(sequence), 4, 3))
    first = geos[0]
    angle = np.radians(first.N_CA_C_angle)
    coords[0, 0] = [first.CA_N_length * np.cos(angle), first.CA_N_length * np.sin(angle), 0.0]
    coords[0, 2] = [first.CA_C_length, 0.0, 0.0]
    for i in range(1, len(sequence)):
        geo = geos[i]
        n_prev, ca_prev, c_prev = coords[i - 1, 0], coords[i - 1, 1], coords[i - 1, 2]
        psi_prev, phi = TORSIONS[pattern[i - 1]][1], TORSIONS[pattern[i]][0]
        n = place_atom(n_prev, ca_prev, c_prev, geo.peptide_bond, geo.CA_C_N_angle, psi_prev)
        ca = place_atom(ca_prev, c_prev, n, geo.CA_N_length, geo.C_N_CA_angle, 180.0)
        c = place_atom(c_prev, n, ca, geo.CA_C_length, geo.N_CA_C_angle, phi)
        coords[i, :3] = n, ca, c
        coords[i - 1, 3] = place_atom(n, ca_prev, c_prev, geo.C_O_length, geo.CA_C_O_angle, 180.0)
    last = geos[-1]
    n, ca, c = coords[-1, 0], coords[-1, 1], coords[-1, 2]
    if len(sequence) == 1:
        torsion = last.N_CA_C_O_diangle
    else:
        torsion = 180.0
    coords[-1, 3] = place_atom(n, ca, c, last.C_O_length, last.CA_C_O_angle, torsion)
    return ProteinStructure(sequence=sequence, backbone=coords)


def build(n: int | None = None, seed: int = 0, data_root: Path | None = None) -> Dataset:
    """``n`` (default 60) proteome sequences of 50-160 residues on ideal backbones.

    Ids are ``ideal-<proteome gene id>``; the secondary-structure pattern of each chain is in
    ``protein`` only (the torsions), the sequence is natural. Deterministic from ``seed``.
    """
    package_dir("PeptideBuilder", NAME)
    size = DEFAULT_SIZE if n is None else n
    rng = np.random.default_rng(seed)
    pool = [(i, s) for i, s in proteome_sequences() if 50 <= len(s) <= MAX_RESIDUES]
    chosen = np.sort(rng.choice(len(pool), size=min(size, len(pool)), replace=False))
    samples = []
    for index in chosen:
        source_id, sequence = pool[index]
        sample_id = source_id.replace("proteome-", "ideal-", 1)
        protein = ideal_backbone(sequence, secondary_pattern(len(sequence), rng), sample_id)
        samples.append(Sample(id=sample_id, sequence=sequence, protein=protein))
    card = DatasetCard(
        name=NAME,
        version=f"peptidebuilder-{package_version('PeptideBuilder')}-seed{seed}-n{size}",
        domain="proteins",
        description="Natural proteome sequences (50-160 residues) on ideal PeptideBuilder "
        "backbones with seeded helix/strand/PPII segments: an offline sequence+structure set",
        provenance=f"generated with PeptideBuilder=={package_version('PeptideBuilder')} from "
        f"pyhmmer=={package_version('pyhmmer')} proteome sequences, seed {seed}",
        license="MIT (PeptideBuilder, pyhmmer); generated structures CC0-1.0",
    )
    return Dataset(card, samples)
