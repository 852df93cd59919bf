"""Command-line layer of the benchmark harness.

``leechcodec`` (the main CLI) registers ``bench`` and ``plot`` with
:func:`add_bench_parser` and :func:`add_plot_parser`; ``python -m leechcodec.bench``
runs :func:`main`, which adds ``bdrate``, ``export``, ``checksums`` and ``sanity``.
Handlers return an exit code; user errors go to stderr without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from leechcodec.bench.codecs import CLASSIC_SWEEP, available_codecs, get_codec
from leechcodec.bench.datasets import DATA_ENV, DatasetError, load_dataset, sha256_lines
from leechcodec.bench.results import ResultError



class UsageError(ValueError):
    """A bad flag value (a user error: no traceback)."""


USER_ERRORS = (DatasetError, ResultError, UsageError, KeyError, FileNotFoundError)


#: Packages of the ``bench`` extra (pyproject.toml), imported only by the harness.
_EXTRAS = {"pytorch_msssim", "matplotlib", "imagecodecs", "pillow_heif", "imageio_ffmpeg", "bjontegaard", "compressai"}


def _user_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except USER_ERRORS as exc:  # one line and status 1, like the codec's commands
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"leechcodec {getattr(args, 'command', 'bench')}: error: {msg}", file=sys.stderr)
            return 1
        except ModuleNotFoundError as exc:  # a lean install (codec only) lacks the harness's packages
            if exc.name and exc.name.split(".")[0] in _EXTRAS:
                print(f"leechcodec {getattr(args, 'command', 'bench')}: error: this command needs {exc.name}, "
                      "one of the benchmark extras: pip install 'leechcodec[bench]'", file=sys.stderr)
                return 1
            raise

    return run


def parse_codecs(text: str) -> list[str]:
    """``a,b,...``; ``classic`` expands to the classic sweep, ``all`` to every codec."""
    names: list[str] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        group = {"classic": list(CLASSIC_SWEEP), "all": available_codecs()}.get(item, [item])
        names.extend(n for n in group if n not in names)
    for name in names:
        get_codec(name)  # KeyError with the known names
    return names


def parse_params(items: Sequence[str] | None) -> dict[str, list[float | int]]:
    """``codec=v1,v2`` items to ``{codec: [v1, v2]}`` (ints stay ints)."""
    out: dict[str, list[float | int]] = {}
    for item in items or []:
        codec, _, values = item.partition("=")
        try:
            out[codec.strip()] = [float(v) if "." in v else int(v) for v in values.split(",")]
        except ValueError:
            raise UsageError(f"--params wants codec=v1,v2,..., got {item!r}") from None
    return out


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bench``: sweep codecs over a dataset, one result file per codec."""
    p = subparsers.add_parser(
        "bench", help="measure RD curves of codecs on a dataset",
        description="Encode every image of a dataset with each codec at each rate point, "
                    "write the files, decode them, and record bpp, PSNR and MS-SSIM in "
                    "one JSON file per codec. Points already in a result file are skipped.")
    p.add_argument("--dataset", default="kodak",
                   help="kodak, clic2020-pro-valid (alias clic), clic2020-pro-test, "
                        "clic2020-mobile-test, or a custom name with --data-dir")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"the dataset folder itself (default: ${DATA_ENV}/<dataset folder>)")
    p.add_argument("--download", action="store_true",
                   help="download the public set if the folder is missing, and verify it")
    p.add_argument("--no-verify", action="store_true",
                   help="skip checksum checks (results are marked unverified)")
    p.add_argument("--codecs", default="classic",
                   help="comma-separated codec names; 'classic' = "
                        f"{','.join(CLASSIC_SWEEP)}; 'all' adds vvc, the Pillow-default "
                        "variants and zoo models")
    p.add_argument("--params", action="append", metavar="CODEC=V1,V2",
                   help="override a codec's rate points (repeatable)")
    p.add_argument("--images", type=int, default=None, help="use the first N images only")
    p.add_argument("--out", type=Path, default=None,
                   help="result folder (default: results/<dataset>)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes, one thread each (default: all cores)")
    p.add_argument("--fresh", action="store_true",
                   help="ignore existing result files instead of resuming them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_user_errors(bench_command))
    return p


def bench_command(args: argparse.Namespace) -> int:
    from leechcodec.bench.runner import run_sweep

    codecs = parse_codecs(args.codecs)
    params = parse_params(args.params)
    unknown = sorted(set(params) - set(codecs))
    if unknown:
        raise UsageError(f"--params for codecs not in --codecs: {', '.join(unknown)}")
    dataset = load_dataset(args.dataset, args.data_dir, args.images,
                           download_missing=args.download, verify=not args.no_verify)
    out = args.out or Path("results") / dataset.name
    report = run_sweep(codecs, dataset, out, workers=max(1, args.workers), params=params,
                       fresh=args.fresh, progress=not args.quiet and sys.stderr.isatty())
    summary = {"dataset": dataset.name, "images": len(dataset.paths),
               "canonical": dataset.canonical, "out": str(out),
               "files": [str(f) for f in report.files], "points_measured": report.measured,
               "points_skipped": report.skipped, "errors": report.errors,
               "seconds": round(report.seconds, 1)}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{dataset.name}: {len(dataset.paths)} images, {len(codecs)} codecs, "
              f"{report.measured} points measured, {report.skipped} skipped, "
              f"{len(report.errors)} errors, {report.seconds:.0f} s -> {out}")
    for err in report.errors[:20]:
        print(f"error: {err}", file=sys.stderr)
    return 1 if report.errors else 0


def _add_curve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=Path,
                   help="result files (ours or CompressAI-shaped JSON) or folders of them")
    p.add_argument("--dataset", default=None,
                   help="dataset whose published anchors to draw (default: from the results)")
    p.add_argument("--anchors", type=Path, default=None,
                   help=f"published anchors folder (default: ${DATA_ENV}/anchors)")
    p.add_argument("--no-anchors", action="store_true", help="draw no published curves")
    p.add_argument("--bd-anchor", default=None,
                   help="curve name BD-rates are relative to (default: hevc444 if present)")


def add_plot_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``plot``: RD plot (PNG + SVG) and optional BD-rate table from result files."""
    p = subparsers.add_parser(
        "plot", help="draw RD curves from result files",
        description="Plot PSNR and MS-SSIM against bpp from result files, with published "
                    "curves as points; optionally write a BD-rate table.")
    _add_curve_arguments(p)
    p.add_argument("-o", "--output", type=Path, default=Path("rd.png"),
                   help="output image (a .png also gets a .svg twin)")
    p.add_argument("--table", type=Path, default=None, help="also write a BD-rate table (.md)")
    p.add_argument("--title", default=None)
    p.add_argument("--xmax", type=float, default=2.0, help="largest bpp shown (0: all)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=_user_errors(plot_command))
    return p


def add_bdrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bdrate``: print a markdown BD-rate table from result files."""
    p = subparsers.add_parser("bdrate", help="BD-rate table from result files")
    _add_curve_arguments(p)
    p.add_argument("-o", "--output", type=Path, default=None, help="also write it here")
    p.set_defaults(func=_user_errors(bdrate_command))
    return p


def _result_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such result file or folder: {path}")
    return files


def _load_curves(args: argparse.Namespace) -> tuple[list[Any], list[Any], str | None]:
    from leechcodec.bench.curves import (anchors_root, curve_from_compressai, curve_from_result,
                                         default_anchors)
    from leechcodec.bench.results import load_result

    ours, dataset = [], args.dataset
    for path in _result_files(args.results):
        data = json.loads(path.read_text())
        if data.get("schema") is not None:
            data = load_result(path)
            if not data["points"]:
                continue
            ours.append(curve_from_result(path))
            dataset = dataset or data["dataset"]["name"]
        else:
            ours.append(curve_from_compressai(path))
    if not ours:
        raise UsageError("no result points to draw")
    published = [] if args.no_anchors else default_anchors(dataset or "",
                                                           anchors_root(args.anchors))
    return ours, published, dataset


def _bd_table(ours: list[Any], published: list[Any], anchor_name: str | None,
              dataset: str | None) -> str:
    from leechcodec.bench.bdrate import bd_table

    everything = ours + published
    name = anchor_name or ("hevc444" if any(c.name == "hevc444" for c in ours) else ours[0].name)
    matches = [c for c in everything if c.name == name]
    if not matches:
        raise UsageError(f"--bd-anchor {name!r} is not among the curves: "
                         + ", ".join(c.name for c in everything))
    title = f"{dataset}: BD-rate" if dataset else "BD-rate"
    return bd_table(everything, matches[0], title)


_PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def plot_command(args: argparse.Namespace) -> int:
    from leechcodec.bench.plot import plot_rd

    out = args.output
    if out.suffix.lower() not in _PLOT_SUFFIXES:
        raise UsageError(f"{out}: plots are written as {', '.join(_PLOT_SUFFIXES)}")
    targets = [out, *([out.with_suffix(".svg")] if out.suffix.lower() == ".png" else []), *filter(None, [args.table])]
    existing = [t for t in targets if t.exists()]
    if existing and not args.force:
        raise UsageError(f"{existing[0]} exists; use --force to overwrite")
    ours, published, dataset = _load_curves(args)
    title = args.title if args.title is not None else (
        f"{dataset} — RD curves (leechcodec bench)" if dataset else "")
    written = plot_rd(ours + published, args.output, title=title, xmax=args.xmax or None)
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(_bd_table(ours, published, args.bd_anchor, dataset))
        written.append(args.table)
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def bdrate_command(args: argparse.Namespace) -> int:
    ours, published, dataset = _load_curves(args)
    text = _bd_table(ours, published, args.bd_anchor, dataset)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    print(text, end="")
    return 0


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``export``: a result file in CompressAI's JSON shape."""
    p = subparsers.add_parser("export", help="write a result file in CompressAI's JSON shape")
    p.add_argument("result", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(func=_user_errors(export_command))
    return p


def export_command(args: argparse.Namespace) -> int:
    from leechcodec.bench.results import load_result, to_compressai

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(to_compressai(load_result(args.result)), indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


def add_checksums_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``checksums``: print ``sha256  name`` lines for the images of a folder."""
    p = subparsers.add_parser("checksums", help="SHA256 list of a dataset folder's images")
    p.add_argument("folder", type=Path)
    p.set_defaults(func=_user_errors(
        lambda args: print(sha256_lines(args.folder), end="") or 0))
    return p


def add_codecs_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``codecs``: list codec names with their rate points."""
    p = subparsers.add_parser("codecs", help="list the codecs and their default rate points")
    p.set_defaults(func=_user_errors(codecs_command))
    return p


def codecs_command(args: argparse.Namespace) -> int:
    for name in available_codecs():
        codec = get_codec(name)
        points = ",".join(str(v) for v in codec.params())
        print(f"{name:20s} {codec.label}  [{codec.param_name}: {points}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from leechcodec.bench.sanity import add_sanity_arguments

    parser = argparse.ArgumentParser(prog="python -m leechcodec.bench",
                                     description="leechcodec benchmark harness")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    add_plot_parser(sub)
    add_bdrate_parser(sub)
    add_export_parser(sub)
    add_checksums_parser(sub)
    add_codecs_parser(sub)
    add_sanity_arguments(sub.add_parser("sanity", help="compare with published Kodak curves"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    return args.func(args)
