"""Process-wide runtime settings shared by the CLI, the trainer and the benchmarks."""

from __future__ import annotations

__all__ = ["set_threads"]


def set_threads(n: int | None) -> None:
    """Use ``n`` threads in torch and in the numba kernels (``None``: leave both as they are).

    Both must be set: numba's first parallel call otherwise changes torch's thread count.
    numba cannot go above ``NUMBA_NUM_THREADS`` (the CPU count by default) and is capped there.
    """
    if n is None:
        return
    if n < 1:
        raise ValueError("--threads must be at least 1")
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
