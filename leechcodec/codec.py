"""Compress and decompress images into .lq files: the container framing and the zoo.

A model codes an image into two chunks (:meth:`LeechCodecModel.compress`, whose coding
steps are specified in :mod:`leechcodec.coding`); this module puts them in the container
(``bitstream/container.py``, the file format) with the header (model key, weights hash,
size, padding, coder profile, channel mode), and on decoding checks the header, finds the
model the file names (or takes the one given and checks its identity) and lets it decode.

Three coder profiles. Profile 3 (format 1.2, written by default) computes every number that
decides a probability exactly or in portable IEEE arithmetic, the same bits on every
machine; profile 2 (format 1.1: the same with the platform's libm) and profile 1 (format
1.0, float prior) are still decoded.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from leechcodec.bitstream import container
from leechcodec.coding import (  # noqa: F401  (re-exported: the coding helpers' old home)
    _ESCAPE_OFFSET,
    _ROWS,
    _SCALE_BOUNDS,
    LATENT_STRIDE as _LATENT_STRIDE,
    PROFILES as _PROFILES,
    SCALE_TABLE,
    _bsq_bits,
    _bsq_probs,
    _check_hyper_chunk,
    _code_hyper,
    _code_leech,
    _code_scalar,
    _decode_hyper,
    _decode_leech,
    _decode_scalar,
    _gaussian_params,
    _gaussian_row,
    _is_grey,
    _scalar_integers,
    _scale_indices,
    _sigmoid_table,
    _token_indices,
    _token_params,
)
from leechcodec.imageio import MAX_PIXELS
from leechcodec.models import LeechCodecModel
from leechcodec.zoo import ModelNotFoundError, ZooEntry, entry_from_key, load_model

__all__ = ["encode_image", "decode_image", "EncodeResult", "compress", "decompress", "coding_parameters",
           "FORMAT_CHANNELS", "SCALE_TABLE"]

FORMAT_CHANNELS = 3

@dataclass(frozen=True)
class EncodeResult:
    data: bytes
    height: int
    width: int
    ideal_bits: float  # −Σ log2 p of all coded symbols under the float64 model
    seconds: float
    hyper_ideal_bits: float = math.nan  # the part of ideal_bits spent on ẑ

    @property
    def bpp(self) -> float:
        return 8 * len(self.data) / (self.height * self.width)



def compress(model: LeechCodecModel, entry: ZooEntry, rgb: np.ndarray, refine: int = 0,
             refine_lr: float | None = None, progress=None,
             profile: int = container.PROFILE_DEFAULT) -> EncodeResult:
    """Encode an ``(H, W, 3)`` uint8 image into .lq bytes; ``entry`` names the model in the
    header (key and weights hash).

    ``refine`` > 0 runs that many iterations of encoder-side latent refinement at the
    model's λ (:mod:`leechcodec.refine`); the decoder is unaffected. ``progress(step, cost)``
    is called during refinement. ``profile``: the coder profile; 3 (exact prior, portable
    arithmetic, format 1.2) unless an older format is wanted, e.g. to test old files:
    2 (format 1.1) or 1 (format 1.0, float prior)."""
    if profile not in _PROFILES:
        raise ValueError(f"unknown coder profile {profile}")
    if rgb.shape[0] * rgb.shape[1] > MAX_PIXELS:
        raise ValueError(f"{rgb.shape[1]}x{rgb.shape[0]} is more than the {MAX_PIXELS:,} pixels a .lq file may hold")
    t0 = time.perf_counter()
    enc = model.compress(rgb, profile=profile, refine=refine, lmbda=entry.lmbda, refine_lr=refine_lr,
                         progress=progress)
    header = container.LqHeader(
        model_key=entry.key, weights_sha256_prefix=container.weights_hash_prefix(entry.sha256),
        height=enc.height, width=enc.width, pad_bottom=enc.padded_height - enc.height,
        pad_right=enc.padded_width - enc.width, coder_profile=profile, format_version=_PROFILES[profile],
        channel_mode=container.CHANNELS_GREY if enc.grey else container.CHANNELS_RGB,
    )
    data = container.pack(header, enc.chunks)
    return EncodeResult(data, enc.height, enc.width, enc.ideal_bits, time.perf_counter() - t0, enc.hyper_ideal_bits)


def decompress(data: bytes, prior_device: str | None = None, model: LeechCodecModel | None = None) -> np.ndarray:
    """Decode .lq bytes to an ``(H, W, 3)`` uint8 image; the model comes from the file (the
    zoo model it names), or is ``model``, whose identity must match the file's
    (:func:`leechcodec.api.model_identity`). A grey file (channel mode 1) comes back with
    three equal channels.

    Before any large work the header is checked against the encoder's pixel limit and the
    hyper chunk against the least number of bits its symbols can take. ``prior_device``
    (profiles 2 and 3): run the integer h_s with torch on this device (``"cpu"``, ``"cuda"``)
    instead of the numpy specification; the integers, hence the file's decoding, are the
    same."""
    return _decode(data, prior_device, model)[0]


def coding_parameters(data: bytes, prior_device: str | None = None) -> dict[str, np.ndarray]:
    """Every number the decoder derives a coding probability from, for inspection and for
    portability checks: ``hyper_symbols (C, h, w)``, then the prior parameters (Λ24 / BSQ:
    ``A``, ``B`` ``(n_tokens, D)`` on the 1/256 grid; scalar: ``means`` ``(C·h'·w',)``
    float32 and ``scale_index``), and the decoded ``symbols`` (token indices or integers)."""
    return _decode(data, prior_device)[1]


def _decode(data: bytes, prior_device: str | None,
            model: LeechCodecModel | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    header, chunks = container.unpack(data)
    if header.height * header.width > MAX_PIXELS:
        raise container.LqFormatError(
            f"header claims {header.width}x{header.height} pixels; the encoder writes at most {MAX_PIXELS:,}")
    if model is None:
        try:
            entry = entry_from_key(header.model_key)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"this file needs model {header.model_key}, which is not installed "
                                     f"({exc})") from None
        identity = entry.sha256
    else:
        from leechcodec.api import model_identity

        identity = model_identity(model)
    if container.weights_hash_prefix(identity) != header.weights_sha256_prefix:
        raise container.LqFormatError(
            f"file was written with other weights for {header.model_key} (hash prefix "
            f"{header.weights_sha256_prefix.hex()}, {'given model' if model is not None else 'installed'} "
            f"{identity[:16]})")
    profile = header.coder_profile
    if profile not in _PROFILES or len(chunks) != 2:
        raise container.LqFormatError(f"unsupported coder profile {profile} / {len(chunks)} chunks")
    if model is None:
        _, model = load_model(entry.name, entry.quality)
    if header.pad_top or header.pad_left:
        raise container.LqFormatError("inconsistent padding in header")
    return model.decompress(chunks, header.height, header.width, header.padded_height, header.padded_width,
                            profile, grey=header.channel_mode == container.CHANNELS_GREY,
                            prior_device=prior_device)


def encode_image(rgb: np.ndarray, model: str | None = None, quality: int | None = None, refine: int = 0) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 array with a zoo model; returns the .lq bytes.
    ``refine``: iterations of encoder-side latent refinement (0: none)."""
    from leechcodec.zoo import DEFAULT_MODEL

    entry, net = load_model(model or DEFAULT_MODEL, quality)
    return compress(net, entry, rgb, refine=refine).data


def decode_image(data: bytes) -> np.ndarray:
    """Decode .lq bytes to an ``(H, W, 3)`` uint8 array."""
    return decompress(data)
