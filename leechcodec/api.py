"""The public Python API: ``load_model``, ``compress``, ``decompress``.

    import leechcodec
    model = leechcodec.load_model("leech24", quality=3)      # a zoo model, weights verified
    data = leechcodec.compress("photo.png", model=model)     # .lq bytes
    rgb = leechcodec.decompress(data)                        # (H, W, 3) uint8; model read from the file

A model of your own works without a registry entry: ``compress(image, model=net)`` writes
the model's identity (a sha256 over its configuration and weights, :func:`model_identity`)
into the file, and ``decompress(data, model=net)`` checks it before decoding. Build it with
``LeechCodecModel(ModelConfig(...))``; its EntropyBottleneck's integer CDF tables are
built on first use (``model.entropy_bottleneck.update()``) and are part of its identity.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from leechcodec.models import LeechCodecModel
from leechcodec.zoo import DEFAULT_MODEL, ZooEntry

__all__ = ["load_model", "compress", "decompress", "model_identity"]


def load_model(name: str = DEFAULT_MODEL, quality: int | None = None) -> LeechCodecModel:
    """A zoo model (CPU, eval mode) with verified weights; ``model.zoo_entry`` is its registry
    entry (λ, training budget, provenance)."""
    from leechcodec import zoo

    return zoo.load_model(name, quality)[1]


def model_identity(model: LeechCodecModel) -> str:
    """The sha256 a file records for ``model``: a zoo model's weights-file hash, else a
    sha256 over its configuration and every state-dict tensor (name, dtype, shape, bytes)."""
    entry = getattr(model, "zoo_entry", None)
    if entry is not None:
        return entry.sha256
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _entry(model: LeechCodecModel, name: str, lmbda: float | None) -> ZooEntry:
    entry = getattr(model, "zoo_entry", None)
    if entry is not None:
        return entry
    if "." in name or not name:
        raise ValueError(f"model name {name!r}: give a non-empty name without dots")
    eb = model.entropy_bottleneck
    if eb.quantized_cdf.numel() == 0:
        eb.update(force=True)
    return ZooEntry(name=name, quality=0, quantizer=model.config.quantizer, file="", sha256=model_identity(model),
                    lmbda=math.nan if lmbda is None else float(lmbda), budget={}, provenance={})


def _rgb(image) -> np.ndarray:
    from leechcodec.imageio import load_image

    if isinstance(image, (str, Path)):
        return load_image(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 image, got {arr.shape} {arr.dtype}")
    return arr


def compress(image, model: LeechCodecModel | str | None = None, quality: int | None = None, *,
             refine: int = 0, name: str = "custom", lmbda: float | None = None) -> bytes:
    """Encode ``image`` (a path, or an ``(H, W, 3)`` / ``(H, W)`` uint8 array) to .lq bytes.

    ``model``: a :class:`LeechCodecModel` (from :func:`load_model` or your own), a zoo name,
    or ``None`` for the default model; ``quality`` picks the zoo model's rate point.
    ``refine``: iterations of encoder-side latent refinement (a model of your own needs its
    ``lmbda`` for that). ``name``: the model name a file of your own model records."""
    from leechcodec import codec, zoo

    if model is None or isinstance(model, str):
        entry, net = zoo.load_model(model or DEFAULT_MODEL, quality)
    else:
        net = model
        entry = _entry(net, name, lmbda)
    if refine and not math.isfinite(entry.lmbda):
        raise ValueError("refinement needs the model's λ: pass lmbda=")
    return codec.compress(net, entry, _rgb(image), refine=refine).data


def decompress(data: bytes, model: LeechCodecModel | None = None) -> np.ndarray:
    """Decode .lq bytes to an ``(H, W, 3)`` uint8 image. Without ``model`` the zoo model the
    file names is loaded; with one, the file must have been written by that model (its
    identity is checked)."""
    from leechcodec import codec

    if model is not None:
        _entry(model, "custom", None)  # builds the CDF tables of a fresh model, as compress did
    return codec.decompress(data, model=model)
