"""Where our models stand against the classic codecs, in one table: the README's lead.

``python -m leechcodec.bench.training.standing bench/results/kodak`` reads the harness result
files of the models named by ``--models`` (default: every shipped zoo name whose result file
is in the folder) and of the references JPEG 4:2:0 (libjpeg-turbo, optimized), WebP and HEVC
4:4:4 (the BPG stand-in), and writes ``standing.md`` into the folder:

- for a single-rate model (the default): its bpp and PSNR, and PSNR minus each reference's at
  the same bpp (interpolated linearly in log bpp);
- for a curve (a zoo family): BD-rate (PSNR and MS-SSIM) against each reference, and BD-PSNR
  (BD-rates over less than half of the union of the quality ranges are marked †, as in
  ``leechcodec plot``), then every point as for a single-rate model;
- for a gain–shape Λ24 curve whose equal-budget controls (the same name with ``scalar`` or
  ``bsq`` for ``leech24gs``: the same transforms, data, seed and budget, another quantizer)
  are curves in the folder too: BD-rate and BD-PSNR of the Λ24 curve against each.

Every number comes from the result files; the issue-15 targets are printed next to them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leechcodec.bench.bdrate import MIN_OVERLAP, bd_psnr, bd_rate
from leechcodec.bench.curves import Curve, curve_from_result
from leechcodec.bench.sanity import metric_at
from leechcodec.fileio import atomic_write_bytes

__all__ = ["REFERENCES", "CONTROLS", "controls_of", "point_rows", "curve_rows", "control_rows", "report", "main"]

#: name -> label of the reference codecs (their result files beside ours).
REFERENCES = {"jpeg420": "JPEG 4:2:0 (optimized)", "webp": "WebP", "hevc444": "HEVC 4:4:4"}
#: quantizer family -> the families of its equal-budget controls (a model's control has the same
#: name with the family prefix swapped: ``leech24gs-n128-v1`` -> ``scalar-n128-v1``, ``bsq-n128-v1``).
#: Issue 15: the scalar reference is the control; BSQ is the quantizer the paper improves on.
CONTROLS = {"leech24gs": ("scalar", "bsq")}


def controls_of(name: str) -> list[str]:
    """The result names of ``name``'s equal-budget controls ([] for a family without any)."""
    for family, controls in CONTROLS.items():
        if name == family or name.startswith(family + "-"):
            return [control + name[len(family):] for control in controls]
    return []


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:+.2f}{unit}"


def _bd_cells(ref: Curve, c: Curve) -> list[str]:
    """BD-rate of ``c`` against ``ref`` on PSNR and MS-SSIM († below half overlap), then BD-PSNR."""
    cells = []
    for metric in ("psnr", "ms_ssim_db"):
        r = bd_rate(ref, c, metric)
        cells.append("n/a" if r.value is None else f"{r.value:+.1f} %{' †' if r.overlap < MIN_OVERLAP else ''}")
    return cells + [_fmt(bd_psnr(ref, c).value, " dB")]


def point_rows(ours: list[Curve], refs: dict[str, Curve]) -> list[str]:
    """One row per point of each model: bpp, PSNR, and PSNR minus each reference's at that bpp."""
    rows = ["| model | bpp | PSNR | " + " | ".join(f"− {REFERENCES[r]}" for r in refs) + " |",
            "|---|---:|---:|" + "---:|" * len(refs)]
    for c in ours:
        for bpp, psnr in zip(c.bpp, c.psnr):
            deltas = [metric_at(ref, float(bpp)) for ref in refs.values()]
            cells = [_fmt(None if d is None else float(psnr) - d, " dB") for d in deltas]
            rows.append(f"| {c.label} | {bpp:.4f} | {psnr:.2f} dB | " + " | ".join(cells) + " |")
    return rows


def curve_rows(ours: list[Curve], refs: dict[str, Curve]) -> list[str]:
    """One row per (curve, reference): BD-rate on PSNR and MS-SSIM, and BD-PSNR."""
    rows = ["| model | against | BD-rate PSNR | BD-rate MS-SSIM | BD-PSNR |", "|---|---|---:|---:|---:|"]
    for c in ours:
        for name, ref in refs.items():
            rows.append(f"| {c.label} | {REFERENCES[name]} | " + " | ".join(_bd_cells(ref, c)) + " |")
    return rows


def control_rows(pairs: list[tuple[Curve, Curve]]) -> list[str]:
    """One row per (curve, its control): BD-rate on PSNR and MS-SSIM, and BD-PSNR, of the curve
    against the control (negative BD-rate: the curve needs fewer bits)."""
    rows = ["| model | against its control | BD-rate PSNR | BD-rate MS-SSIM | BD-PSNR |", "|---|---|---:|---:|---:|"]
    for c, ctl in pairs:
        rows.append(f"| {c.label} | {ctl.label} | " + " | ".join(_bd_cells(ctl, c)) + " |")
    return rows


def report(folder: Path, models: list[str] | None = None) -> str:
    """The markdown of ``standing.md`` for the result files in ``folder``."""
    refs = {name: curve_from_result(folder / f"{name}.json") for name in REFERENCES
            if (folder / f"{name}.json").exists()}
    if not refs:
        raise ValueError(f"no reference result files ({', '.join(f'{n}.json' for n in REFERENCES)}) in {folder}")
    if models is None:
        from leechcodec.zoo import list_models

        models = sorted({e.name for e in list_models()})
    named = {m: curve_from_result(folder / f"{m}.json") for m in models if (folder / f"{m}.json").exists()}
    if not named:
        raise ValueError(f"none of {', '.join(models)} has a result file in {folder}")
    curves = list(named.values())
    single = [c for c in curves if len(c.bpp) < 4]
    multi = [c for c in curves if len(c.bpp) >= 4]
    pairs = []
    for m, c in named.items():
        if len(c.bpp) < 4:
            continue
        for ctl in controls_of(m):
            if (folder / f"{ctl}.json").exists():
                control = named.get(ctl) or curve_from_result(folder / f"{ctl}.json")
                if len(control.bpp) >= 4:
                    pairs.append((c, control))
    out = [f"# Where we stand ({folder.name}, whole-file bpp, RGB PSNR)", "",
           "Made by `python -m leechcodec.bench.training.standing " + str(folder) + "` from the result files "
           "beside it; PSNR differences at the same bpp are interpolated linearly in log bpp, n/a outside "
           "the reference's measured range.", ""]
    if single:
        out += ["## Single-rate models at their own rate", "", *point_rows(single, refs), "",
                "Issue 15's target for the default model: ≥ WebP and ≥ optimized JPEG + 2 dB at its own bpp "
                "(aim: ≥ HEVC 4:4:4, and the paper's 29.63 dB at ≤ 0.2747 bpp).", ""]
    if multi:
        out += ["## Curves (BD against each reference; † = overlap below 50 %)", "", *curve_rows(multi, refs), "",
                "Issue 15's target for the Λ24 zoo: BD-rate ≤ −40 % against optimized JPEG and ≤ 0 against "
                "WebP (and ≤ −10 % against BSQ, in `zoo_report.md`).", "",
                "## Every point of the curves", "", *point_rows(multi, refs), ""]
    if pairs:
        out += ["## Gain–shape Λ24 against its controls (same transforms, data, seed and budget)", "",
                *control_rows(pairs), "",
                "Issue 15's controls: the scalar reference (and BSQ) trained on exactly the Λ24 models' "
                "budget; negative BD-rate means the Λ24 curve needs fewer bits. Target: ≤ −10 % against "
                "BSQ.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.training.standing",
                                description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="harness result files (e.g. bench/results/kodak)")
    p.add_argument("--models", default=None, help="comma-separated result names (default: the zoo's names)")
    p.add_argument("--out", type=Path, default=None, help="default: FOLDER/standing.md")
    args = p.parse_args(argv)
    try:
        text = report(args.folder, args.models.split(",") if args.models else None)
    except (ValueError, FileNotFoundError) as exc:
        print(f"standing: error: {exc}", file=sys.stderr)
        return 1
    out = args.out or args.folder / "standing.md"
    atomic_write_bytes(out, text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
