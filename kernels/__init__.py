"""Numba kernels with plain-numpy twins: Golay code, Leech lattice, exact priors."""
