"""Preprocessing steps applied before scoring, each a pure function with a recorded step id.

Steps: ``"clamp-q0.95"`` (platonic-rep outlier clamp), ``"max-abs"`` (the paper's max-element
scaling), ``"l2"``. Each step runs on a NumPy float64 array (host) or a float64 torch tensor (where
the data will be scored, e.g. on the GPU), with the same formula; :func:`apply_preprocessing`
validates its input once and then runs the steps without further copies or scans.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._checks import EmbeddingError, as_embedding

__all__ = [
    "apply_preprocessing",
    "check_steps",
    "clamp_outliers",
    "l2_normalise",
    "max_abs_normalise",
    "preprocess_values",
]


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "device")


def _l2(x: Any) -> Any:
    """x_i / ||x_i||_2 of a validated float64 array or tensor (a new array).

    The norm is taken of the row divided by its largest |entry| m_i, ||x_i|| = m_i ||x_i / m_i||,
    so rows of 1e300 (whose squares overflow) or 1e-300 (whose squares underflow to 0) are
    normalised exactly like rows of 1.
    """
    if _is_tensor(x):
        scale = x.abs().amax(dim=1)
        zero = (scale == 0).nonzero().flatten().cpu().numpy()
        norms = scale * (x / scale.clamp_min(np.finfo(np.float64).tiny)[:, None]).norm(dim=1)
    else:
        scale = np.abs(x).max(axis=1)
        zero = np.flatnonzero(scale == 0)
        norms = scale * np.linalg.norm(x / np.where(scale == 0, 1.0, scale)[:, None], axis=1)
    if zero.size:
        raise EmbeddingError(
            f"x: {zero.size} row(s) are all zeros (first: row {zero[0]}) and cannot be "
            "L2-normalised; drop them or skip the 'l2' step."
        )
    return x / norms[:, None]


def _max_abs(x: Any) -> Any:
    m = float(x.abs().max()) if _is_tensor(x) else float(np.abs(x).max())
    if m == 0:
        raise EmbeddingError("x: every entry is zero; max-abs normalisation is undefined.")
    return x / m


def _clamp(x: Any, q: float) -> Any:
    if not 0 < q <= 1:
        raise ValueError(f"q must lie in (0, 1], got {q}.")
    if not _is_tensor(x):
        v = np.quantile(np.abs(x), q)
        return np.clip(x, -v, v)
    # np.quantile's linear rule, h = (n - 1) q, from two order statistics (torch.quantile is
    # limited to 2^24 entries)
    a = x.abs().flatten()
    h = (a.numel() - 1) * q
    lo = int(np.floor(h))
    v_lo = a.kthvalue(lo + 1).values
    v = v_lo if lo + 1 >= a.numel() else v_lo + (h - lo) * (a.kthvalue(lo + 2).values - v_lo)
    return x.clamp(min=-v, max=v)


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
    return _l2(as_embedding(x, "x", min_samples=1, allow_constant=True))


def max_abs_normalise(x: np.ndarray) -> np.ndarray:
    """Divide the whole array by its largest absolute entry (the paper's "maximum element of 1").

    x <- x / max_ij |x_ij|

    Raises
    ------
    EmbeddingError
        If every entry is zero.
    """
    return _max_abs(as_embedding(x, "x", min_samples=1, allow_constant=True))


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
    return _clamp(as_embedding(x, "x", min_samples=1, allow_constant=True), q)


_CLAMP = re.compile(r"^clamp-q(0?\.\d+|1(\.0*)?)$")


def check_steps(steps: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first unknown step of ``steps``."""
    for step in steps:
        if step not in ("l2", "max-abs") and _CLAMP.match(step) is None:
            raise ValueError(
                f"unknown preprocessing step {step!r}; use 'clamp-q0.95', 'max-abs' or 'l2'."
            )


def preprocess_values(x: Any, steps: Sequence[str] = ()) -> Any:
    """:func:`apply_preprocessing` of a validated (N, D) float64 array or torch tensor, without
    copying or scanning it first; a tensor stays where it lives (e.g. on the GPU).

    The input must already be finite (:func:`~._checks.check_values`); tensor and NumPy steps use
    the same formulas, so results agree to float64 rounding.

    Returns
    -------
    (N, D) float64 array or tensor (``x`` itself when ``steps`` is empty)
    """
    check_steps(steps)
    for step in steps:
        if step == "l2":
            x = _l2(x)
        elif step == "max-abs":
            x = _max_abs(x)
        else:
            x = _clamp(x, float(_CLAMP.match(step).group(1)))
    return x


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
    check_steps(steps)
    return preprocess_values(as_embedding(x, "x", min_samples=1, allow_constant=True), steps)


