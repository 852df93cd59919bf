"""Process-wide runtime settings shared by the CLI, the trainer and the benchmarks.

The thread policy: torch and the numba kernels use the same number of threads, ``--threads``
or else torch's default (the physical cores available to the process), and idle OpenMP
threads sleep instead of spinning. numba's ``omp`` layer and torch each load their own
OpenMP runtime, and the codec alternates between them (convolutions, then the Λ24 search
or prior, then convolutions again), so spinning threads of one runtime hold the cores the
other needs: on a 2-core machine under load, ``encode --refine 3`` took 77 s with spinning
threads and 5 s with sleeping ones (``bench/micro/bench_startup.py`` measures both).

The heap policy of training (:func:`keep_freed_memory`): glibc's malloc gives freed memory
back to the kernel and takes it again on the next step, so every training step faults in
and zeroes its activations afresh. Keeping it mapped took the 128-channel model's CPU step
(8 × 128² crops) from about 15,000 page faults to about 40; the step's time moved by
2–3 %, within this machine's noise (``bench/micro/bench_heap.py`` measures both in one run).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["HEAP_HELP", "HEAP_POLICIES", "TRAINING_COMMANDS", "add_heap_argument", "configure_environment",
           "keep_freed_memory", "set_heap", "set_threads"]

#: ``--heap``'s choices (:func:`set_heap`); the first is the default.
HEAP_POLICIES = ("keep", "glibc")
#: ``--heap`` of the trainer, the relay and bench_train (:func:`add_heap_argument`).
HEAP_HELP = ("memory the process frees: keep (default) keeps it mapped for the next step (glibc: no "
             "trimming, no fresh mmap below 32 MiB; far fewer page faults); glibc leaves the C library's defaults")

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)


#: Subcommands whose idle OpenMP threads keep the runtime's default (spin a while, then sleep).
TRAINING_COMMANDS = frozenset({"train"})


def configure_environment(command: str | None = None) -> None:
    """Environment defaults that must be set before torch or numba load their OpenMP
    runtimes: idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``), so that next to other busy
    processes a spinning thread of one runtime does not starve the other's. Not for
    ``command`` in :data:`TRAINING_COMMANDS`: a training step is thousands of short parallel
    regions, and waking sleeping threads for each cost the flagship's CPU step 1.18× its time
    against the runtime's default (``bench/results/bench_omp_cpu.json``). A value the user set wins."""
    if command not in TRAINING_COMMANDS:
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


def add_heap_argument(parser, note: str = "") -> None:
    """Add ``--heap`` (:data:`HEAP_POLICIES`, default ``keep``) to an argparse parser; ``note``
    is appended to its help."""
    parser.add_argument("--heap", choices=HEAP_POLICIES, default=HEAP_POLICIES[0], help=HEAP_HELP + note)


def set_heap(policy: str) -> bool:
    """Apply ``--heap``: ``keep`` calls :func:`keep_freed_memory`, ``glibc`` changes nothing.
    Returns whether freed memory is now kept."""
    if policy not in HEAP_POLICIES:
        raise ValueError(f"unknown heap policy {policy!r}: expected one of {', '.join(HEAP_POLICIES)}")
    return policy == "keep" and keep_freed_memory()


def keep_freed_memory() -> bool:
    """Keep the memory a process frees mapped for its next use, where the C library is
    glibc: blocks up to 32 MiB come from the heap, never from a fresh ``mmap``; the heap's
    free top is never trimmed; and it grows 64 MiB at a time. Returns whether it was applied
    (``False`` on other C libraries, which are left as they are).

    glibc by default maps large blocks afresh and trims the heap's free top, so a training
    step, which allocates and frees the same activations every time, page-faults and zeroes
    them again and again (on this machine about 15,000 page faults per step of the
    128-channel model, :mod:`leechcodec.bench.micro.bench_heap`). The price is a
    resident size that stays at its peak, which a training process reaches in its first
    steps anyway. Process-wide; meant for the trainer, not for the one-shot codec commands.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only (musl has mallopt as a no-op)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX),  # also turns off glibc's moving threshold
        (_M_TRIM_THRESHOLD, 2**31 - 1),  # the largest value mallopt takes (an int)
        (_M_TOP_PAD, 64 << 20),
    ))
