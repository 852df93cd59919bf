"""Command line: ``leechcodec encode | decode | info | models | demo | train | bench | plot``.

``main(argv=None) -> int`` so tests call it directly. Human one-line summaries on stdout,
``--json`` for machines, user errors as one line on stderr with exit status 1 (no
traceback); ``--threads`` applies at run time.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("leechcodec")


class UserError(Exception):
    """A problem with the user's input: reported in one line, exit status 1."""


def _set_threads(n: int | None) -> None:
    from leechcodec.runtime import set_threads

    try:
        set_threads(n)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _start_codec(args: argparse.Namespace):
    """Load torch and the kernels, apply the thread policy, say when numba is about to
    compile (first run on a machine), and return the progress reporter (or None)."""
    _set_threads(args.threads)
    quiet = args.quiet or args.json
    if not quiet:
        from leechcodec.kernels import uncached_kernels

        if uncached_kernels():
            print("leechcodec: compiling the numba kernels for this machine, once (about a minute); "
                  "later runs load them from numba's cache", file=sys.stderr, flush=True)
    if quiet:
        return None
    from leechcodec.progress import TqdmReporter

    return TqdmReporter(args.command)


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".heic", ".avif"}


def _check_output(path: Path, force: bool, suffix: str | None = None) -> None:
    """Refuse, before any work, an output that cannot be written (the final publish checks
    existence again, atomically: see :func:`leechcodec.fileio.atomic_write_bytes`)."""
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name")
    if suffix is not None and path.suffix.lower() != suffix:
        raise UserError(f"{path}: the output must be a {suffix} file")
    if path.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite")
    if not path.parent.is_dir():
        raise UserError(f"folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: folder {path.parent} is not writable")


def _emit(args: argparse.Namespace, record: dict, line: str) -> None:
    print(json.dumps(record) if args.json else line)


def _psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _model_choice(args: argparse.Namespace) -> tuple[str, int | None]:
    """``(name, quality)`` from ``--model``/``--quality``, checked against the registry before
    torch loads; a quality the default model lacks is refused with the models that have it."""
    from leechcodec.zoo import DEFAULT_MODEL, get_entry, list_models

    name = args.model or DEFAULT_MODEL
    if args.model is None and args.quality is not None:
        entries = list_models()
        if not any(e.name == name and e.quality == args.quality for e in entries):
            have = sorted({e.name for e in entries if e.quality == args.quality})
            mine = sorted(e.quality for e in entries if e.name == name)
            raise UserError(f"the default model {name} has quality {', '.join(map(str, mine)) or 'none'} only; "
                            + (f"quality {args.quality} exists for --model {' / '.join(have)}" if have
                               else f"no model has quality {args.quality}") + " (see `leechcodec models`)")
    get_entry(name, args.quality)  # an unknown model or quality
    return name, args.quality


def cmd_encode(args: argparse.Namespace) -> int:
    from leechcodec.fileio import atomic_write_bytes
    from leechcodec.imageio import load_image
    from leechcodec.zoo import load_model

    out = Path(args.output)
    if out.suffix.lower() in _IMAGE_SUFFIXES:
        raise UserError(f"{out}: encode writes a .lq bitstream, not a {out.suffix} image; name the output .lq")
    _check_output(out, args.force)
    if args.refine < 0:
        raise UserError(f"--refine must be >= 0, got {args.refine}")
    rgb = load_image(args.input)
    choice = _model_choice(args)
    from leechcodec.codec import compress  # torch: after the checks above, so that a mistake is reported at once

    entry, model = load_model(*choice)
    reporter = _start_codec(args)

    def refine_progress(step: int, cost: float) -> None:
        if step:
            reporter.advance(1)
            reporter.bar.set_postfix(cost=f"{cost:.4f}", refresh=False)

    if reporter is not None and args.refine:
        reporter.stage("refine", args.refine)
    from leechcodec.progress import reporting

    try:
        with reporting(reporter):
            res = compress(model, entry, rgb, refine=args.refine,
                           progress=refine_progress if reporter is not None and args.refine else None)
    finally:
        if reporter is not None:
            reporter.close()
    atomic_write_bytes(out, res.data, overwrite=args.force)
    h, w = rgb.shape[:2]
    record = {"input": str(args.input), "output": str(out), "model": entry.key, "width": w, "height": h,
              "bytes": len(res.data), "bpp": res.bpp, "ideal_bits": res.ideal_bits, "seconds": res.seconds,
              "refine": args.refine}
    _emit(args, record, f"{out}: {len(res.data):,} bytes, {res.bpp:.4f} bpp, {w}x{h}, {entry.key}, {res.seconds:.2f} s")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from leechcodec.bitstream import container
    from leechcodec.imageio import MAX_PIXELS, save_image

    out = Path(args.output)
    _check_output(out, args.force, suffix=".png")
    src = Path(args.input)
    if not src.is_file():
        raise UserError(f"{src}: no such file")
    t0 = time.perf_counter()
    data = src.read_bytes()
    header = container.peek_header(data)  # before the model and torch load; decompress checks the rest
    if header.height * header.width > MAX_PIXELS:
        raise UserError(f"{src}: header claims {header.width}x{header.height} pixels; "
                        f"the encoder writes at most {MAX_PIXELS:,}")
    from leechcodec.codec import decompress
    from leechcodec.progress import reporting

    reporter = _start_codec(args)
    try:
        with reporting(reporter):
            rgb = decompress(data)
    finally:
        if reporter is not None:
            reporter.close()
    seconds = time.perf_counter() - t0
    save_image(out, rgb, overwrite=args.force, grey=header.channel_mode == container.CHANNELS_GREY)
    h, w = rgb.shape[:2]
    record = {"input": str(src), "output": str(out), "width": w, "height": h, "bytes": len(data),
              "bpp": 8 * len(data) / (h * w), "seconds": seconds}
    _emit(args, record, f"{out}: {w}x{h} from {len(data):,} bytes ({record['bpp']:.4f} bpp), {seconds:.2f} s")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from leechcodec.bitstream import container

    src = Path(args.input)
    if not src.is_file():
        raise UserError(f"{src}: no such file")
    data = src.read_bytes()
    header, chunks = container.unpack(data)
    record = {"file": str(src), "bytes": len(data), "format_version": list(header.format_version),
              "model": header.model_key, "weights_sha256_prefix": header.weights_sha256_prefix.hex(),
              "width": header.width, "height": header.height,
              "padded": [header.padded_height, header.padded_width], "coder_profile": header.coder_profile,
              "prior": container.CODER_PROFILES[header.coder_profile].split("; ")[-1],
              "chunks": [len(c) for c in chunks], "bpp": 8 * len(data) / (header.width * header.height)}
    _emit(args, record, f"{src}: .lq {header.format_version[0]}.{header.format_version[1]}, {header.width}x{header.height}, "
          f"model {header.model_key} ({record['weights_sha256_prefix']}), {len(data):,} bytes, {record['bpp']:.4f} bpp, "
          f"chunks {record['chunks']}, coder profile {header.coder_profile}: {record['prior']}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from leechcodec.zoo import DEFAULT_MODEL, get_entry, list_models

    entries = list_models()
    try:
        default = get_entry(DEFAULT_MODEL).key
    except ValueError:
        default = None
    if args.json:  # every registry field (name, quality, quantizer, key, file, sha256, lmbda, budget,
        # provenance) and whether encode uses it without --model/--quality
        print(json.dumps([{**e.to_json(), "default": e.key == default} for e in entries], indent=1))
        return 0
    if not entries:
        print("no models installed")
        return 0
    print(f"{'model':24s} {'quality':>7s}  {'quantizer':9s} {'λ':>8s} {'steps':>7s}  file")
    for e in entries:
        mark = "  (default)" if e.key == default else ""
        print(f"{e.name:24s} {e.quality:>7d}  {e.quantizer:9s} {e.lmbda:>8g} {e.budget.get('steps', '?'):>7}  "
              f"{e.file}{mark}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Encode and decode the bundled sample photo; print size, bpp and PSNR."""
    import tempfile

    from leechcodec.codec import compress, decompress
    from leechcodec.imageio import load_image
    from leechcodec.zoo import load_model

    sample = Path(__file__).with_name("data") / "sample.png"
    rgb = load_image(sample)
    entry, model = load_model(*_model_choice(args))
    reporter = _start_codec(args)
    if reporter is not None:
        reporter.close()  # the sample is small: the notice is what matters here
    res = compress(model, entry, rgb)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.lq"
        path.write_bytes(res.data)
        t0 = time.perf_counter()
        rec = decompress(path.read_bytes())
        dec_s = time.perf_counter() - t0
    h, w = rgb.shape[:2]
    psnr = _psnr(rgb, rec)
    record = {"image": str(sample), "model": entry.key, "width": w, "height": h, "bytes": len(res.data),
              "bpp": res.bpp, "psnr_rgb": psnr, "encode_s": res.seconds, "decode_s": dec_s}
    _emit(args, record, f"sample {w}x{h} ({entry.key}): {len(res.data):,} bytes, {res.bpp:.4f} bpp, "
          f"PSNR {psnr:.2f} dB, encode {res.seconds:.2f} s, decode {dec_s:.2f} s")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from leechcodec import train

    return train.leave(train.run(args))


def build_parser(command: str | None = "train") -> argparse.ArgumentParser:
    """The CLI's parser. The ``train`` subcommand's options come from :mod:`leechcodec.train`,
    which imports torch; they are built only when ``command`` is ``"train"``, so that the
    other commands start without loading torch."""
    from leechcodec import __version__
    from leechcodec.bitstream.container import FORMAT_VERSION

    p = argparse.ArgumentParser(prog="leechcodec", description="Λ24-SQ learned image codec")
    p.add_argument("-v", "--verbose", action="store_true", help="log details; show tracebacks")
    p.add_argument("--version", action="version",
                   version=f"leechcodec {__version__} (writes .lq format {FORMAT_VERSION[0]}.{FORMAT_VERSION[1]})")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, json_flag: bool = True, threads: bool = True) -> None:
        # -v also after the subcommand (SUPPRESS: absent here, the top-level value stands)
        sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log details; show tracebacks")
        if json_flag:
            sp.add_argument("--json", action="store_true", help="print one JSON record instead of a summary")
        if threads:
            sp.add_argument("--threads", type=int, default=None, metavar="N",
                            help="CPU threads for torch and the numba kernels alike (default: torch's, "
                                 "the physical cores this process may use)")
            sp.add_argument("-q", "--quiet", action="store_true",
                            help="no progress bar or first-run notice on stderr (they only appear on a terminal)")

    sp = sub.add_parser("encode", help="image → .lq")
    sp.add_argument("input")
    sp.add_argument("output")
    sp.add_argument("--model", default=None, help="zoo model name (see `leechcodec models`; default: the one "
                                                   "marked (default))")
    sp.add_argument("--quality", type=int, default=None, metavar="Q",
                    help="rate point of the model, 1 (fewest bits) upwards; the zoo families (leech24, bsq, "
                         "scalar) have 1-6, the default model only 3")
    sp.add_argument("--refine", type=int, default=0, metavar="N",
                    help="N iterations of encoder-side latent refinement: slower encode, lower RD cost, "
                         "same decoder (about 0.4 s per iteration for a 768x512 image on 2 threads; "
                         "see leechcodec.refine)")
    sp.add_argument("-f", "--force", action="store_true", help="overwrite the output")
    common(sp)
    sp.set_defaults(func=cmd_encode)

    sp = sub.add_parser("decode", help=".lq → PNG")
    sp.add_argument("input")
    sp.add_argument("output")
    sp.add_argument("-f", "--force", action="store_true", help="overwrite the output")
    common(sp)
    sp.set_defaults(func=cmd_decode)

    sp = sub.add_parser("info", help="describe a .lq file")
    sp.add_argument("input")
    common(sp, threads=False)
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("models", help="list the shipped models")
    common(sp, threads=False)
    sp.set_defaults(func=cmd_models)

    sp = sub.add_parser("demo", help="encode + decode the bundled sample photo")
    sp.add_argument("--model", default=None, help="zoo model name (default: the default model)")
    sp.add_argument("--quality", type=int, default=None, metavar="Q", help="its rate point (see encode --help)")
    common(sp)
    sp.set_defaults(func=cmd_demo)

    if command == "train":
        from leechcodec import train

        sp = sub.add_parser("train", help="train a model (see `leechcodec train --help`)")
        train.build_parser(sp)
    else:
        sp = sub.add_parser("train", help="train a model (see `leechcodec train --help`)", add_help=False)
        sp.add_argument("train_args", nargs=argparse.REMAINDER)
    sp.set_defaults(func=cmd_train)

    try:
        from leechcodec.bench.cli import add_bench_parser, add_plot_parser
    except ImportError:  # pragma: no cover - the harness ships with the package
        pass
    else:
        add_bench_parser(sub)
        add_plot_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from leechcodec.runtime import configure_environment

    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    configure_environment(command)  # before torch or numba load OpenMP
    # CompressAI's import calls torch.jit.script, which recent torch flags as deprecated.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure ends in one line and status 1 (-v: the traceback)
        if args.verbose:
            raise
        print(f"leechcodec {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, FileExistsError) and exc.filename:
        return f"{exc.filename} exists; use --force to overwrite"
    if isinstance(exc, (UserError, ValueError)):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    if isinstance(exc, MemoryError) or "alloc" in str(exc).lower() and "memory" in str(exc).lower():
        return "out of memory (try a smaller image, or a machine with more memory)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"internal error: {type(exc).__name__}{': ' + first if first else ''} (run with -v for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
