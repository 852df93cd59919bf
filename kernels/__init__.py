"""Numba kernels with plain-numpy twins: Golay code, Leech lattice, exact priors."""

import os as _os

# Coding probabilities must not depend on the CPU: numba would otherwise call Intel's SVML
# (vectorized exp/log that can differ from libm in the last bit) wherever it is installed.
_os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")


#: The kernels the codec calls from Python (each compiles the kernels it calls).
CODEC_KERNELS = ("leech._search_kernel", "prior_kernels._parts_nb", "prior_kernels._major_nb",
                 "prior_kernels._minor_nb", "prior_kernels._coding_nb", "prior_kernels._exp_nb")


def uncached_kernels(names: tuple[str, ...] = CODEC_KERNELS) -> list[str]:
    """Those of ``names`` (``module.function``) with no compiled copy in numba's cache for
    the current sources: their first call compiles them (seconds each). The cache is
    keyed by all kernel sources (:mod:`leechcodec.kernels._jit`). An empty
    list also when numba's cache cannot be inspected (its layout is numba's own)."""
    import importlib

    missing = []
    try:
        for name in names:
            module, attr = name.split(".")
            cache = getattr(importlib.import_module(f"{__name__}.{module}"), attr)._cache
            if not cache._cache_file._load_index():
                missing.append(name)
    except Exception:  # pragma: no cover - numba internals changed: unknown
        return []
    return missing
