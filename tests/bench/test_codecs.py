from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leechcodec.bench.codecs import CLASSIC_CODECS, CLASSIC_SWEEP, available_codecs, get_codec
from leechcodec.bench.metrics import psnr_rgb
from tests.tolerances import RATE_TARGET_REL

PILLOW_AND_JXL = ["jpeg420", "jpeg444", "webp", "jpeg2000", "avif", "jxl",
                  "jpeg420-pildefault", "webp-pildefault"]
MAGIC = {
    "jpeg420": b"\xff\xd8\xff", "jpeg444": b"\xff\xd8\xff", "jpeg420-pildefault": b"\xff\xd8\xff",
    "webp": b"RIFF", "webp-pildefault": b"RIFF", "jpeg2000": b"\xff\x4f\xff\x51",
}


def roundtrip(name: str, rgb: np.ndarray, param, tmp_path: Path) -> tuple[int, np.ndarray, bytes]:
    codec = get_codec(name)
    path = tmp_path / f"{name}-{param}{codec.suffix}"
    codec.encode(rgb, param, path)
    decoded = codec.decode(path, *rgb.shape[:2])
    return path.stat().st_size, decoded, path.read_bytes()


@pytest.mark.parametrize("name", PILLOW_AND_JXL)
def test_roundtrip_and_rate_order(name: str, small_rgb: np.ndarray, tmp_path: Path) -> None:
    codec = get_codec(name)
    params = codec.params()
    assert len(params) >= 6
    lo, hi = params[0], params[-1]
    size_lo, dec_lo, data = roundtrip(name, small_rgb, lo, tmp_path)
    size_hi, dec_hi, _ = roundtrip(name, small_rgb, hi, tmp_path)
    for dec in (dec_lo, dec_hi):
        assert dec.shape == small_rgb.shape and dec.dtype == np.uint8
    assert 0 < size_lo < size_hi
    assert psnr_rgb(small_rgb, dec_lo) < psnr_rgb(small_rgb, dec_hi)
    assert psnr_rgb(small_rgb, dec_hi) > 30.0
    if name in MAGIC:
        assert data.startswith(MAGIC[name])


def test_jpeg_subsampling_is_what_the_name_says(small_rgb: np.ndarray, tmp_path: Path) -> None:
    from PIL import Image, JpegImagePlugin

    for name, expected in (("jpeg420", 2), ("jpeg444", 0), ("jpeg420-pildefault", 2)):
        path = tmp_path / f"{name}.jpg"
        get_codec(name).encode(small_rgb, 50, path)
        with Image.open(path) as im:
            assert JpegImagePlugin.get_sampling(im) == expected


def test_avif_and_jxl_files_are_real_containers(small_rgb: np.ndarray, tmp_path: Path) -> None:
    _, _, avif = roundtrip("avif", small_rgb, 50, tmp_path)
    assert avif[4:8] == b"ftyp" and b"avif" in avif[8:32]
    _, _, jxl = roundtrip("jxl", small_rgb, 2.0, tmp_path)
    assert jxl.startswith(b"\xff\x0a") or jxl.startswith(b"\x00\x00\x00\x0cJXL ")


def test_jpeg2000_hits_its_target_rate(tmp_path: Path) -> None:
    from tests.bench.conftest import smooth_image

    rgb = smooth_image(128, 128, seed=11)
    for target in (0.5, 1.0):
        size, _, _ = roundtrip("jpeg2000", rgb, target, tmp_path)
        assert 8 * size / rgb.shape[0] / rgb.shape[1] == pytest.approx(target, rel=RATE_TARGET_REL)


def test_registry() -> None:
    assert set(CLASSIC_SWEEP) <= set(CLASSIC_CODECS)
    names = available_codecs()
    for name in ("jpeg420", "jpeg444", "webp", "jpeg2000", "avif", "jxl", "hevc444", "hevc420",
                 "vvc"):
        assert name in names
        codec = get_codec(name)
        assert codec.name == name and codec.label and codec.settings() is not None
    with pytest.raises(KeyError, match="unknown codec"):
        get_codec("nope")
