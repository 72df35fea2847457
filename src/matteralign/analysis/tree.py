"""The models' "evolutionary tree": Jensen–Shannon distances between alignment profiles, then
neighbour joining (paper §4.9), written as Newick.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["TreeResult", "alignment_tree", "jsd_distances", "neighbour_joining"]


def jsd_distances(matrix: pd.DataFrame, alpha: float = 0.5, eps: float = 1e-6) -> pd.DataFrame:
    """Distances between models from their rows and columns of an alignment matrix.

    With C the M x M alignment (diagonal set to 1, values clipped to [0, 1]):

        R_i(j) = (C_ij + ε) / (Σ_j' C_ij' + M ε)     (row profile)
        K_i(j) = (C_ji + ε) / (Σ_j' C_j'i + M ε)     (column profile)
        D_ij = α √JSD(R_i, R_j) + (1 - α) √JSD(K_i, K_j),   JSD with base-2 logs, in [0, 1].

    For a symmetric C, R = K and α has no effect.

    Parameters
    ----------
    matrix : (M, M) DataFrame
    alpha : float in [0, 1]
    eps : float
        Smoothing so profiles have no zeros.

    Returns
    -------
    (M, M) DataFrame
        Symmetric, zero diagonal.
    """
    from scipy.spatial.distance import jensenshannon

    c = np.clip(matrix.to_numpy(dtype=float), 0.0, 1.0)
    c = np.nan_to_num(c, nan=0.0)
    np.fill_diagonal(c, 1.0)
    m = c.shape[0]
    rows = (c + eps) / (c.sum(1, keepdims=True) + m * eps)
    cols = (c.T + eps) / (c.T.sum(1, keepdims=True) + m * eps)
    d = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            dij = (alpha * jensenshannon(rows[i], rows[j], base=2)
                   + (1 - alpha) * jensenshannon(cols[i], cols[j], base=2))
            d[i, j] = d[j, i] = dij
    return pd.DataFrame(d, index=matrix.index, columns=matrix.columns)


def neighbour_joining(distances: pd.DataFrame):  # -> Bio.Phylo.BaseTree.Tree
    """Neighbour-joining tree (Saitou & Nei 1987) of a distance matrix, via Bio.Phylo.

    Parameters
    ----------
    distances : (M, M) DataFrame
        Symmetric, zero diagonal, M >= 3.

    Returns
    -------
    Bio.Phylo.BaseTree.Tree
        Terminals named by the matrix labels; inner nodes unnamed.
    """
    from Bio.Phylo.TreeConstruction import DistanceMatrix, DistanceTreeConstructor

    names = [str(n) for n in distances.index]
    if len(names) < 3:
        raise ValueError(f"neighbour joining needs at least 3 models, got {len(names)}")
    d = distances.to_numpy(dtype=float)
    lower = [[float(d[i, j]) for j in range(i)] + [0.0] for i in range(len(names))]
    tree = DistanceTreeConstructor().nj(DistanceMatrix(names, lower))
    for clade in tree.get_nonterminals():
        clade.name = None
    return tree


@dataclass
class TreeResult:
    """A neighbour-joining tree of models.

    Attributes
    ----------
    newick : str
    distances : (M, M) DataFrame
        The Jensen–Shannon distances it was built from.
    tree : Bio.Phylo.BaseTree.Tree
    left_out : list of str
        Models excluded (random baselines).
    """

    newick: str
    distances: pd.DataFrame
    tree: object
    left_out: list[str]


def alignment_tree(
    matrix: pd.DataFrame, left_out: list[str] | None = None, alpha: float = 0.5, eps: float = 1e-6
) -> TreeResult:
    """JSD distances of ``matrix`` without the ``left_out`` models, then neighbour joining."""
    from Bio import Phylo

    left_out = [m for m in (left_out or []) if m in matrix.index]
    keep = [m for m in matrix.index if m not in left_out]
    distances = jsd_distances(matrix.loc[keep, keep], alpha=alpha, eps=eps)
    tree = neighbour_joining(distances)
    handle = io.StringIO()
    Phylo.write(tree, handle, "newick")
    return TreeResult(handle.getvalue().strip(), distances, tree, left_out)
