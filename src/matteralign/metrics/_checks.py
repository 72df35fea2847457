"""Input validation shared by every metric: shapes, finiteness, sample counts and k.

Each check raises :class:`EmbeddingError` with a message that names the argument and says what to
do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from matteralign.errors import MatterAlignError

__all__ = [
    "CONSTANT_RTOL", "EmbeddingError", "as_embedding", "check_k", "check_same_samples",
    "check_shape", "check_values", "check_values_on_device",
]

#: An embedding is constant (degenerate) when max_d (max_i x_id - min_i x_id) <= CONSTANT_RTOL
#: max_id |x_id|: every row is the same vector up to rounding of its entries.
CONSTANT_RTOL = 1e-12


class EmbeddingError(MatterAlignError, ValueError):
    """An embedding cannot be scored as given (shape, NaN/inf, too few samples, degenerate)."""


def as_embedding(
    x: object, name: str = "x", min_samples: int = 2, allow_constant: bool = False
) -> np.ndarray:
    """Validate one embedding and return it as a C-contiguous float64 array.

    Parameters
    ----------
    x : (N, D) array_like
        Embedding, one row per sample.
    name : str
        Name used in error messages (argument or model name).
    min_samples : int
        Smallest N accepted.
    allow_constant : bool
        Accept an embedding whose rows are all equal (preprocessing does; measures don't).

    Returns
    -------
    (N, D) float64 ndarray

    Raises
    ------
    EmbeddingError
        If ``x`` is not 2-D, has fewer than ``min_samples`` rows, no columns, NaN/inf entries,
        or (with two or more rows) every row equal: a constant embedding carries no information,
        and every measure would return an artefact of its estimator.
    """
    arr = np.ascontiguousarray(check_shape(x, name, min_samples), dtype=np.float64)
    check_values(arr, name, allow_constant)
    return arr


def check_values(arr: np.ndarray, name: str = "x", allow_constant: bool = False) -> None:
    """The value checks of :func:`as_embedding` on an (N, D) float array: no NaN/inf, and (with
    two or more rows, unless ``allow_constant``) not every row the same vector, i.e. not
    max_d ptp_d <= :data:`CONSTANT_RTOL` max |x|.

    Raises
    ------
    EmbeddingError
    """
    n = arr.shape[0]
    if not np.isfinite(arr.sum()):  # one pass; the row scan only when something is wrong
        finite = np.isfinite(arr)
        if not finite.all():
            raise _nonfinite_error(name, np.flatnonzero(~finite.all(axis=1)))
    if not allow_constant and n >= 2:
        hi, lo = arr.max(axis=0), arr.min(axis=0)
        scale = max(float(np.abs(hi).max()), float(np.abs(lo).max()))
        if float((hi - lo).max()) <= CONSTANT_RTOL * scale:
            raise _constant_error(name, n)


def check_shape(x: object, name: str = "x", min_samples: int = 2) -> np.ndarray:
    """The shape and dtype checks of :func:`as_embedding`, without converting or reading values.

    Returns
    -------
    (N, D) ndarray of real numbers, in its own dtype (a tensor is copied to the host).
    """
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise EmbeddingError(
            f"{name}: expected a 2-D (N, D) array, got shape {arr.shape}; "
            "reshape to one row per sample (use x[:, None] for 1-D features)."
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise EmbeddingError(f"{name}: expected real numbers, got dtype {arr.dtype}.")
    n, d = arr.shape
    if d == 0:
        raise EmbeddingError(f"{name}: has no feature columns (shape {arr.shape}).")
    if n < min_samples:
        raise EmbeddingError(
            f"{name}: has {n} samples but this measure needs at least {min_samples}; "
            "embed more samples."
        )
    return arr


def check_values_on_device(t: Any, name: str = "x", allow_constant: bool = False) -> None:
    """The value checks of :func:`as_embedding` (NaN/inf, constant) on a (N, D) torch tensor.

    Runs where the tensor lives, so a GPU caller checks uploaded inputs at memory bandwidth instead
    of on the host.

    Raises
    ------
    EmbeddingError
        As :func:`as_embedding`.
    """
    if not bool(t.sum().isfinite()):
        finite = t.isfinite()
        if not bool(finite.all()):
            raise _nonfinite_error(name, (~finite.all(dim=1)).nonzero().flatten().cpu().numpy())
    if not allow_constant and t.shape[0] >= 2:
        hi, lo = t.amax(dim=0), t.amin(dim=0)
        scale = float(max(hi.abs().max(), lo.abs().max()))
        if float((hi - lo).max()) <= CONSTANT_RTOL * scale:
            raise _constant_error(name, t.shape[0])


def _nonfinite_error(name: str, bad_rows: np.ndarray) -> EmbeddingError:
    return EmbeddingError(
        f"{name}: {bad_rows.size} row(s) contain NaN or inf (first: row {bad_rows[0]}); "
        "drop or re-embed those samples before scoring."
    )


def _constant_error(name: str, n: int) -> EmbeddingError:
    return EmbeddingError(
        f"{name}: all {n} rows are identical (no variance: a constant embedding); the model gives "
        "every sample the same vector, so no alignment can be measured. Check the model's layer "
        "and inputs."
    )


def check_same_samples(x: np.ndarray, y: np.ndarray, names: tuple[str, str] = ("x", "y")) -> None:
    """Raise :class:`EmbeddingError` unless ``x`` and ``y`` have the same number of rows N."""
    if x.shape[0] != y.shape[0]:
        raise EmbeddingError(
            f"{names[0]} has {x.shape[0]} samples but {names[1]} has {y.shape[0]}; both must embed "
            "the same inputs in the same order."
        )


def check_k(k: int, n: int, name: str = "x", what: str = "k") -> int:
    """Validate a neighbour count: an integer with 1 <= k <= N - 1.

    Raises
    ------
    EmbeddingError
        If N <= k (too few samples for k neighbours besides self) or k < 1.
    """
    if isinstance(k, bool) or int(k) != k:
        raise EmbeddingError(f"{what} must be an integer, got {k!r}.")
    k = int(k)
    if k < 1:
        raise EmbeddingError(f"{what} must be >= 1, got {k}.")
    if n <= k:
        raise EmbeddingError(
            f"{name}: {what}={k} neighbours need N > {k} samples besides self, got N={n}; "
            f"lower {what} or embed more samples."
        )
    return k
