"""torch's intra-op thread count, lowered to one for a block of small CPU kernels."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_torch_thread() -> Iterator[int]:
    """Run torch's CPU kernels on one intra-op thread inside; yields the count there was.

    Small kernels (pooling a few hundred rows, batched SVDs of 64 × 64 matrices) gain nothing
    from intra-op threads, and when other processes share the cores each parallel region waits
    on the slowest thread: the mean of 512 × 6384 float64 rows took about 20 ms with 2 threads
    and 1 ms with 1, 300 SVDs of 64 × 64 took 12 s with 2 and 0.54 s with 1, on a loaded 2-core
    machine. The count is restored after. Process-wide (``torch.set_num_threads``): enter it
    from one thread at a time; nested uses cost nothing.
    """
    import torch

    threads = torch.get_num_threads()
    if threads == 1:
        yield threads
        return
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)
