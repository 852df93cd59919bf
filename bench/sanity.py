"""Sanity checks of the harness against published Kodak curves.

Our numbers must agree with published numbers where the same encoder runs with the same
settings. For each pair below, every point of ours that lies inside the published bpp
range is compared with the published curve interpolated linearly in log(bpp); the mean
of those differences is the delta (ours minus published, dB PSNR on RGB).

==================== ======================================== =========================
ours                 published (anchors folder)               check
==================== ======================================== =========================
jpeg420-pildefault   compressai/kodak/jpeg.json (Pillow 7.1.2) |delta| <= 0.5 dB
webp-pildefault      compressai/kodak/webp.json (Pillow 7.1.2) |delta| <= 0.5 dB
hevc444              compressai/kodak/bpg_444_x265_ycbcr.json  |delta| <= 0.5 dB
==================== ======================================== =========================

Further rows are informational: ``hevc444`` against TensorFlow Compression's BPG 4:4:4
table, ``hevc420`` against its BPG 4:2:0 table, ``jpeg2000`` against CompressAI's
JPEG 2000 (ffmpeg's encoder there, OpenJPEG here) and ``vvc`` against CompressAI's VTM.

Reproduce (the two default-settings sweeps take a few minutes on 2 cores)::

    python -m leechcodec.bench bench --dataset kodak \\
        --codecs jpeg420-pildefault,webp-pildefault --out bench/results/kodak
    python -m leechcodec.bench sanity bench/results/kodak -o bench/results/kodak_sanity.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from leechcodec.bench.curves import (Curve, anchors_root, curve_from_compressai, curve_from_result,
                                     curve_from_tfc)

TOLERANCE_DB = 0.5

CHECKS: tuple[tuple[str, str, bool], ...] = (
    ("jpeg420-pildefault", "compressai/kodak/jpeg.json", True),
    ("webp-pildefault", "compressai/kodak/webp.json", True),
    ("hevc444", "compressai/kodak/bpg_444_x265_ycbcr.json", True),
    ("hevc444", "tensorflow-compression/kodak/PSNR_sRGB_RGB/bpg444.txt", False),
    ("hevc420", "tensorflow-compression/kodak/PSNR_sRGB_RGB/bpg420.txt", False),
    ("jpeg420", "compressai/kodak/jpeg.json", False),
    ("jpeg2000", "compressai/kodak/jpeg2000.json", False),
    ("vvc", "compressai/kodak/vtm.json", False),
)
"""(our codec, published file under the anchors folder, is it a pass/fail check)."""


@dataclasses.dataclass(frozen=True)
class Delta:
    ours: str
    published: str
    required: bool
    mean_db: float | None
    min_db: float | None
    max_db: float | None
    n_points: int

    @property
    def passed(self) -> bool | None:
        if self.mean_db is None:
            return None
        return abs(self.mean_db) <= TOLERANCE_DB


def metric_at(ref: Curve, bpp: float, metric: str = "psnr") -> float | None:
    """``ref``'s ``metric`` (:meth:`Curve.metric`) at ``bpp``, interpolated linearly in log(bpp);
    ``None`` outside its bpp range or where it lacks the metric."""
    values = ref.metric(metric)
    if values is None or not ref.bpp.min() <= bpp <= ref.bpp.max():
        return None
    return float(np.interp(np.log(bpp), np.log(ref.bpp), values))


def matched_bpp_deltas(ours: Curve, ref: Curve, metric: str = "psnr") -> np.ndarray:
    """``metric`` (:meth:`Curve.metric`: ``psnr`` or ``ms_ssim_db``) of ours minus ``ref``'s
    (:func:`metric_at`) at each of our points inside ``ref``'s bpp range."""
    mine = ours.metric(metric)
    if mine is None or ref.metric(metric) is None:
        return np.empty(0)
    at = [metric_at(ref, float(b), metric) for b in ours.bpp]
    return np.array([m - a for m, a in zip(mine, at) if a is not None])


def _published(root: Path, rel: str) -> Curve:
    if rel.endswith(".txt"):
        return curve_from_tfc(root / rel, None, Path(rel).stem, rel)
    return curve_from_compressai(root / rel)


def run_checks(results_dir: Path, root: Path) -> list[Delta]:
    """All :data:`CHECKS` whose two files exist."""
    out = []
    for codec, rel, required in CHECKS:
        ours_path = Path(results_dir) / f"{codec}.json"
        if not ours_path.exists() or not (root / rel).exists():
            if required:
                out.append(Delta(codec, rel, True, None, None, None, 0))
            continue
        d = matched_bpp_deltas(curve_from_result(ours_path), _published(root, rel))
        if d.size == 0:
            out.append(Delta(codec, rel, required, None, None, None, 0))
        else:
            out.append(Delta(codec, rel, required, float(d.mean()), float(d.min()),
                             float(d.max()), int(d.size)))
    return out


def markdown(deltas: Sequence[Delta]) -> str:
    lines = ["| ours | published | points compared | mean Δ PSNR | min / max Δ | check |",
             "|---|---|---:|---:|---:|---|"]
    for d in deltas:
        if d.mean_db is None:
            lines.append(f"| {d.ours} | {d.published} | 0 | n/a | n/a | "
                         f"{'MISSING' if d.required else 'info'} |")
            continue
        verdict = ("pass" if d.passed else "FAIL") if d.required else "info"
        lines.append(f"| {d.ours} | `{d.published}` | {d.n_points} | {d.mean_db:+.2f} dB | "
                     f"{d.min_db:+.2f} / {d.max_db:+.2f} | {verdict} |")
    lines += ["", f"Δ = our PSNR (RGB) − published PSNR interpolated linearly in log(bpp), at "
              f"our points inside the published bpp range; checks pass at |mean Δ| ≤ "
              f"{TOLERANCE_DB} dB."]
    return "\n".join(lines) + "\n"


def add_sanity_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results_dir", type=Path, help="folder with our Kodak result files")
    p.add_argument("--anchors", type=Path, default=None,
                   help="published anchors folder (default: $LEECHCODEC_DATA/anchors)")
    p.add_argument("-o", "--output", type=Path, default=None, help="write the table here")
    p.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    p.set_defaults(func=sanity_command)


def sanity_command(args: argparse.Namespace) -> int:
    import sys

    root = anchors_root(args.anchors)
    if root is None or not root.is_dir():
        print("error: no anchors folder (pass --anchors or set LEECHCODEC_DATA)", file=sys.stderr)
        return 2
    deltas = run_checks(args.results_dir, root)
    text = markdown(deltas)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    if args.json:
        print(json.dumps([dataclasses.asdict(d) | {"passed": d.passed} for d in deltas], indent=1))
    else:
        print(text, end="")
    required = [d for d in deltas if d.required]
    return 0 if required and all(d.passed for d in required) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leechcodec.bench.sanity",
                                     description=__doc__.split("\n\n")[0])
    add_sanity_arguments(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
