"""Numba kernels with plain-numpy twins: Golay code, Leech lattice, exact priors."""

import os as _os

# Coding probabilities must not depend on the CPU: numba would otherwise call Intel's SVML
# (vectorized exp/log that can differ from libm in the last bit) wherever it is installed.
_os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")
