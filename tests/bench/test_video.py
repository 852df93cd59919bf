from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leechcodec.bench.codecs import get_codec
from leechcodec.bench.metrics import psnr_rgb
from leechcodec.bench.video import (downsample_chroma, ffmpeg_versions, rgb_to_ycbcr,
                                    upsample_chroma, ycbcr_to_rgb)
from tests.bench.conftest import smooth_image
from tests.tolerances import COLOR_PUBLISHED, COLOR_ROUNDTRIP


def test_colour_conversion_roundtrip() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    ycc = rgb_to_ycbcr(rgb)
    assert np.array_equal(ycbcr_to_rgb(ycc), rgb)
    # Grey maps to (Y, 128, 128); the JPEG (BT.601 full-range) matrix.
    grey = np.full((2, 2, 3), 77, np.uint8)
    assert np.allclose(rgb_to_ycbcr(grey)[:, 0, 0], [77, 128, 128], atol=COLOR_ROUNDTRIP)
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 255
    assert np.allclose(rgb_to_ycbcr(red)[:, 0, 0], [76.245, 84.972, 255.5], atol=COLOR_PUBLISHED)


@pytest.mark.parametrize(("h", "w"), [(4, 6), (5, 7)])
def test_chroma_resampling_keeps_flat_and_linear_planes(h: int, w: int) -> None:
    flat = np.full((h, w), 90.0)
    assert np.allclose(upsample_chroma(downsample_chroma(flat), h, w), flat)
    ramp = np.tile(np.arange(w, dtype=np.float64) * 4.0, (h, 1))
    down = downsample_chroma(ramp)
    assert down.shape == ((h + 1) // 2, (w + 1) // 2)
    up = upsample_chroma(down, h, w)
    inner = slice(1, (w // 2) * 2 - 1)  # away from the replicated borders
    assert np.allclose(up[:, inner], ramp[:, inner])


@pytest.mark.parametrize(("name", "shape"), [("hevc444", (48, 64)), ("hevc444", (47, 65)),
                                             ("hevc420", (48, 64)), ("hevc420", (47, 65)),
                                             ("vvc", (48, 64))])
def test_intra_codecs_roundtrip(name: str, shape: tuple[int, int], tmp_path: Path) -> None:
    codec = get_codec(name)
    rgb = smooth_image(*shape, seed=12)
    sizes, psnrs = [], []
    for qp in (42, 22):
        path = tmp_path / f"{qp}{codec.suffix}"
        codec.encode(rgb, qp, path)
        data = path.read_bytes()
        assert data[:4] == b"\x00\x00\x00\x01"  # Annex B start code: a raw stream, no container
        decoded = codec.decode(path, *shape)
        assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
        sizes.append(len(data))
        psnrs.append(psnr_rgb(rgb, decoded))
    assert sizes[0] < sizes[1] and psnrs[0] < psnrs[1]
    assert psnrs[1] > 33.0


def test_x265_stream_has_bpg_settings(tmp_path: Path) -> None:
    """No info SEI (BPG turns it off): the x265 version string must not be in the file."""
    codec = get_codec("hevc444")
    path = tmp_path / "a.hevc"
    codec.encode(smooth_image(48, 64, seed=13), 30, path)
    assert b"x265" not in path.read_bytes()
    assert codec.settings()["tune"] == "ssim"
    versions = ffmpeg_versions()
    assert versions["x265"] != "unknown" and versions["vvenc"] != "unknown"
