from __future__ import annotations

import numpy as np
import pytest

from leechcodec.bench.bdrate import bd_rate, bd_table
from leechcodec.bench.curves import Curve
from tests.tolerances import BD_RATE_PERCENT

BPP = np.array([0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5])
PSNR = 24.0 + 6.0 * np.log2(BPP / 0.05)
MSSSIM = 1.0 - 0.2 * (BPP / 0.05) ** -0.8


def curve(name: str, bpp: np.ndarray, psnr: np.ndarray, ms: np.ndarray | None = MSSSIM) -> Curve:
    return Curve(name, name, bpp, psnr, ms, "ours", "test")


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.25])
def test_scaled_rate_gives_the_scale(factor: float) -> None:
    """Same qualities at factor × the rate: BD-rate is (factor - 1) at every quality."""
    anchor = curve("a", BPP, PSNR)
    test = curve("t", BPP * factor, PSNR)
    for metric in ("psnr", "ms_ssim_db"):
        result = bd_rate(anchor, test, metric)
        assert result.value == pytest.approx(100 * (factor - 1), abs=BD_RATE_PERCENT)
        assert result.overlap > 0.5


def test_matches_bjontegaard_package_directly() -> None:
    import bjontegaard

    anchor = curve("a", BPP, PSNR)
    test = curve("t", BPP * 1.1, PSNR + 0.3 * np.sin(BPP))
    expected = bjontegaard.bd_rate(BPP, PSNR, BPP * 1.1, PSNR + 0.3 * np.sin(BPP),
                                   method="akima", require_matching_points=False)
    assert bd_rate(anchor, test).value == pytest.approx(expected, abs=BD_RATE_PERCENT)


def test_unavailable_cases() -> None:
    anchor = curve("a", BPP, PSNR)
    assert bd_rate(anchor, curve("far", BPP, PSNR + 100)).value is None  # no overlap
    assert bd_rate(anchor, curve("few", BPP[:3], PSNR[:3])).value is None
    assert bd_rate(anchor, curve("nom", BPP, PSNR, None), "ms_ssim_db").value is None


def test_table_lists_every_curve() -> None:
    anchor = curve("a", BPP, PSNR)
    text = bd_table([anchor, curve("t", BPP * 0.9, PSNR)], anchor, "kodak")
    assert "| a | +0.0 % | +0.0 % |" in text and "| t | -10.0 % | -10.0 % |" in text
