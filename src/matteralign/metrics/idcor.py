"""IdCor (Basile et al. 2024): correlation between two representations through intrinsic dimension.

Uses TwoNN on each space and on the concatenation, with a row-permutation p-value.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._backend import resolve_backend
from ._checks import as_embedding, check_same_samples
from .intrinsic_dimension import id_from_graph_values
from .neighbours import nearest_neighbours
from .streams import pair_two_nn

__all__ = ["IdCorResult", "id_correlation"]


class IdCorResult(NamedTuple):
    """IdCor value, permutation p-value and the three TwoNN dimensions."""

    value: float
    p_value: float
    id_x: float
    id_y: float
    id_xy: float


def idcor_value(id_x: float, id_y: float, id_xy: float) -> float:
    """(I_x + I_y - I_xy) / (I_x + I_y - min(I_x, I_y)) = (I_x + I_y - I_xy) / max(I_x, I_y)."""
    return (id_x + id_y - id_xy) / max(id_x, id_y)


def id_correlation(
    x: np.ndarray,
    y: np.ndarray,
    n_permutations: int = 100,
    seed: int = 0,
    discard: float = 0.1,
    device: Any = "cpu",
) -> IdCorResult:
    """IdCor between two embeddings of the same samples.

        IdCor = (I(X) + I(Y) - I([X | Y])) / (I(X) + I(Y) - min(I(X), I(Y)))

    I = TwoNN intrinsic dimension (10 % discard), [X | Y] = column concatenation. p-value:
    (1 + #{pi : I([X | Y_pi]) <= I([X | Y])}) / (1 + n_permutations), with Y's rows shuffled by
    ``numpy.random.default_rng(seed)``. Unlike the reference code, no L2 normalisation is applied
    inside: use the ``"l2"`` preprocessing step for that.

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    n_permutations : int
        0 skips the test (p-value NaN).
    seed : int
    discard : float
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    IdCorResult
    """
    x = as_embedding(x, "x", min_samples=3)
    y = as_embedding(y, "y", min_samples=3)
    check_same_samples(x, y)
    be = resolve_backend(device)
    id_x = id_from_graph_values(nearest_neighbours(x, 2, "euclidean", be).values, "twonn", 2,
                                discard, "x")
    id_y = id_from_graph_values(nearest_neighbours(y, 2, "euclidean", be).values, "twonn", 2,
                                discard, "y")
    r = pair_two_nn([x], [(0, 0)], be, right=[y])[0]
    id_xy = id_from_graph_values(r, "twonn", 2, discard, "[x|y]")
    value = idcor_value(id_x, id_y, id_xy)
    p = permutation_p_value(x, y, id_xy, n_permutations, seed, discard, be)
    return IdCorResult(value, p, id_x, id_y, id_xy)


def permutation_p_value(
    x: np.ndarray, y: np.ndarray, id_xy: float, n_permutations: int, seed: int, discard: float,
    be: Any,
) -> float:
    """p = (1 + #{I([x | y_pi]) <= I([x | y])}) / (1 + n_permutations); all shuffles in one pass."""
    if n_permutations <= 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    ys = [y[rng.permutation(y.shape[0])] for _ in range(n_permutations)]
    r = pair_two_nn([x], [(0, j) for j in range(n_permutations)], be, right=ys)
    null = np.array([id_from_graph_values(ri, "twonn", 2, discard, "[x|y_perm]") for ri in r])
    return float((1 + np.sum(null <= id_xy)) / (1 + n_permutations))
