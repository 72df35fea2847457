"""Torch placement for the metric kernels: device resolution, working precision and row blocks.

Torch is imported lazily so that importing :mod:`matteralign.metrics` stays cheap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["Backend", "resolve_backend"]


class Backend:
    """Where and in which precision tiles are computed.

    Parameters
    ----------
    device : {"cpu", "cuda", "auto"} or torch.device
        "auto" picks CUDA when available.
    precision : {"float64", "float32", None}
        Dtype of the similarity/distance GEMMs. None: float64 on CPU (exact), float32 (TF32 matmuls)
        on CUDA. Neighbour lists are always re-ranked in float64, sums accumulate in float64.
    block_bytes : int, optional
        Memory budget for one row block of tiles; default 256 MiB on CPU, and on CUDA a fifth
        of the GPU's memory, at most 16 GiB (small blocks leave a GPU waiting on kernel launches
        and run top-k on too few rows to fill it: on an 80 GB H100, two models x N = 10^6 took
        18.8 s exact / 11.9 s approximate with 4 GiB blocks and 10.6 s / 6.9 s with 16 GiB).
    neighbours : {"exact", "approximate"}
        "exact": every neighbour list is certified exact (rows the tile precision cannot settle
        are recomputed in float64). "approximate": lists come from a low-precision screen
        (bfloat16 tiles on CUDA, float32 on CPU) re-ranked in float64, with no certification;
        each graph then carries its recall measured against exact lists on a sample of rows.
    stages : dict, optional
        Where to record the seconds of each stage of the work done on this backend (see
        :meth:`stage`): ``stages[name]`` accumulates over calls. None (default): nothing is
        recorded and no device synchronisation is added.
    """

    def __init__(self, device: Any = "cpu", precision: str | None = None,
                 block_bytes: int | None = None, neighbours: str = "exact",
                 stages: dict[str, float] | None = None):
        import torch

        if isinstance(device, str) and device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was requested but no CUDA GPU is visible; use 'cpu'.")
        if precision is None:
            precision = "float64" if self.device.type == "cpu" else "float32"
        if precision not in ("float64", "float32"):
            raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}.")
        self.precision = precision
        self.dtype = torch.float64 if precision == "float64" else torch.float32
        if block_bytes is None:
            block_bytes = 2**28
            if self.device.type == "cuda":
                total = torch.cuda.get_device_properties(self.device).total_memory
                block_bytes = max(2**28, min(2**34, total // 5))
        self.block_bytes = int(block_bytes)
        if neighbours not in ("exact", "approximate"):
            raise ValueError(f"neighbours must be 'exact' or 'approximate', got {neighbours!r}.")
        self.neighbours = neighbours
        self.stages = stages

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the wall-clock seconds of the enclosed work to ``stages[name]``.

        The device is synchronised on entry and exit, so queued kernels count in the stage that
        issued them; without ``stages`` this is a no-op (no synchronisation).
        """
        if self.stages is None:
            yield
            return
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0

    def count(self, name: str, value: float) -> None:
        """Add ``value`` to ``stages[name]`` (a count beside the seconds, e.g. fallback rows)."""
        if self.stages is not None:
            self.stages[name] = self.stages.get(name, 0.0) + value

    def _sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @property
    def exact(self) -> bool:
        """True when tiles are computed in float64."""
        return self.precision == "float64"

    @property
    def unit_roundoff(self) -> float:
        """Unit roundoff of the tile GEMMs (TF32 on CUDA when float32)."""
        if self.exact:
            return 2.0**-53
        return 2.0**-11 if self.device.type == "cuda" else 2.0**-24

    @property
    def gemm_input_roundoff(self) -> float:
        """Largest relative error of one GEMM operand as the tile kernel sees it (float64 input).

        float64: 0. float32: the cast to float32 (2^-24, round to nearest) followed by what
        ``torch.get_float32_matmul_precision()`` lets the BLAS do to the inputs: "highest" (and
        ``torch.backends.cuda.matmul.allow_tf32`` off) nothing; "high" or ``allow_tf32`` TF32,
        11 significant bits, bounded by u_t = 2^-10 so that truncation as well as rounding is
        covered; "medium" bfloat16, 8 significant bits, u_t = 2^-7. The result is
        (1 + 2^-24)(1 + u_t) - 1.
        """
        import torch

        if self.exact:
            return 0.0
        mode = torch.get_float32_matmul_precision()
        u_t = 0.0
        if mode == "medium":
            u_t = 2.0**-7
        elif mode == "high" or (self.device.type == "cuda"
                                and torch.backends.cuda.matmul.allow_tf32):
            u_t = 2.0**-10
        return (1.0 + 2.0**-24) * (1.0 + u_t) - 1.0

    @property
    def gemm_accumulation_roundoff(self) -> float:
        """Relative error of one product or addition in the GEMM accumulator.

        2^-53 for float64; 2^-23 for float32, twice the round-to-nearest unit so that accumulators
        that truncate (tensor cores) are covered.
        """
        return 2.0**-53 if self.exact else 2.0**-23

    def to_working(self, x64: torch.Tensor) -> torch.Tensor:
        """Cast a float64 tensor to the tile dtype (the GEMM may round it further, see above)."""
        return x64.to(self.dtype)

    def tensor(self, x: np.ndarray | torch.Tensor, dtype: Any = None) -> torch.Tensor:
        """``x`` as a tensor on this device (float64 unless ``dtype`` is given).

        A NumPy array is copied to the device (shared, not copied, on CPU when the dtype matches);
        a tensor already there in that dtype is returned as it is.
        """
        import torch

        dtype = dtype or torch.float64
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=dtype)
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    def block_rows(self, n: int, n_tiles: int = 1, itemsize: int = 8) -> int:
        """Rows per block so that ``n_tiles`` tiles of shape (rows, n) fit the memory budget."""
        rows = self.block_bytes // max(1, n_tiles * n * itemsize)
        return int(max(1, min(n, rows)))

    def __repr__(self) -> str:
        return (f"Backend(device={self.device.type!r}, precision={self.precision!r}, "
                f"neighbours={self.neighbours!r})")


def resolve_backend(device: Any = "cpu", precision: str | None = None,
                    neighbours: str = "exact") -> Backend:
    """Return a :class:`Backend` (pass-through when one is given)."""
    if isinstance(device, Backend):
        return device
    return Backend(device, precision, neighbours=neighbours)
