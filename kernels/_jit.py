"""``njit`` for the kernels: numba's, with the on-disk cache keyed by all kernel sources.

numba checks a cached kernel against its own source file only. A kernel that calls a
numba function from another file (the index layout, the codeword bijection) would keep a
stale compiled copy after that other file changed, e.g. after ``git pull`` in an editable
install, and could then compute other probabilities than the source says. Here every
kernel caches under ``<cache root>/leechcodec-<sha256 of all kernels/*.py>[:16]``, so any
change to any kernel file starts a fresh cache. The cache root is numba's
``NUMBA_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/leechcodec/numba`` (``~/.cache/...``).
numba's global setting is changed only while a kernel is decorated.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from pathlib import Path

import numba
from numba.core import config

__all__ = ["njit", "prange", "cache_dir", "source_hash"]

prange = numba.prange


def source_hash(folder: Path = Path(__file__).parent) -> str:
    """sha256 over the names and bytes of every ``*.py`` in ``folder``, sorted by name."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def cache_dir() -> str:
    """Where the kernels' compiled copies go (see the module docstring)."""
    root = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "leechcodec", "numba")
    return os.path.join(root, f"leechcodec-{source_hash()[:16]}")


@contextlib.contextmanager
def _cache_root():
    saved = config.CACHE_DIR
    config.CACHE_DIR = cache_dir()
    try:
        yield
    finally:
        config.CACHE_DIR = saved


def njit(*args, **kwargs):
    """``numba.njit`` whose cache (``cache=True``) lives in :func:`cache_dir`."""
    if args and callable(args[0]):  # bare @njit
        with _cache_root():
            return numba.njit(**kwargs)(args[0])

    def wrap(func):
        with _cache_root():
            return numba.njit(*args, **kwargs)(func)

    return wrap
