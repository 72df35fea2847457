"""Input validation shared by every metric: shapes, finiteness, sample counts and k.

Each check raises :class:`EmbeddingError` with a message that names the argument and says what to do.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EmbeddingError", "as_embedding", "check_k", "check_same_samples"]


class EmbeddingError(ValueError):
    """An embedding array cannot be scored as given (shape, NaN/inf, too few samples, degenerate)."""


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
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise EmbeddingError(
            f"{name}: {bad_rows.size} row(s) contain NaN or inf (first: row {bad_rows[0]}); "
            "drop or re-embed those samples before scoring."
        )
    if not allow_constant and n >= 2 and not np.ptp(arr, axis=0).any():
        raise EmbeddingError(
            f"{name}: all {n} rows are identical (no variance: a constant embedding); the model "
            "gives every "
            "sample the same vector, so no alignment can be measured. Check the model's "
            "layer and inputs."
        )
    return arr


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
