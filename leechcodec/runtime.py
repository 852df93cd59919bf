"""Process-wide runtime settings shared by the CLI, the trainer and the benchmarks.

The thread policy: torch and the numba kernels use the same number of threads, ``--threads``
or else torch's default (the physical cores available to the process), and idle OpenMP
threads sleep instead of spinning. numba's ``omp`` layer and torch each load their own
OpenMP runtime, and the codec alternates between them (convolutions, then the Λ24 search
or prior, then convolutions again), so spinning threads of one runtime hold the cores the
other needs: on a 2-core machine under load, ``encode --refine 3`` took 77 s with spinning
threads and 5 s with sleeping ones (``bench/micro/bench_startup.py`` measures both).
"""

from __future__ import annotations

import os

__all__ = ["configure_environment", "set_threads"]


def configure_environment() -> None:
    """Environment defaults that must be set before torch or numba load their OpenMP
    runtimes: idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``). A value the user set wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads in torch and in the numba kernels (``None``: torch's default count,
    applied to numba too); returns the count. numba cannot go above ``NUMBA_NUM_THREADS``
    (the CPU count by default) and is capped there."""
    if n is not None and n < 1:
        raise ValueError("--threads must be at least 1")
    import numba
    import torch

    if n is None:
        n = torch.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return n
