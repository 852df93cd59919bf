"""The zoo report: gain–shape Λ24, Λ24-SQ, BSQ and scalar quantization at equal budget, on Kodak.

``python -m leechcodec.bench.training.zoo_report bench/results/kodak`` reads the harness result
files of the zoo families (``leech24gs.json``, ``leech24.json``, ``bsq.json``, ``scalar.json``,
made by ``leechcodec bench --dataset kodak --codecs leech24gs,leech24,bsq,scalar``) and of the
classic anchors found beside them, and writes ``zoo_report.md`` (RD points, BD-rates between
every pair of families, the gain–shape targets, the paper comparison) and
``zoo_rd.png``/``.svg`` into the same folder. Every number in the report
comes from those files; nothing is typed in except the paper's published point.

The report also places the default model (``leech24-hyper.json``) and its encoder-side
refinement runs (``leech24-hyper+refineN.json``, see :mod:`leechcodec.refine`) against
JPEG 4:2:0 at the same bpp, when those files are in the folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from leechcodec.bench.bdrate import bd_psnr, bd_rate
from leechcodec.bench.curves import Curve, curve_from_result
from leechcodec.bench.learned import REFINE_SEP, split_learned_name
from leechcodec.bench.results import load_result
from leechcodec.bench.sanity import matched_bpp_deltas
from leechcodec.latent_codecs import BSQCodec, GainShapeLeech24Codec, Leech24Codec, ScalarCodec

__all__ = ["PAPER_POINT", "OURS", "GAIN_SHAPE", "FAMILIES", "GAIN_SHAPE_TARGETS", "DEFAULT_MODEL_FILE", "DEFAULT_MODEL_ANCHORS", "nearest_point",
           "default_model_lines", "report", "main"]

#: The paper's Λ24-SQ Kodak point: a fixed-length code of 17.585 bits per token.
PAPER_POINT = {"bpp": 0.2747, "psnr": 29.63}
#: The family the others are measured against, and every zoo family (its result file is named
#: after it) with its label in tables and plots.
OURS = Leech24Codec.name
GAIN_SHAPE = GainShapeLeech24Codec.name
FAMILIES = ((GAIN_SHAPE, "Λ24 gain–shape"), (OURS, "Λ24-SQ"), (BSQCodec.name, "BSQ (L = 18)"),
            (ScalarCodec.name, "scalar (Gaussian hyperprior)"))
#: The gain–shape family's targets: BD-rate (PSNR, Akima) at most this against each family.
GAIN_SHAPE_TARGETS = {OURS: -25.0, ScalarCodec.name: 0.0}
#: ... and at least this PSNR range from its lowest to its highest rate point (dB).
GAIN_SHAPE_MIN_RANGE_DB = 6.0
#: The comparison's rate range (bpp) and the least number of points each family has in it.
RATE_RANGE = (0.1, 1.5)
MIN_POINTS = 5
ANCHORS = ("jpeg420", "hevc444")
DEFAULT_MODEL_FILE = "leech24-hyper"


def _refine_steps(path: Path) -> int:
    return split_learned_name(path.stem)[1]


def nearest_point(curve: Curve, bpp: float) -> int:
    """Index of the point of ``curve`` whose bpp is nearest ``bpp``."""
    return int(np.argmin(np.abs(curve.bpp - bpp)))


def _points_table(folder: Path, curves: dict[str, Curve]) -> list[str]:
    lines = ["| family | zoo quality | bpp | PSNR (dB) | MS-SSIM |", "|---|---:|---:|---:|---:|"]
    for name, curve in curves.items():
        points = sorted((p for p in load_result(folder / f"{name}.json")["points"] if p["bpp"] is not None),
                        key=lambda p: p["bpp"])
        for p in points:
            ms = "—" if p["ms_ssim_rgb"] is None else f"{p['ms_ssim_rgb']:.4f}"
            lines.append(f"| {curve.label} | {p['param']} | {p['bpp']:.4f} | {p['psnr_rgb']:.2f} | {ms} |")
    return lines


def _matched_cell(test: Curve, anchor: Curve) -> str:
    d = matched_bpp_deltas(test, anchor)
    return "n/a" if len(d) == 0 else f"{d.mean():+.2f} dB ({len(d)})"


def _bd_lines(test: Curve, anchors: list[Curve]) -> list[str]:
    lines = [f"| {test.label} against | BD-rate PSNR (Akima) | BD-rate PSNR (PCHIP) | BD-rate MS-SSIM (Akima) "
             "| BD-PSNR (Akima) | ΔPSNR at matched bpp (points) |", "|---|---:|---:|---:|---:|---:|"]
    for anchor in anchors:
        cells = [bd_rate(anchor, test, "psnr").cell(), bd_rate(anchor, test, "psnr", method="pchip").cell(),
                 bd_rate(anchor, test, "ms_ssim_db").cell(), bd_psnr(anchor, test).cell(), _matched_cell(test, anchor)]
        lines.append(f"| {anchor.label} | " + " | ".join(cells) + " |")
    return lines


def _jpeg_ms_ssim_at(jpeg: Curve, bpp: float) -> float | None:
    """JPEG's MS-SSIM at ``bpp``, linear in log bpp (as the PSNR column); None outside its range."""
    if jpeg.ms_ssim is None or not jpeg.bpp.min() <= bpp <= jpeg.bpp.max():
        return None
    return float(np.interp(np.log(bpp), np.log(jpeg.bpp), jpeg.ms_ssim))


#: The JPEG anchors of the default model's table: result file stem and heading.
DEFAULT_MODEL_ANCHORS = (
    ("jpeg420", "JPEG 4:2:0 (libjpeg-turbo through Pillow, optimize=True: optimized Huffman tables)"),
    ("jpeg420-pildefault", "JPEG 4:2:0 (libjpeg-turbo through Pillow, Pillow's defaults: optimize=False)"),
)


def _huffman_note(folder: Path) -> str:
    """What optimized Huffman tables save, at the lowest JPEG quality both anchor files have."""
    paths = [folder / f"{j}.json" for j, _ in DEFAULT_MODEL_ANCHORS]
    if not all(p.exists() for p in paths):
        return ""
    opt, pil = ({p["param"]: p["bpp"] for p in load_result(path)["points"] if p["bpp"]} for path in paths)
    common = sorted(set(opt) & set(pil))
    if not common:
        return ""
    q = common[0]
    return (f" Both JPEG tables are libjpeg-turbo through Pillow at 4:2:0; at quality {q} the optimized Huffman "
            f"tables alone take the rate from {pil[q]:.4f} to {opt[q]:.4f} bpp ({1 - opt[q] / pil[q]:.0%} less) "
            "for the same pixels.")


def default_model_lines(folder: Path, jpeg_file: str = "jpeg420") -> list[str]:
    """Table rows: the default model, plain and refined, against JPEG 4:2:0 (``jpeg_file``) at
    the same bpp in PSNR and MS-SSIM (JPEG interpolated linearly in log bpp); empty without the
    files."""
    jpeg_path = folder / f"{jpeg_file}.json"
    files = [folder / f"{DEFAULT_MODEL_FILE}.json"] + sorted(folder.glob(f"{DEFAULT_MODEL_FILE}{REFINE_SEP}*.json"),
                                                             key=_refine_steps)
    files = [f for f in files if f.exists()]
    if not files or not jpeg_path.exists():
        return []
    jpeg = curve_from_result(jpeg_path)
    lines = ["| encoder | bpp | PSNR (dB) | MS-SSIM | JPEG 4:2:0 at that bpp (dB) | Δ PSNR | JPEG MS-SSIM at that bpp "
             "| Δ MS-SSIM | encode s/image |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in files:
        data = load_result(path)
        steps = _refine_steps(path)
        for p in sorted((p for p in data["points"] if p["bpp"] is not None), key=lambda p: p["bpp"]):
            point = Curve(path.stem, path.stem, np.array([p["bpp"]]), np.array([p["psnr_rgb"]]), None, "ours", str(path))
            d = matched_bpp_deltas(point, jpeg)
            ref = "outside JPEG's range" if len(d) == 0 else f"{p['psnr_rgb'] - d[0]:.2f}"
            delta = "n/a" if len(d) == 0 else f"{d[0]:+.2f} dB"
            ms = "—" if p["ms_ssim_rgb"] is None else f"{p['ms_ssim_rgb']:.4f}"
            jms = _jpeg_ms_ssim_at(jpeg, p["bpp"])
            ms_ref = "—" if jms is None else f"{jms:.4f}"
            ms_delta = "—" if jms is None or p["ms_ssim_rgb"] is None else f"{p['ms_ssim_rgb'] - jms:+.4f}"
            enc = "—" if p.get("enc_time_s") is None else f"{p['enc_time_s']:.1f}"
            label = f"q{p['param']}, " + (f"{steps} refinement steps" if steps else "no refinement")
            lines.append(f"| {label} | {p['bpp']:.4f} | {p['psnr_rgb']:.2f} | {ms} | {ref} | {delta} | {ms_ref} "
                         f"| {ms_delta} | {enc} |")
    return lines


def load_curves(folder: Path) -> tuple[dict[str, Curve], list[Curve]]:
    """The zoo families' curves (labelled by family) and the classic anchors in ``folder``."""
    curves = {name: dataclasses.replace(curve_from_result(folder / f"{name}.json"), label=label)
              for name, label in FAMILIES if (folder / f"{name}.json").exists()}
    if OURS not in curves:
        raise FileNotFoundError(f"no {OURS}.json in {folder}: run the harness on the zoo first")
    anchors = [curve_from_result(folder / f"{a}.json") for a in ANCHORS if (folder / f"{a}.json").exists()]
    return curves, anchors


def gain_shape_lines(curves: dict[str, Curve]) -> list[str]:
    """The gain–shape family's targets, met or not (empty without its result file)."""
    if GAIN_SHAPE not in curves:
        return []
    gs = curves[GAIN_SHAPE]
    lines = ["| target | measured | met |", "|---|---:|:---:|"]
    for name, limit in GAIN_SHAPE_TARGETS.items():
        if name in curves:
            bd = bd_rate(curves[name], gs, "psnr")
            value = bd.value
            met = "n/a" if value is None else ("yes" if value <= limit else "no")
            lines.append(f"| BD-rate (PSNR) against {curves[name].label} ≤ {limit:+.0f} % | {bd.cell()} | {met} |")
    span = float(gs.psnr.max() - gs.psnr.min())
    lines.append(f"| PSNR from the lowest to the highest rate point ≥ +{GAIN_SHAPE_MIN_RANGE_DB:.0f} dB "
                 f"| {span:+.2f} dB ({gs.psnr.min():.2f} → {gs.psnr.max():.2f}) "
                 f"| {'yes' if span >= GAIN_SHAPE_MIN_RANGE_DB else 'no'} |")
    return lines


def coverage_lines(curves: dict[str, Curve]) -> list[str]:
    """Per family: its number of points (the comparison asks for at least :data:`MIN_POINTS`),
    its rate range, and whether the range reaches both ends of :data:`RATE_RANGE`."""
    lo, hi = RATE_RANGE
    lines = [f"| family | points (≥ {MIN_POINTS}) | lowest bpp | highest bpp | reaches {lo} bpp | reaches {hi} bpp |",
             "|---|---:|---:|---:|:---:|:---:|"]
    for curve in curves.values():
        lines.append(f"| {curve.label} | {len(curve.bpp)} | {curve.bpp.min():.4f} | {curve.bpp.max():.4f} "
                     f"| {'yes' if curve.bpp.min() <= lo else 'no'} | {'yes' if curve.bpp.max() >= hi else 'no'} |")
    return lines


def explore_lines(explore: Path, curves: dict[str, Curve]) -> list[str]:
    """One row per exploration result file in ``explore`` (variants of the gain–shape
    family, each one rate point): its point, and its PSNR and MS-SSIM (in dB,
    ``-10·log10(1 − MS-SSIM)``) minus the shipped gain–shape curve's at the same bpp."""
    paths = sorted(explore.glob("*.json"))
    if GAIN_SHAPE not in curves or not paths:
        return []
    gs = curves[GAIN_SHAPE]
    lines = ["| run | bpp | PSNR (dB) | MS-SSIM | ΔPSNR against the gain–shape curve | ΔMS-SSIM (dB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for path in paths:
        curve = curve_from_result(path)
        for i in range(len(curve.bpp)):
            point = dataclasses.replace(curve, bpp=curve.bpp[i : i + 1], psnr=curve.psnr[i : i + 1],
                                        ms_ssim=None if curve.ms_ssim is None else curve.ms_ssim[i : i + 1])
            cells = [matched_bpp_deltas(point, gs, m) for m in ("psnr", "ms_ssim_db")]
            ms = "—" if point.ms_ssim is None else f"{point.ms_ssim[0]:.4f}"
            lines.append(f"| {curve.name} | {point.bpp[0]:.4f} | {point.psnr[0]:.2f} | {ms} | "
                         + " | ".join("n/a" if len(c) == 0 else f"{c[0]:+.2f} dB" for c in cells) + " |")
    return lines


def report(folder: Path, explore: Path | None = None) -> str:
    """The markdown report for the result files in ``folder`` (and the exploration runs' in
    ``explore``)."""
    curves, anchors = load_curves(folder)
    ours = curves[OURS]
    labels = " vs ".join(c.label for c in curves.values())
    out = [f"# Zoo report: {labels} (Kodak, equal budget)", "",
           f"Result files: `{folder}`. Negative BD-rate: the family in the heading needs fewer bits for the "
           "same quality than the one in the row.", ""]
    targets = gain_shape_lines(curves)
    if targets:
        out += ["## Gain–shape Λ24: the targets", ""] + targets + [""]
    out += ["## Rate coverage", ""] + coverage_lines(curves) + [""]
    rows = explore_lines(explore, curves) if explore is not None else []
    if rows:
        out += ["## Gain–shape exploration runs", "",
                f"Result files: `{explore}`; each is one variant of the recipe trained at one rate point, "
                "compared with the shipped gain–shape curve at the same bpp (positive: better).", ""] + rows + [""]
    first = True
    for name, curve in curves.items():
        rest = [c for n, c in curves.items() if n != name]
        out += [f"## {curve.label} BD-rates", ""] + _bd_lines(curve, rest + anchors) + [""]
        if first:
            out += ["BD-rates interpolate log-rate over the overlapping quality range (bjontegaard package; "
            "Akima is the harness's standard, PCHIP shows how much the value depends on the interpolant); "
            "† marks an overlap below 50 %; n/a: fewer than 4 points that raise quality, or no overlap. "
            "BD-PSNR: mean PSNR difference at equal rate, interpolating PSNR over the overlapping log-rate "
            "range (positive: this family is better; it needs overlapping rates, not qualities). "
            "ΔPSNR at matched bpp: mean PSNR difference at this family's points inside the other curve's "
            "bpp range, the other curve interpolated linearly in log bpp.", ""]
            first = False
    i = nearest_point(ours, PAPER_POINT["bpp"])
    out += ["## Next to the paper", "",
            "| | bpp | PSNR (dB) |", "|---|---:|---:|",
            f"| paper, Λ24-SQ fixed-length (17.585 bits/token) | {PAPER_POINT['bpp']:.4f} | {PAPER_POINT['psnr']:.2f} |",
            f"| ours, Λ24-SQ point nearest {PAPER_POINT['bpp']} bpp | {ours.bpp[i]:.4f} | {ours.psnr[i]:.2f} |", "",
            "## RD points", ""]
    out += _points_table(folder, curves)
    tables = [(heading, default_model_lines(folder, jpeg)) for jpeg, heading in DEFAULT_MODEL_ANCHORS]
    for heading, rows in tables:
        if rows:
            out += ["", f"## The default model ({DEFAULT_MODEL_FILE}) against {heading}", ""] + rows
    if any(rows for _, rows in tables):
        out += ["", "Refinement runs only in the encoder (`leechcodec encode --refine N`); the decoder and the "
                "file format are unchanged. Encode times are seconds per image as the harness measured them "
                "(its run record in each result file gives workers and threads)." + _huffman_note(folder)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.training.zoo_report", description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="folder of harness result files (e.g. bench/results/kodak)")
    p.add_argument("--explore", type=Path, default=None,
                   help="folder of exploration result files (e.g. bench/results/explore)")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    try:
        text = report(args.folder, args.explore)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (args.folder / "zoo_report.md").write_text(text)
    print(text)
    if not args.no_plot:
        from leechcodec.bench.plot import plot_rd

        curves, anchors = load_curves(args.folder)
        plot_rd(list(curves.values()) + anchors, args.folder / "zoo_rd.png", title="Kodak: zoo at equal budget", xmax=1.6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
