"""leechcodec: a learned lossy image codec built on Spherical Leech Quantization (Λ24-SQ).

Public API (see the README's "Python API" section)::

    import leechcodec
    data = leechcodec.compress("photo.png")            # default model → .lq bytes
    rgb = leechcodec.decompress(data)                  # (H, W, 3) uint8
    model = leechcodec.load_model("leech24", 3)        # a zoo model
    net = leechcodec.LeechCodecModel(leechcodec.ModelConfig(quantizer="bsq"))  # your own

The names below load lazily: ``import leechcodec`` stays torch-free, so the torch-free
layers ``leechcodec.kernels`` (numpy + numba) and ``leechcodec.bitstream`` (numpy +
constriction) can be imported and tested on their own, and the CLI starts fast.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "leechcodec.api",
    "compress": "leechcodec.api",
    "decompress": "leechcodec.api",
    "model_identity": "leechcodec.api",
    "LeechCodecModel": "leechcodec.models",
    "ModelConfig": "leechcodec.models",
    "LatentCodec": "leechcodec.latent_codecs",
    "Leech24Codec": "leechcodec.latent_codecs",
    "BSQCodec": "leechcodec.latent_codecs",
    "ScalarCodec": "leechcodec.latent_codecs",
    "LATENT_CODECS": "leechcodec.latent_codecs",
    "SphericalLeechQuantizer": "leechcodec.quantizers",
    "BinarySphericalQuantizer": "leechcodec.quantizers",
    "ScalarQuantizer": "leechcodec.quantizers",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'leechcodec' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
