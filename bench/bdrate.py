"""Bjøntegaard-delta rate (BD-rate) between RD curves, and markdown tables of it.

BD-rate is the average bitrate difference, in percent, of a test curve against an
anchor curve at equal quality, over the quality interval where both curves have points
(negative: the test codec needs fewer bits). It is computed by the ``bjontegaard``
package (log10 rate as a function of quality, Akima interpolation, integrated over the
overlap), on PSNR in dB and on MS-SSIM in dB (``-10·log10(1 - MS-SSIM)``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Sequence

import numpy as np

from leechcodec.bench.curves import Curve

METRICS = ("psnr", "ms_ssim_db")
METHOD = "akima"
MIN_OVERLAP = 0.5
"""Below this overlap of the quality ranges (relative to their union) a value is flagged."""


@dataclasses.dataclass(frozen=True)
class BdResult:
    """One BD-rate value; ``value`` is ``None`` when it cannot be computed."""

    value: float | None
    overlap: float
    unit: str = "%"  # "%" for a BD-rate, "dB" for a BD-PSNR

    def cell(self) -> str:
        if self.value is None:
            return "n/a"
        flag = " †" if self.overlap < MIN_OVERLAP else ""
        return f"{self.value:+.1f} %{flag}" if self.unit == "%" else f"{self.value:+.2f} dB{flag}"


def _monotone(rate: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by rate, keeping only those that raise quality (interpolation needs a
    strictly increasing quality)."""
    order = np.argsort(rate)
    r, q = rate[order], quality[order]
    keep = [0] if len(r) else []
    for i in range(1, len(r)):
        if q[i] > q[keep[-1]]:
            keep.append(i)
    return r[keep], q[keep]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Length of the intersection of the ranges of ``a`` and ``b`` over that of their union."""
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    return max(hi - lo, 0.0) / (max(a.max(), b.max()) - min(a.min(), b.min()))


def bd_rate(anchor: Curve, test: Curve, metric: str = "psnr", method: str = METHOD) -> BdResult:
    """BD-rate of ``test`` against ``anchor`` in percent on ``metric`` (see :data:`METRICS`),
    interpolating with ``method`` (``akima``, ``pchip`` or ``cubic``, the bjontegaard package's)."""
    import bjontegaard

    qa, qt = anchor.metric(metric), test.metric(metric)
    if qa is None or qt is None:
        return BdResult(None, 0.0)
    ra, qa = _monotone(anchor.bpp, qa)
    rt, qt = _monotone(test.bpp, qt)
    if len(ra) < 4 or len(rt) < 4:
        return BdResult(None, 0.0)
    overlap = _overlap(qa, qt)
    if overlap <= 0.0:
        return BdResult(None, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(bjontegaard.bd_rate(ra, qa, rt, qt, method=method,
                                          require_matching_points=False, min_overlap=0.0))
    return BdResult(value if math.isfinite(value) else None, overlap)


def bd_psnr(anchor: Curve, test: Curve, method: str = METHOD) -> BdResult:
    """BD-PSNR of ``test`` against ``anchor`` in dB: the mean PSNR difference at equal rate, over
    the overlapping log-rate interval (positive: the test codec is better). It needs an overlap
    in rate, not in quality, so it compares curves that never reach each other's PSNR."""
    import bjontegaard

    if anchor.psnr is None or test.psnr is None:
        return BdResult(None, 0.0, "dB")
    ra, qa = _monotone(anchor.bpp, anchor.psnr)
    rt, qt = _monotone(test.bpp, test.psnr)
    if len(ra) < 4 or len(rt) < 4:
        return BdResult(None, 0.0, "dB")
    overlap = _overlap(np.log10(ra), np.log10(rt))
    if overlap <= 0.0:
        return BdResult(None, 0.0, "dB")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(bjontegaard.bd_psnr(ra, qa, rt, qt, method=method, require_matching_points=False,
                                          min_overlap=0.0))
    return BdResult(value if math.isfinite(value) else None, overlap, "dB")


def bd_table(curves: Sequence[Curve], anchor: Curve, title: str = "") -> str:
    """A markdown table: one row per curve, BD-rate on PSNR and on MS-SSIM vs ``anchor``."""
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    lines += [f"BD-rate against **{anchor.label}** (negative = fewer bits for the same "
              "quality).", "",
              "| codec | BD-rate (PSNR) | BD-rate (MS-SSIM) | points | bpp range |",
              "|---|---:|---:|---:|---|"]
    for curve in curves:
        cells = [bd_rate(anchor, curve, m).cell() for m in METRICS]
        kind = "" if curve.kind == "ours" or "published" in curve.label else " (published)"
        lines.append(f"| {curve.label}{kind} | {cells[0]} | {cells[1]} | {len(curve.bpp)} | "
                     f"{curve.bpp.min():.3f}–{curve.bpp.max():.3f} |")
    lines += ["", f"Akima interpolation (bjontegaard package), over the overlapping quality "
              f"range; † marks an overlap below {MIN_OVERLAP:.0%} of the union of the two "
              "ranges; n/a: fewer than 4 points, no overlap or metric not published."]
    if any(" images]" in c.label for c in curves):
        lines += ["", "Curves marked [n of N images] were measured on part of the set; published "
                  "curves average all N images, so their BD-rates compare different images."]
    return "\n".join(lines) + "\n"
