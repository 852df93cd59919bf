"""HEVC and VVC intra coding of still images through ffmpeg (imageio-ffmpeg's binary).

BPG is HEVC intra (x265) in its own small container, and its encoder is not installable
here. ``hevc444`` / ``hevc420`` are its stand-in: the same encoder with BPG's settings,
written as a raw HEVC elementary stream (``.hevc``, Annex B). Settings taken from
libbpg's ``x265_glue.c``: ``tune=ssim`` (so psy-rd and psy-rdoq are off), constant QP,
every frame intra (``keyint=1``), no info SEI, no picture hash. Like BPG's default colour
mode, RGB is converted to full-range BT.601 YCbCr (the JPEG matrix) in numpy before
encoding, and back after decoding; ffmpeg never converts colours here. We use x265's
``placebo`` preset; BPG's default compression level 8 is ``veryslow`` (level 9 is
``placebo``). The bitstream holds VPS/SPS/PPS headers that BPG would repackage, a
difference of tens of bytes per image.

``vvc`` is VVC intra with Fraunhofer's vvenc (ffmpeg's libvvenc), the upper classic
anchor. libvvenc takes only ``yuv420p10le``: RGB goes to 10-bit full-range BT.601
YCbCr 4:2:0 in numpy; perceptual QP adaptation is off (``-qpa 0``), constant QP. It is
not VTM: vvenc is a faster encoder of the same standard, and 4:2:0 only.

4:2:0: chroma planes are the 2×2 means of the full-resolution chroma (odd sizes padded
by edge replication), upsampled back with bilinear interpolation at the same siting.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from leechcodec.bench.codecs import Codec, Param

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB to ``(3, H, W) float64`` full-range BT.601 Y, Cb, Cr in [0, 255]."""
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) / (2.0 * (1.0 - _KB)) + 128.0
    cr = (r - y) / (2.0 * (1.0 - _KR)) + 128.0
    return np.stack([y, cb, cr])


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float Y, Cb, Cr in [0, 255] to ``(H, W, 3) uint8`` RGB (rounded, clipped)."""
    y, cb, cr = ycc[0], ycc[1] - 128.0, ycc[2] - 128.0
    r = y + 2.0 * (1.0 - _KR) * cr
    b = y + 2.0 * (1.0 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def downsample_chroma(plane: np.ndarray) -> np.ndarray:
    """``(H, W)`` float plane to ``(ceil(H/2), ceil(W/2))`` by 2×2 means (edge-padded)."""
    h, w = plane.shape
    p = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def _upsample_axis(x: np.ndarray, axis: int) -> np.ndarray:
    x = np.moveaxis(x, axis, 0)
    prev = np.concatenate([x[:1], x[:-1]])
    nxt = np.concatenate([x[1:], x[-1:]])
    out = np.empty((2 * x.shape[0],) + x.shape[1:], dtype=np.float64)
    out[0::2] = 0.75 * x + 0.25 * prev
    out[1::2] = 0.75 * x + 0.25 * nxt
    return np.moveaxis(out, 0, axis)


def upsample_chroma(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse siting of :func:`downsample_chroma`: bilinear 2× upsampling, cropped to
    ``(height, width)``."""
    up = _upsample_axis(_upsample_axis(plane.astype(np.float64), 0), 1)
    return up[:height, :width]


@functools.lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(cmd: list[str], stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): " + " | ".join(err))
    return proc.stdout


@functools.lru_cache(maxsize=None)
def ffmpeg_versions() -> dict[str, str]:
    """ffmpeg's version line and the x265 / vvenc versions it reports."""
    exe = ffmpeg_exe()
    out = {"ffmpeg": _run([exe, "-version"]).decode().splitlines()[0]}
    probe = bytes(16 * 16 * 3)  # one 16x16 frame of yuv444p, or of yuv420p10le
    for lib, extra, pattern in (
        ("x265", ["-c:v", "libx265", "-x265-params", "log-level=info"],
         r"HEVC encoder version (\S+)"),
        ("vvenc", ["-c:v", "libvvenc"], r"libvvenc version: (\S+)"),
    ):
        pix = "yuv444p" if lib == "x265" else "yuv420p10le"
        cmd = [exe, "-hide_banner", "-loglevel", "info", "-f", "rawvideo", "-pix_fmt", pix,
               "-s", "16x16", "-i", "pipe:0", *extra, "-f", "null", "-"]
        proc = subprocess.run(cmd, input=probe, capture_output=True, check=False)
        match = re.search(pattern, proc.stderr.decode(errors="replace"))
        out[lib] = match.group(1) if match else "unknown"
    return out


class FfmpegIntraCodec(Codec):
    """A still image coded as one intra frame of a video codec through ffmpeg."""

    pix_fmt: str = "yuv444p"
    bit_depth: int = 8
    chroma: str = "4:4:4"
    param_name = "qp"

    def encoder_args(self, param: Param) -> list[str]:
        raise NotImplementedError

    def container(self) -> str:
        raise NotImplementedError

    def _planes(self, rgb: np.ndarray) -> bytes:
        h, w = rgb.shape[:2]
        ycc = rgb_to_ycbcr(rgb)
        scale = float(1 << (self.bit_depth - 8))
        maxval = (1 << self.bit_depth) - 1
        dtype = np.uint8 if self.bit_depth == 8 else np.dtype("<u2")
        if self.chroma == "4:2:0":
            ph, pw = h + h % 2, w + w % 2
            y = np.pad(ycc[0], ((0, ph - h), (0, pw - w)), mode="edge")
            planes = [y, downsample_chroma(ycc[1]), downsample_chroma(ycc[2])]
        else:
            planes = [ycc[0], ycc[1], ycc[2]]
        return b"".join(np.clip(np.rint(p * scale), 0, maxval).astype(dtype).tobytes()
                        for p in planes)

    def _coded_size(self, h: int, w: int) -> tuple[int, int]:
        if self.chroma == "4:2:0":
            return h + h % 2, w + w % 2
        return h, w

    def encode(self, rgb: np.ndarray, param: Param, path: Path) -> None:
        h, w = rgb.shape[:2]
        ch, cw = self._coded_size(h, w)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
               "-f", "rawvideo", "-pix_fmt", self.pix_fmt, "-s", f"{cw}x{ch}", "-r", "1",
               "-i", "pipe:0", "-frames:v", "1", *self.encoder_args(param),
               "-f", self.container(), str(path)]
        _run(cmd, stdin=self._planes(rgb))

    def decode(self, path: Path, height: int, width: int) -> np.ndarray:
        ch, cw = self._coded_size(height, width)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
               "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", self.pix_fmt,
               "pipe:1"]
        raw = _run(cmd)
        dtype = np.uint8 if self.bit_depth == 8 else np.dtype("<u2")
        samples = np.frombuffer(raw, dtype=dtype).astype(np.float64) / (1 << (self.bit_depth - 8))
        if self.chroma == "4:2:0":
            sh, sw = ch // 2, cw // 2
            n_y, n_c = ch * cw, sh * sw
            if samples.size != n_y + 2 * n_c:
                raise RuntimeError(f"decoded {samples.size} samples, expected {n_y + 2 * n_c}")
            y = samples[:n_y].reshape(ch, cw)[:height, :width]
            cb = upsample_chroma(samples[n_y:n_y + n_c].reshape(sh, sw), height, width)
            cr = upsample_chroma(samples[n_y + n_c:].reshape(sh, sw), height, width)
            ycc = np.stack([y, cb, cr])
        else:
            if samples.size != 3 * ch * cw:
                raise RuntimeError(f"decoded {samples.size} samples, expected {3 * ch * cw}")
            ycc = samples.reshape(3, ch, cw)
        return ycbcr_to_rgb(ycc)

    def versions(self) -> dict[str, str]:
        return ffmpeg_versions()


class HevcCodec(FfmpegIntraCodec):
    """HEVC intra with x265 and BPG's settings: the honest stand-in for BPG."""

    suffix = ".hevc"
    preset = "placebo"
    default_params = (46, 43, 40, 37, 34, 31, 28, 25, 22)

    def __init__(self, chroma: str) -> None:
        self.chroma = chroma
        self.pix_fmt = "yuv444p" if chroma == "4:4:4" else "yuv420p"
        self.name = "hevc444" if chroma == "4:4:4" else "hevc420"
        self.label = f"HEVC {chroma} (x265 {self.preset}, BPG settings; BPG stand-in)"

    def x265_params(self, qp: str) -> str:
        return f"qp={qp}:keyint=1:info=0:hash=0:frame-threads=1:pools=1:log-level=error"

    def encoder_args(self, param: Param) -> list[str]:
        return ["-c:v", "libx265", "-preset", self.preset, "-tune", "ssim",
                "-x265-params", self.x265_params(str(int(param)))]

    def container(self) -> str:
        return "hevc"

    def settings(self) -> dict[str, Any]:
        return {"encoder": "libx265 via ffmpeg", "preset": self.preset, "tune": "ssim",
                "x265-params": self.x265_params("QP"), "chroma": self.chroma, "bit_depth": 8,
                "colour": "RGB->YCbCr BT.601 full range in numpy",
                "file": "raw HEVC Annex B stream", "param": "x265 QP",
                "note": "BPG stand-in; BPG adds +1 to its -q before passing QP to x265"}


class VvcCodec(FfmpegIntraCodec):
    """VVC intra with vvenc (4:2:0, 10-bit): the upper classic anchor."""

    name = "vvc"
    label = "VVC 4:2:0 10-bit (vvenc medium, intra)"
    suffix = ".266"
    pix_fmt = "yuv420p10le"
    bit_depth = 10
    chroma = "4:2:0"
    preset = "medium"
    default_params = (47, 43, 39, 35, 31, 27, 23)

    def encoder_args(self, param: Param) -> list[str]:
        return ["-c:v", "libvvenc", "-preset", self.preset, "-qp", str(int(param)), "-qpa", "0",
                "-threads", "1"]

    def container(self) -> str:
        return "vvc"

    def settings(self) -> dict[str, Any]:
        return {"encoder": "libvvenc via ffmpeg", "preset": self.preset, "qpa": 0,
                "threads": 1, "chroma": "4:2:0", "bit_depth": 10,
                "colour": "RGB->YCbCr BT.601 full range (10-bit) in numpy",
                "file": "raw VVC stream", "param": "vvenc QP"}


VIDEO_CODECS = {
    "hevc444": lambda: HevcCodec("4:4:4"),
    "hevc420": lambda: HevcCodec("4:2:0"),
    "vvc": VvcCodec,
}
