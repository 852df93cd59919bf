from __future__ import annotations

import math

import numpy as np
import pytest

from leechcodec.bench.metrics import MS_SSIM_MIN_SIDE, ms_ssim_db, ms_ssim_rgb, psnr_rgb
from tests.bench.conftest import smooth_image
from tests.bench.reference_metrics import ms_ssim_reference, psnr_reference
from tests.tolerances import MS_SSIM, MS_SSIM_SELF, PSNR_DB


def distort(rgb: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blurred = rgb.astype(np.float64)
    blurred[1:-1] = (blurred[:-2] + 2 * blurred[1:-1] + blurred[2:]) / 4
    return np.clip(np.rint(blurred + rng.normal(0, sigma, rgb.shape)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [1.0, 5.0, 20.0])
def test_psnr_matches_reference(sigma: float) -> None:
    a = smooth_image(48, 64, seed=4)
    b = distort(a, sigma, seed=5)
    assert psnr_rgb(a, b) == pytest.approx(psnr_reference(a, b), abs=PSNR_DB)


def test_psnr_known_values() -> None:
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 3  # MSE = 9 / 3 = 3
    assert psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2 / 3.0), abs=PSNR_DB)
    assert psnr_rgb(a, a) == math.inf


@pytest.mark.parametrize(("shape", "sigma", "seed"),
                         [((192, 256), 3.0, 1), ((176, 176), 12.0, 2), ((256, 192), 30.0, 3)])
def test_ms_ssim_matches_reference(shape: tuple[int, int], sigma: float, seed: int) -> None:
    a = smooth_image(*shape, seed=seed)
    b = distort(a, sigma, seed=seed + 10)
    ours = ms_ssim_rgb(a, b)
    assert ours is not None and 0.0 < ours < 1.0
    assert ours == pytest.approx(ms_ssim_reference(a, b), abs=MS_SSIM)


def test_ms_ssim_identity_and_small_images() -> None:
    a = smooth_image(176, 176, seed=7)
    assert ms_ssim_rgb(a, a) == pytest.approx(1.0, abs=MS_SSIM_SELF)
    small = smooth_image(MS_SSIM_MIN_SIDE - 1, 200, seed=8)
    assert ms_ssim_rgb(small, small) is None


def test_ms_ssim_db() -> None:
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    assert ms_ssim_db(1.0) == math.inf


def test_shape_and_dtype_checks() -> None:
    a = smooth_image(16, 16, seed=9)
    with pytest.raises(ValueError):
        psnr_rgb(a, a[:8])
    with pytest.raises(ValueError):
        psnr_rgb(a, a.astype(np.float32))
