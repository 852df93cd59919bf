"""The kernels' numba cache is keyed by every kernel source file."""

from __future__ import annotations

import os
import subprocess
import sys

from leechcodec.kernels import _jit


def test_source_hash_follows_every_file(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    first = _jit.source_hash(tmp_path)
    (tmp_path / "b.py").write_text("y = 3\n")  # an edit in a file the kernel does not live in
    assert _jit.source_hash(tmp_path) != first
    (tmp_path / "b.py").write_text("y = 2\n")
    assert _jit.source_hash(tmp_path) == first


def test_kernels_cache_under_the_source_hash(tmp_path):
    code = ("from leechcodec.kernels import _jit, leech, prior_kernels\n"
            "from numba.core import config\n"
            "print(leech._search_kernel._cache._cache_path)\n"
            "print(prior_kernels._parts_nb._cache._cache_path)\n"
            "print(_jit.cache_dir())\n"
            "print(repr(config.CACHE_DIR))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    search, prior, root, global_dir = out.stdout.splitlines()
    assert root == str(tmp_path / f"leechcodec-{_jit.source_hash()[:16]}")
    assert search.startswith(root) and prior.startswith(root)
    assert global_dir == repr(str(tmp_path))  # numba's own setting is left as the user set it
