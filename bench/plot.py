"""RD plots drawn only from result files and published result files.

Two panels: PSNR (RGB) and MS-SSIM in dB against bpp. Our curves are coloured lines with
filled markers; published curves are their points only (hollow dark markers, no line),
as published.
Writes the requested file and, beside a ``.png``, the same plot as ``.svg``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from leechcodec.bench.curves import Curve

_MARKERS = "osD^v<>ph*Xd"
_GREYS = ("black", "0.45", "saddlebrown", "darkslategray", "0.25", "olive")


def plot_rd(curves: Sequence[Curve], out: Path, title: str = "",
            xmax: float | None = 2.0) -> list[Path]:
    """Draw ``curves`` to ``out`` (and its ``.svg`` twin when ``out`` is a ``.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "leechcodec-bench"

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    panels = (("psnr", "PSNR (RGB) [dB]"), ("ms_ssim_db", "MS-SSIM (RGB) [dB]"))
    ours = [c for c in curves if c.kind == "ours"]
    published = [c for c in curves if c.kind != "ours"]
    tab10, tab20 = plt.get_cmap("tab10"), plt.get_cmap("tab20")
    colors = [tab10(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + [tab20(i) for i in range(1, 20, 2)]
    for ax, (metric, ylabel) in zip(axes, panels):
        for i, curve in enumerate(ours):
            y = curve.metric(metric)
            if y is not None:
                ax.plot(curve.bpp, y, marker=_MARKERS[i % len(_MARKERS)], markersize=4,
                        linewidth=1.4, color=colors[i % len(colors)], label=curve.label)
        for i, curve in enumerate(published):
            y = curve.metric(metric)
            if y is not None:
                ax.plot(curve.bpp, y, linestyle="none", marker=_MARKERS[i % len(_MARKERS)],
                        markersize=6, markerfacecolor="none", markeredgewidth=1.1,
                        color=_GREYS[i % len(_GREYS)], label=curve.label)
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if xmax is not None:
            ax.set_xlim(0.0, xmax)
            _fit_ylim(ax, curves, metric, xmax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05 + 0.028 * ((len(labels) + 2) // 3), 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out]
    fig.savefig(out, dpi=130, metadata=_metadata(out))
    if out.suffix.lower() == ".png":
        svg = out.with_suffix(".svg")
        fig.savefig(svg, metadata=_metadata(svg))
        written.append(svg)
    plt.close(fig)
    return written


def _metadata(path: Path) -> dict[str, str | None]:
    """Drop the creation date and software stamp so replotting the same data is byte-stable."""
    suffix = path.suffix.lower()
    if suffix == ".svg":
        return {"Date": None, "Creator": None}
    if suffix == ".pdf":
        return {"CreationDate": None, "Creator": None, "Producer": None}
    return {"Software": None}


def _fit_ylim(ax, curves: Sequence[Curve], metric: str, xmax: float) -> None:
    values = []
    for curve in curves:
        y = curve.metric(metric)
        if y is not None:
            values.extend(float(v) for b, v in zip(curve.bpp, y) if b <= xmax)
    if values:
        lo, hi = min(values), max(values)
        pad = 0.04 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
