"""Adapter that puts leechcodec's own models (the zoo) behind the :class:`Codec` interface.

A learned codec's command-line name is its zoo model name; all qualities the zoo lists
for that name form its curve, and the rate parameter is the zoo quality. The name
``MODEL+refineN`` is the same model with ``N`` iterations of encoder-side latent
refinement (:mod:`leechcodec.refine`); its results go to ``MODEL+refineN.json``.

The adapter uses only leechcodec's public API, imported lazily:

- ``leechcodec.zoo.list_models()`` -> entries with ``.name``, ``.quality``, ``.quantizer``
- ``leechcodec.codec.encode_image(rgb (H, W, 3) uint8, model, quality, refine) -> bytes``
- ``leechcodec.codec.decode_image(data: bytes) -> (H, W, 3) uint8``; the ``.lq`` file
  names its model, so decoding needs no model flag.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from leechcodec.bench.codecs import Codec, Param


def _zoo_entries() -> list[Any]:
    try:
        zoo = importlib.import_module("leechcodec.zoo")
    except ImportError:
        return []
    return list(zoo.list_models())


def learned_model_names() -> list[str]:
    """Zoo model names, in zoo order, without duplicates; empty before the zoo exists."""
    names: list[str] = []
    for entry in _zoo_entries():
        if entry.name not in names:
            names.append(entry.name)
    return names


REFINE_SEP = "+refine"


def split_learned_name(name: str) -> tuple[str, int]:
    """Split ``MODEL+refineN`` into ``(MODEL, N)``; a plain model name gives ``(name, 0)``."""
    base, sep, count = name.partition(REFINE_SEP)
    if not sep:
        return name, 0
    if not count.isdigit() or int(count) < 1:
        raise KeyError(f"bad refinement suffix in {name!r}: expected MODEL{REFINE_SEP}N with N >= 1")
    return base, int(count)


class LearnedCodec(Codec):
    """One zoo model (all its qualities) through ``leechcodec.codec``, optionally with
    ``refine`` iterations of encoder-side latent refinement."""

    suffix = ".lq"

    def __init__(self, model: str, refine: int = 0) -> None:
        entries = [e for e in _zoo_entries() if e.name == model]
        if not entries:
            raise KeyError(f"no zoo model named {model!r}")
        self.model = model
        self.refine = int(refine)
        self.name = f"{model}{REFINE_SEP}{self.refine}" if self.refine else model
        self.quantizer = str(entries[0].quantizer)
        extra = f", {self.refine} refinement steps" if self.refine else ""
        self.label = f"leechcodec {model} ({self.quantizer}{extra})"
        self.default_params = tuple(sorted(int(e.quality) for e in entries))
        self.weights = {int(e.quality): str(getattr(e, "sha256", "unknown")) for e in entries}

    def encode(self, rgb: np.ndarray, param: Param, path: Path) -> None:
        from leechcodec.codec import encode_image

        Path(path).write_bytes(encode_image(rgb, self.model, int(param), refine=self.refine))

    def decode(self, path: Path, height: int, width: int) -> np.ndarray:
        from leechcodec.codec import decode_image

        return np.asarray(decode_image(Path(path).read_bytes()), dtype=np.uint8)

    def settings(self) -> dict[str, Any]:
        return {"model": self.model, "quantizer": self.quantizer, "param": "zoo quality", "refine": self.refine,
                "file": ".lq (whole file counted)",
                "weights_sha256": {str(q): h for q, h in sorted(self.weights.items())}}

    def versions(self) -> dict[str, str]:
        import leechcodec

        out = {"leechcodec": getattr(leechcodec, "__version__", "unknown")}
        try:
            import torch

            out["torch"] = torch.__version__
        except ImportError:
            pass
        return out
