"""leechcodec: a learned lossy image codec built on Spherical Leech Quantization (Λ24-SQ).

The top-level package stays import-light (no torch) so that the torch-free layers
``leechcodec.kernels`` (numpy + numba) and ``leechcodec.bitstream`` (numpy + constriction)
can be imported and tested on their own.
"""

__version__ = "0.1.0"
