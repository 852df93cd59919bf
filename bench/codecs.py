"""Codecs behind one interface, and the registry of names used on the command line.

A :class:`Codec` turns an ``(H, W, 3) uint8`` RGB image and one rate parameter into a
real file, and that file back into an ``(H, W, 3) uint8`` image. The harness counts the
file's size on disk (``bpp = 8 · bytes / (H·W)``); nothing is estimated.

Classic codecs defined here (Pillow and imagecodecs):

==================== ======================================================================
name                 what runs
==================== ======================================================================
jpeg420, jpeg444     libjpeg-turbo via Pillow, ``optimize=True``, chroma 4:2:0 / 4:4:4
webp                 libwebp via Pillow, ``method=6``
jpeg2000             OpenJPEG via Pillow, ``irreversible=True, mct=1``, rate-targeted (.j2k)
avif                 libavif via Pillow, 4:4:4, speed 6 (Pillow's default speed)
jxl                  libjxl via imagecodecs, distance-targeted, effort 7 (libjxl's default)
jpeg420-pildefault   Pillow's JPEG defaults (4:2:0, no optimize): the CompressAI anchor setup
webp-pildefault      Pillow's WebP defaults (method 4): the CompressAI anchor setup
==================== ======================================================================

HEVC and VVC intra live in :mod:`leechcodec.bench.video`; learned models in
:mod:`leechcodec.bench.learned`. :func:`get_codec` resolves any of these names.
"""

from __future__ import annotations

import abc
import functools
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

Param = int | float
"""One rate parameter: a quality, a quantizer step, a target bpp or a distance."""


class Codec(abc.ABC):
    """An image codec the harness can sweep.

    Subclasses set the class attributes and implement :meth:`encode` / :meth:`decode`.
    Instances must be cheap to build: worker processes rebuild them by name.
    """

    name: str = ""
    """Command-line name, also the result file's stem."""
    label: str = ""
    """Honest human-readable name for plots and tables."""
    suffix: str = ".bin"
    """File extension of the encoded files."""
    param_name: str = "quality"
    """What the rate parameter means (``quality``, ``qp``, ``distance``, ``target_bpp``)."""
    default_params: tuple[Param, ...] = ()
    """The parameters of the default sweep, low rate to high rate."""

    @abc.abstractmethod
    def encode(self, rgb: np.ndarray, param: Param, path: Path) -> None:
        """Encode ``rgb`` ``(H, W, 3) uint8`` at ``param`` and write the file ``path``."""

    @abc.abstractmethod
    def decode(self, path: Path, height: int, width: int) -> np.ndarray:
        """Decode the file ``path`` to ``(H, W, 3) uint8``.

        ``height`` and ``width`` are the original image's: self-describing formats ignore
        them (the harness checks the decoded shape); raw video streams use them only to
        crop the padding of odd-sized 4:2:0 images, which BPG keeps in its own header.
        """

    def settings(self) -> dict[str, Any]:
        """Fixed encoder settings, recorded in the result file's provenance."""
        return {}

    def versions(self) -> dict[str, str]:
        """Versions of the libraries that do the work, recorded in provenance."""
        return {}

    def params(self) -> Sequence[Param]:
        """The parameters of this codec's sweep (the default points)."""
        return self.default_params


@functools.lru_cache(maxsize=None)
def pillow_versions() -> dict[str, str]:
    """Pillow and the versions of the image libraries it was built with."""
    import PIL
    from PIL import features

    out = {"pillow": PIL.__version__}
    for feature, key in (("jpg", "libjpeg"), ("webp", "libwebp"), ("jpg_2000", "openjpeg"),
                         ("avif", "libavif")):
        version = features.version(feature)
        if version:
            out[key] = str(version)
    if features.check_feature("libjpeg_turbo"):
        out["libjpeg"] = f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}"
    return out


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class PillowCodec(Codec):
    """A codec that Pillow writes and reads; ``save_options(param)`` gives save() keywords."""

    pil_format: str = ""

    def save_options(self, param: Param) -> dict[str, Any]:
        raise NotImplementedError

    def encode(self, rgb: np.ndarray, param: Param, path: Path) -> None:
        from PIL import Image

        Image.fromarray(rgb, "RGB").save(path, self.pil_format, **self.save_options(param))

    def decode(self, path: Path, height: int, width: int) -> np.ndarray:
        return _read_rgb(path)

    def versions(self) -> dict[str, str]:
        return pillow_versions()


class JpegCodec(PillowCodec):
    """JPEG with libjpeg-turbo through Pillow, Huffman tables optimized per image."""

    pil_format = "JPEG"
    suffix = ".jpg"
    default_params = (10, 20, 30, 45, 60, 75, 85, 92)

    def __init__(self, subsampling: str) -> None:
        self.subsampling = subsampling
        self.name = "jpeg420" if subsampling == "4:2:0" else "jpeg444"
        self.label = f"JPEG {subsampling} (libjpeg-turbo, optimize)"

    def save_options(self, param: Param) -> dict[str, Any]:
        return {"quality": int(param), "subsampling": self.subsampling, "optimize": True}

    def settings(self) -> dict[str, Any]:
        return {"subsampling": self.subsampling, "optimize": True, "param": "Pillow quality"}


class JpegPillowDefault(PillowCodec):
    """JPEG with Pillow's default settings (quality only), as CompressAI's anchor was made."""

    name = "jpeg420-pildefault"
    label = "JPEG 4:2:0 (Pillow defaults)"
    pil_format = "JPEG"
    suffix = ".jpg"
    default_params = tuple(range(5, 100, 5))

    def save_options(self, param: Param) -> dict[str, Any]:
        return {"quality": int(param)}

    def settings(self) -> dict[str, Any]:
        return {"options": "Pillow defaults (4:2:0, optimize=False)", "param": "Pillow quality"}


class WebpCodec(PillowCodec):
    """Lossy WebP through Pillow; ``method=6`` (slowest, best) unless ``pil_default``."""

    pil_format = "WEBP"
    suffix = ".webp"

    def __init__(self, pil_default: bool = False) -> None:
        self.pil_default = pil_default
        if pil_default:
            self.name, self.label = "webp-pildefault", "WebP (Pillow defaults)"
            self.default_params = tuple(range(5, 100, 5))
        else:
            self.name, self.label = "webp", "WebP (libwebp, method 6)"
            self.default_params = (5, 15, 30, 45, 60, 75, 85, 95)

    def save_options(self, param: Param) -> dict[str, Any]:
        options: dict[str, Any] = {"quality": int(param)}
        if not self.pil_default:
            options["method"] = 6
        return options

    def settings(self) -> dict[str, Any]:
        method = "Pillow default (4)" if self.pil_default else 6
        return {"method": method, "lossless": False, "param": "Pillow quality"}


class Jpeg2000Codec(PillowCodec):
    """JPEG 2000 (OpenJPEG via Pillow): 9/7 wavelet, colour transform, one rate-targeted
    quality layer; the parameter is the target bpp (ratio = 24 / target), raw .j2k
    codestream."""

    name = "jpeg2000"
    label = "JPEG 2000 (OpenJPEG, 9/7, rate-targeted)"
    pil_format = "JPEG2000"
    suffix = ".j2k"
    param_name = "target_bpp"
    default_params = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)

    def save_options(self, param: Param) -> dict[str, Any]:
        return {"irreversible": True, "mct": 1, "quality_mode": "rates",
                "quality_layers": [24.0 / float(param)], "no_jp2": True}

    def settings(self) -> dict[str, Any]:
        return {"irreversible": True, "mct": 1, "quality_mode": "rates",
                "quality_layers": "[24 / target_bpp]", "container": "raw codestream (.j2k)",
                "param": "target bpp"}


class AvifCodec(PillowCodec):
    """AVIF (AV1 intra in HEIF) through Pillow's libavif plugin, YCbCr 4:4:4."""

    name = "avif"
    label = "AVIF 4:4:4 (libavif/aom, speed 6)"
    pil_format = "AVIF"
    suffix = ".avif"
    default_params = (15, 25, 35, 45, 55, 65, 75, 85)
    speed = 6

    def save_options(self, param: Param) -> dict[str, Any]:
        return {"quality": int(param), "speed": self.speed, "subsampling": "4:4:4",
                "max_threads": 1}

    def settings(self) -> dict[str, Any]:
        return {"subsampling": "4:4:4", "speed": self.speed, "max_threads": 1,
                "codec": "Pillow's choice (auto)", "param": "Pillow quality (0-100)"}

    def versions(self) -> dict[str, str]:
        from PIL import _avif

        return pillow_versions() | {"avif_codecs": str(_avif.codec_versions())}


class JxlCodec(Codec):
    """JPEG XL (libjxl via imagecodecs); the parameter is the Butteraugli distance."""

    name = "jxl"
    label = "JPEG XL (libjxl, effort 7)"
    suffix = ".jxl"
    param_name = "distance"
    default_params = (15.0, 10.0, 6.0, 4.0, 2.8, 2.0, 1.4, 1.0)
    effort = 7

    def encode(self, rgb: np.ndarray, param: Param, path: Path) -> None:
        import imagecodecs

        data = imagecodecs.jpegxl_encode(np.ascontiguousarray(rgb), distance=float(param),
                                         effort=self.effort, numthreads=1)
        Path(path).write_bytes(data)

    def decode(self, path: Path, height: int, width: int) -> np.ndarray:
        import imagecodecs

        rgb = imagecodecs.jpegxl_decode(Path(path).read_bytes(), numthreads=1)
        return np.asarray(rgb, dtype=np.uint8)[..., :3]

    def settings(self) -> dict[str, Any]:
        return {"effort": self.effort, "numthreads": 1, "param": "Butteraugli distance"}

    def versions(self) -> dict[str, str]:
        import imagecodecs

        return {"imagecodecs": imagecodecs.__version__, "libjxl": imagecodecs.jpegxl_version()}


def _video_codec(name: str) -> Callable[[], Codec]:
    def build() -> Codec:
        from leechcodec.bench.video import VIDEO_CODECS

        return VIDEO_CODECS[name]()

    return build


CLASSIC_CODECS: dict[str, Callable[[], Codec]] = {
    "jpeg420": lambda: JpegCodec("4:2:0"),
    "jpeg444": lambda: JpegCodec("4:4:4"),
    "webp": lambda: WebpCodec(),
    "jpeg2000": Jpeg2000Codec,
    "avif": AvifCodec,
    "jxl": JxlCodec,
    "hevc444": _video_codec("hevc444"),
    "hevc420": _video_codec("hevc420"),
    "vvc": _video_codec("vvc"),
    "jpeg420-pildefault": JpegPillowDefault,
    "webp-pildefault": lambda: WebpCodec(pil_default=True),
}
"""Every classic codec by command-line name."""

CLASSIC_SWEEP = ("jpeg420", "jpeg444", "webp", "jpeg2000", "avif", "jxl", "hevc444", "hevc420")
"""The default ``--codecs`` set: the classic sweep (VVC is slow and runs separately)."""


@functools.lru_cache(maxsize=None)
def get_codec(name: str) -> Codec:
    """The codec called ``name``: a classic codec or a leechcodec zoo model.

    Raises ``KeyError`` with the known names when ``name`` is neither.
    """
    if name in CLASSIC_CODECS:
        return CLASSIC_CODECS[name]()
    from leechcodec.bench.learned import LearnedCodec, learned_model_names, split_learned_name

    model, refine = split_learned_name(name)
    if model in learned_model_names():
        return LearnedCodec(model, refine)
    known = ", ".join(available_codecs())
    raise KeyError(f"unknown codec {name!r}; known: {known}")


def available_codecs() -> list[str]:
    """Names of all codecs that can run here: classic ones, then zoo models (if any)."""
    from leechcodec.bench.learned import learned_model_names

    return list(CLASSIC_CODECS) + learned_model_names()
