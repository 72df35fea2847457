"""Preprocessing steps applied before scoring, each a pure function with a recorded step id.

Steps: ``"clamp-q0.95"`` (platonic-rep outlier clamp), ``"max-abs"`` (the paper's max-element
scaling), ``"l2"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ._checks import EmbeddingError, as_embedding

__all__ = ["apply_preprocessing", "clamp_outliers", "l2_normalise", "max_abs_normalise"]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Scale every row to unit Euclidean norm (platonic-rep's default before scoring).

    x_i <- x_i / ||x_i||_2

    Parameters
    ----------
    x : (N, D) array

    Returns
    -------
    (N, D) float64 array

    Raises
    ------
    EmbeddingError
        If a row has zero norm (it has no direction).
    """
    x = as_embedding(x, "x", min_samples=1, allow_constant=True)
    norms = np.linalg.norm(x, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise EmbeddingError(
            f"x: {zero.size} row(s) are all zeros (first: row {zero[0]}) and cannot be "
            "L2-normalised; "
            "drop them or skip the 'l2' step."
        )
    return x / norms[:, None]


def max_abs_normalise(x: np.ndarray) -> np.ndarray:
    """Divide the whole array by its largest absolute entry (the paper's "maximum element of 1").

    x <- x / max_ij |x_ij|

    Raises
    ------
    EmbeddingError
        If every entry is zero.
    """
    x = as_embedding(x, "x", min_samples=1, allow_constant=True)
    m = np.abs(x).max()
    if m == 0:
        raise EmbeddingError("x: every entry is zero; max-abs normalisation is undefined.")
    return x / m


def clamp_outliers(x: np.ndarray, q: float = 0.95) -> np.ndarray:
    """Clamp entries to [-v, v], with v the q-quantile of all |x_ij| (platonic-rep's exact clamp).

    Parameters
    ----------
    x : (N, D) array
    q : float
        Quantile in (0, 1]; v = np.quantile(|x|, q) with linear interpolation.

    Returns
    -------
    (N, D) float64 array
    """
    if not 0 < q <= 1:
        raise ValueError(f"q must lie in (0, 1], got {q}.")
    x = as_embedding(x, "x", min_samples=1, allow_constant=True)
    v = np.quantile(np.abs(x), q)
    return np.clip(x, -v, v)


_CLAMP = re.compile(r"^clamp-q(0?\.\d+|1(\.0*)?)$")


def apply_preprocessing(x: np.ndarray, steps: Sequence[str] = ()) -> np.ndarray:
    """Apply named steps in order: ``"clamp-q<q>"``, ``"max-abs"``, ``"l2"``.

    Parameters
    ----------
    x : (N, D) array
    steps : sequence of str
        E.g. ``("clamp-q0.95", "l2")`` reproduces platonic-rep's ``prepare_features`` + normalise.

    Returns
    -------
    (N, D) float64 array
    """
    out = as_embedding(x, "x", min_samples=1, allow_constant=True)
    for step in steps:
        if step == "l2":
            out = l2_normalise(out)
        elif step == "max-abs":
            out = max_abs_normalise(out)
        elif (m := _CLAMP.match(step)) is not None:
            out = clamp_outliers(out, float(m.group(1)))
        else:
            raise ValueError(
                f"unknown preprocessing step {step!r}; use 'clamp-q0.95', 'max-abs' or 'l2'."
            )
    return out
