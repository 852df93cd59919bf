"""Image input policy for every Pillow mode, refusal of bad files, atomic output."""

from __future__ import annotations

import errno
import io
import logging
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from leechcodec import fileio
from leechcodec.imageio import ImageReadError, atomic_write_bytes, load_image, save_image, to_rgb8


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw_rows: bytes) -> bytes:
    """A minimal PNG written by hand (for 16-bit color and absurd sizes Pillow won't write)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw_rows)) + chunk(b"IEND", b"")


def save(tmp_path: Path, im: Image.Image, name: str, **kwargs) -> Path:
    path = tmp_path / name
    im.save(path, **kwargs)
    return path


RGB_PIXELS = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], dtype=np.uint8)


def test_rgb_as_is(tmp_path):
    path = save(tmp_path, Image.fromarray(RGB_PIXELS), "rgb.png")
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert np.array_equal(out, RGB_PIXELS)


def test_one_by_one(tmp_path):
    path = save(tmp_path, Image.new("RGB", (1, 1), (7, 8, 9)), "one.png")
    assert load_image(path).tolist() == [[[7, 8, 9]]]


@pytest.mark.parametrize("mode, value, expected", [("L", 77, 77), ("1", 1, 255), ("1", 0, 0)])
def test_grey_modes_replicate(tmp_path, mode, value, expected):
    path = save(tmp_path, Image.new(mode, (3, 1), value), f"{mode}.png")
    assert load_image(path).tolist() == [[[expected] * 3] * 3]


def test_palette(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    im.putpixel((1, 0), 1)
    assert load_image(save(tmp_path, im, "p.png")).tolist() == [[[0, 0, 0], [200, 100, 50]]]


@pytest.mark.parametrize(
    "mode, fill, fmt, expected",
    [
        ("RGBA", (10, 20, 30, 0), "png", [10, 20, 30]),
        ("LA", (90, 128), "png", [90, 90, 90]),
        ("PA", None, "tiff", [200, 100, 50]),
    ],
)
def test_alpha_is_dropped_with_warning(tmp_path, caplog, mode, fill, fmt, expected):
    if mode == "PA":
        im = Image.new("PA", (1, 1))
        im.putpalette([200, 100, 50] + [0] * 765)
        im.putpixel((0, 0), (0, 17))
    else:
        im = Image.new(mode, (1, 1), fill)
    with caplog.at_level(logging.WARNING, logger="leechcodec.imageio"):
        out = load_image(save(tmp_path, im, f"alpha.{fmt}"))
    assert out.tolist() == [[expected]]
    assert "alpha dropped" in caplog.text


def test_palette_with_transparency_key(tmp_path, caplog):
    im = Image.new("P", (1, 1))
    im.putpalette([1, 2, 3] + [0] * 765)
    with caplog.at_level(logging.WARNING, logger="leechcodec.imageio"):
        out = load_image(save(tmp_path, im, "ptrns.png", transparency=0))
    assert out.tolist() == [[[1, 2, 3]]]
    assert "alpha dropped" in caplog.text


def test_16bit_grey_png_rounds_value_over_257(tmp_path):
    values = np.array([[0, 128, 129, 385, 386, 32767, 65535]], dtype=np.uint16)
    path = save(tmp_path, Image.fromarray(values), "g16.png")
    assert Image.open(path).mode.startswith("I;16")
    out = load_image(path)
    assert out[0, :, 0].tolist() == [0, 0, 1, 1, 2, 127, 255]
    assert np.array_equal(out[..., 0], out[..., 2])


def test_16bit_rgb_png_keeps_high_byte_with_warning(tmp_path, caplog):
    samples = np.array([[[0x1234, 0xFF80, 0x00FF]]], dtype=">u2")
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(1, 1, 16, 2, b"\x00" + samples.tobytes()))
    with caplog.at_level(logging.WARNING, logger="leechcodec.imageio"):
        assert load_image(path).tolist() == [[[0x12, 0xFF, 0x00]]]
    assert "16-bit color" in caplog.text


def test_cmyk_jpeg(tmp_path):
    path = save(tmp_path, Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.shape == (4, 4, 3)
    assert out.min() >= 250  # no ink = white


def test_ycbcr_tiff(tmp_path):
    path = save(tmp_path, Image.new("YCbCr", (2, 2), (128, 128, 128)), "ycc.tiff")
    assert Image.open(path).mode == "YCbCr"
    out = load_image(path)
    assert out.shape == (2, 2, 3)
    assert np.all(np.abs(out.astype(int) - 128) <= 1)


def test_int32_and_float_tiffs(tmp_path):
    i_path = save(tmp_path, Image.fromarray(np.array([[0, 257, 70000, -5]], dtype=np.int32)), "i.tiff")
    assert Image.open(i_path).mode == "I"
    assert load_image(i_path)[0, :, 0].tolist() == [0, 1, 255, 0]
    f = np.array([[-3.0, 0.5, 1.5, 254.6, 300.0, np.nan]], dtype=np.float32)
    f_path = save(tmp_path, Image.fromarray(f), "f.tiff")
    assert Image.open(f_path).mode == "F"
    assert load_image(f_path)[0, :, 1].tolist() == [0, 0, 2, 255, 255, 0]


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "La", "CMYK",
                                  "YCbCr", "LAB", "HSV", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"])
def test_every_mode_converts_in_memory(mode):
    out = to_rgb8(Image.new(mode, (2, 1)))
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    assert out.flags.writeable


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8))  # 3 wide, 1 high
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = save(tmp_path, im, "rot.png", exif=exif)
    assert load_image(path).tolist() == [[[255, 0, 0]], [[0, 255, 0]], [[0, 0, 255]]]


def test_missing_path(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_directory(tmp_path):
    with pytest.raises(ImageReadError, match="is a directory"):
        load_image(tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        load_image(path)


def test_non_image_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, not an image\n")
    with pytest.raises(ImageReadError, match="not an image file"):
        load_image(path)


def test_truncated_image(tmp_path):
    good = save(tmp_path, Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)), "g.png")
    bad = tmp_path / "truncated.png"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="corrupt or truncated"):
        load_image(bad)


@pytest.mark.parametrize("width, height", [(70000, 1), (9000, 9000)])
def test_absurd_dimensions_refused_before_decoding(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(width, height, 1, 0, b""))  # header only: no pixel data at all
    with pytest.raises(ImageReadError, match="too large|decompression bomb"):
        load_image(path)


def test_error_messages_are_one_line(tmp_path):
    for path in (tmp_path / "missing", tmp_path):
        with pytest.raises(ImageReadError) as info:
            load_image(path)
        assert "\n" not in str(info.value)
    assert issubclass(ImageReadError, ValueError)


def test_save_round_trip(tmp_path):
    path = tmp_path / "out.png"
    save_image(path, RGB_PIXELS)
    assert np.array_equal(load_image(path), RGB_PIXELS)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert Image.open(path).format == "PNG"


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="PNG"):
        save_image(tmp_path / "out.jpg", RGB_PIXELS)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        save_image(tmp_path / "out.png", RGB_PIXELS.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        save_image(tmp_path / "out.png", RGB_PIXELS[..., 0])


@pytest.mark.parametrize("failing", ["fsync", "replace", "write"])
def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch, failing):
    target = tmp_path / "out.lq"
    target.write_bytes(b"old contents")

    def boom(*args, **kwargs):
        raise OSError("simulated failure")

    if failing == "write":
        monkeypatch.setattr(fileio.os, "fdopen", lambda fd, mode: _FailingFile(fd))
    else:
        monkeypatch.setattr(fileio.os, failing, boom)
    with pytest.raises(OSError, match="simulated failure"):
        atomic_write_bytes(target, b"new contents")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.lq"]
    assert target.read_bytes() == b"old contents"


class _FailingFile(io.FileIO):
    def __init__(self, fd: int) -> None:
        super().__init__(fd, "wb")

    def write(self, data):
        super().write(data[: len(data) // 2])
        raise OSError("simulated failure")


def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "new.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    atomic_write_bytes(str(target), b"defg")
    assert target.read_bytes() == b"defg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_imageio_does_not_import_torch():
    code = "import sys, leechcodec.imageio, leechcodec.bitstream.ans, leechcodec.bitstream.container; " \
           "assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_atomic_write_without_overwrite_refuses_a_file_that_appears_meanwhile(tmp_path, monkeypatch):
    """The existence check happens when the file is published (os.link), not earlier: a file
    created by someone else after the write started is neither replaced nor lost."""
    target = tmp_path / "out.lq"
    atomic_write_bytes(target, b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first"
    real_link = fileio.os.link

    def racing_link(src, dst):
        Path(dst).write_bytes(b"the other writer")
        return real_link(src, dst)

    other = tmp_path / "raced.lq"
    monkeypatch.setattr(fileio.os, "link", racing_link)
    with pytest.raises(FileExistsError, match="raced.lq"):
        atomic_write_bytes(other, b"ours", overwrite=False)
    assert other.read_bytes() == b"the other writer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.lq", "raced.lq"]


def test_atomic_write_without_hard_links_still_refuses_existing(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "operation not permitted", str(dst))

    monkeypatch.setattr(fileio.os, "link", no_links)
    target = tmp_path / "out.lq"
    atomic_write_bytes(target, b"new", overwrite=False)
    assert target.read_bytes() == b"new"
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"again", overwrite=False)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.lq"]


def test_atomic_write_errors_name_the_users_path(tmp_path, monkeypatch):
    real_open = fileio.os.open

    def denied(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(fileio.os, "open", denied)
    with pytest.raises(PermissionError) as info:
        atomic_write_bytes(tmp_path / "mine.png", b"x")
    assert info.value.filename == str(tmp_path / "mine.png")
