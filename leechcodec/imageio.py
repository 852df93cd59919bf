"""Image files in and out of the codec: ``(H, W, 3) uint8`` RGB arrays (Pillow + numpy).

Input policy (:func:`load_image`, :func:`to_rgb8`)
-----------------------------------------------
The codec codes 8-bit RGB. Every input is brought to that, as follows:

- ``RGB``: as stored.
- ``L``, ``1``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX``: Pillow's own
  conversion to RGB (grey replicated, palette looked up, CMYK/LAB/HSV by Pillow's
  formulas). ICC profiles are ignored: pixel values are taken as stored, no color
  management.
- Alpha (``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La``, palette or RGB with a transparency
  key): alpha is **dropped** with a logged warning; the color under it is kept as stored
  (it is not composited on any background).
- 16-bit greyscale (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and 32-bit integer ``I``:
  treated as 16-bit values, clipped to 0..65535 and scaled by ``round(v / 257)``.
- 16-bit RGB/RGBA PNG: Pillow itself reduces these to 8 bits while decoding by keeping
  the high byte (``v >> 8``, not rounding); the low byte is not available. A warning is
  logged.
- ``F`` (32-bit float): taken on the 0..255 scale like Pillow's ``convert("L")``:
  NaN -> 0, clipped to 0..255, rounded half to even.
- EXIF orientation **is applied** (the array is what a viewer shows), because the
  ``.lq`` file keeps no metadata to rotate the output later.
- Multi-frame files (GIF, APNG, TIFF pages): the first frame only, with a warning.

Refused with :class:`ImageReadError` (a ``ValueError``, one-line message): missing path,
directory, empty file, unreadable or unrecognized data, truncated image data, a side
above 65,535 pixels or more than ``MAX_PIXELS`` pixels (checked from the header before
any pixel is decoded), and modes Pillow cannot convert.

Output (:func:`save_image`): always PNG, written atomically.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from leechcodec.fileio import atomic_write_bytes

__all__ = ["ImageReadError", "MAX_SIDE", "MAX_PIXELS", "load_image", "to_rgb8", "save_image", "atomic_write_bytes"]

log = logging.getLogger(__name__)

MAX_SIDE = 65535
MAX_PIXELS = 1 << 26  # 67,108,864 pixels: below Pillow's own decompression-bomb warning

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}


class ImageReadError(ValueError):
    """An input image cannot be read as an RGB picture."""


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``(H, W, 3) uint8`` RGB, following the module's policy."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_size(path, im.size)
                if getattr(im, "n_frames", 1) > 1:
                    log.warning("%s: has %d frames; using the first", path, im.n_frames)
                _warn_if_16bit_color(path, im)
                im.load()
                return to_rgb8(_apply_orientation(path, im), name=str(path))
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{path}: refused as a decompression bomb ({exc})") from None
    except PermissionError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path}: corrupt or truncated image ({exc})") from None


def _check_size(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageReadError(f"{path}: image has no pixels ({width}x{height})")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageReadError(
            f"{path}: {width}x{height} is too large (at most {MAX_SIDE} per side and {MAX_PIXELS} pixels)"
        )


def _warn_if_16bit_color(path: Path, im: Image.Image) -> None:
    rawmodes = [tile.args for tile in getattr(im, "tile", [])]
    if im.mode in ("RGB", "RGBA") and any(isinstance(r, str) and ";16" in r for r in rawmodes):
        log.warning("%s: 16-bit color reduced to 8 bits by Pillow (high byte kept)", path)


def _apply_orientation(path: Path, im: Image.Image) -> Image.Image:
    try:
        rotated = ImageOps.exif_transpose(im)
    except Exception as exc:  # a broken EXIF block must not make the pixels unreadable
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", path, exc)
        return im
    return im if rotated is None else rotated


def to_rgb8(im: Image.Image, name: str = "image") -> np.ndarray:
    """Convert a Pillow image to ``(H, W, 3) uint8`` RGB by the module's mode policy."""
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(im).astype(np.int64)
        grey = ((np.clip(values, 0, 65535) + 128) // 257).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0)
        grey = np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in _ALPHA_MODES or "transparency" in im.info:
        log.warning("%s: mode %s has transparency; alpha dropped, color kept as stored", name, mode)
        rgba = (im.convert("LA") if mode == "La" else im).convert("RGBA")
        return np.asarray(rgba, dtype=np.uint8)[:, :, :3].copy()
    try:
        rgb = im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageReadError(f"{name}: cannot convert mode {mode} to RGB ({exc})") from None
    return np.asarray(rgb, dtype=np.uint8).copy()


def save_image(path: str | os.PathLike[str], array: np.ndarray, overwrite: bool = True, grey: bool = False) -> None:
    """Write ``(H, W, 3) uint8`` RGB to ``path`` as PNG, atomically (``overwrite=False``:
    ``FileExistsError`` if ``path`` exists when the file is published; ``grey``: a
    one-channel PNG of the first channel)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: save_image writes PNG; use a .png file name")
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ValueError(f"expected a non-empty (H, W, 3) uint8 array, got {array.dtype} {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array[:, :, 0] if grey else array)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)
