"""Codec targets, measured side by side: ``python -m leechcodec.bench.micro.bench_codec``.

- encode / decode seconds of a 768×512 Kodak image (median of repeats, after a warm-up),
  next to CompressAI's bmshj2018-hyperprior (quality 3, untrained weights: timing only)
  on the same image in the same run, same thread count;
- file bits vs the ideal information content of every coded symbol, and the container
  overhead in bytes;
- peak memory (max RSS of a fresh process) to encode and to decode a 3840×2160 image, and
  with ``--large 4096,8192,65535x1`` images of those sizes (the Kodak image resized), with
  seams checked: PSNR of the pixels within 2 of a tile border of the tiled transforms (and, as a
  control for the content, of the same bands through the middle of the tiles, on 16-pixel block boundaries too)
  against the other pixels, and (up to 4096²) the largest pixel difference from an untiled
  decode;
- crafted headers: the file of the test image relabelled to claim the largest size a
  header can hold (65535²) and the encoder's limit (8192²), decoded in a fresh process:
  seconds to the error, peak memory, and the message (next to a process that only
  imports the codec and loads the model);
- determinism: identical bytes from two encoder processes, identical pixels from three
  decoder processes;
- with ``--refine N``: encoder-side latent refinement (:mod:`leechcodec.refine`) on the same
  image, its encode time, bpp and PSNR next to the plain encode, its peak memory in a fresh
  process, and identical bytes from two refining encoder processes.

Writes a JSON record (``--out``) and prints a summary table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from leechcodec.bench.results import write_record
from leechcodec.zoo import DEFAULT_MODEL, DEFAULT_QUALITY

_CHILD = r"""
import hashlib, json, resource, sys, time
import numpy as np
from PIL import Image
from leechcodec.runtime import set_threads
set_threads(int(sys.argv[3]))
from leechcodec.codec import compress, decompress
from leechcodec.zoo import load_model
mode, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "refine":
    rgb = np.asarray(Image.open(path).convert("RGB"))
    entry, model = load_model(sys.argv[4], int(sys.argv[5]))
    data = compress(model, entry, rgb, refine=int(sys.argv[6])).data
    digest = hashlib.sha256(data).hexdigest()
elif mode == "encode":
    rgb = np.asarray(Image.open(path).convert("RGB"))
    if len(sys.argv) > 6:
        rgb = np.asarray(Image.fromarray(rgb).resize((int(sys.argv[6]), int(sys.argv[7])), Image.LANCZOS))
    entry, model = load_model(sys.argv[4], int(sys.argv[5]))
    data = compress(model, entry, rgb).data
    open(path + ".lq" if len(sys.argv) <= 6 else path + f".{sys.argv[6]}x{sys.argv[7]}.lq", "wb").write(data)
    digest = hashlib.sha256(data).hexdigest()
elif mode == "load":
    entry, model = load_model(sys.argv[4], int(sys.argv[5]))
    digest = ""
elif mode == "crafted":
    try:
        decompress(open(path, "rb").read())
        digest = "decoded"
    except ValueError as exc:
        digest = "refused: " + str(exc)
elif mode == "seams":
    from leechcodec import tiling
    w, h = int(sys.argv[4]), int(sys.argv[5])
    rgb = np.asarray(Image.open(path).convert("RGB").resize((w, h), Image.LANCZOS)).astype(np.float64)
    data = open(path + f".{w}x{h}.lq", "rb").read()
    out = decompress(data)
    _, model = load_model(sys.argv[6], int(sys.argv[7]))
    err = ((out.astype(np.float64) - rgb) ** 2).mean(axis=2)  # per pixel
    tile = 16 * tiling._tile_side(model)
    def bands(first):  # 2 pixels on each side of the lines first, first + tile, ...
        mask = np.zeros((h, w), dtype=bool)
        for b in range(first, max(h, w), tile):
            mask[max(0, b - 2) : b + 2] = True
            mask[:, max(0, b - 2) : b + 2] = True
        return mask
    # tile borders; the control: the same bands through the middle of the tiles, also on a
    # 16-pixel block boundary (the synthesis transform's own grid shows at every block boundary)
    border, middle = bands(tile), bands(16 * (tile // 32))
    psnr = lambda e: float(10 * np.log10(255.0**2 / e.mean()))
    record = {"tile_px": tile, "psnr_tile_border_pixels": psnr(err[border]), "psnr_other_pixels": psnr(err[~border]),
              "psnr_mid_tile_band_pixels": psnr(err[middle & ~border]), "share_border_pixels": float(border.mean())}
    if w * h <= 4096 * 4096:
        tiling.TILE_PIXELS = 1 << 40
        whole = decompress(data)
        diff = np.abs(whole.astype(int) - out.astype(int))
        record.update(max_diff_vs_untiled=int(diff.max()), share_pixels_differing=float((diff > 0).mean()))
    digest = json.dumps(record)
else:
    out = decompress(open(path, "rb").read())
    digest = hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()
print(json.dumps({"sha256": digest, "seconds": time.perf_counter() - t0,
                  "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_RSS_WRAPPER = r"""
import json, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(run.stderr)
print(run.stdout.strip().splitlines()[-1] if run.returncode == 0 else "")
print(json.dumps({"exit_status": run.returncode,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _child(*args: str) -> dict:
    """Run the child script in a fresh process; ``max_rss_mib`` is that process's own peak.

    Linux carries a process's peak RSS over fork and exec, so a child started from this
    (large) process would report at least this process's size: the child is started from a
    small wrapper process, which reports its child's peak."""
    res = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, sys.executable, "-c", _CHILD, *args],
                         capture_output=True, text=True)
    *out, status = res.stdout.strip().splitlines()
    status = json.loads(status)
    if status["exit_status"]:
        raise RuntimeError(res.stderr.strip().splitlines()[-1])
    return {**json.loads(out[-1]), "max_rss_mib": status["peak_rss_mib"]}


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _refine_record(args, model, entry, rgb, plain, plain_s: float, image: str, threads: str) -> dict:
    """Refined encode in this process (timed once), then two fresh refining processes."""
    from leechcodec.bench.metrics import psnr_rgb
    from leechcodec.codec import compress, decompress

    t0 = time.perf_counter()
    refined = compress(model, entry, rgb, refine=args.refine)
    seconds = time.perf_counter() - t0
    runs = [_child("refine", image, threads, args.model, str(args.quality), str(args.refine)) for _ in range(2)]
    return {
        "steps": args.refine, "encode_s": seconds, "plain_encode_s_same_run": plain_s,
        "bpp": refined.bpp, "psnr_rgb": psnr_rgb(rgb, decompress(refined.data)),
        "plain_bpp": plain.bpp, "plain_psnr_rgb": psnr_rgb(rgb, decompress(plain.data)),
        "peak_rss_mib": max(r["max_rss_mib"] for r in runs),
        "encoder_processes_identical": len({r["sha256"] for r in runs}) == 1
        and runs[0]["sha256"] == hashlib.sha256(refined.data).hexdigest(),
    }


def _large_record(image: str, threads: str, args, w: int, h: int, seams: bool) -> dict:
    """Encode and decode a ``w × h`` upscale of the test image in fresh processes."""
    enc = _child("encode", image, threads, args.model, str(args.quality), str(w), str(h))
    dec = _child("decode", f"{image}.{w}x{h}.lq", threads)
    rec = {"encode_peak_rss_mib": enc["max_rss_mib"], "encode_s": enc["seconds"],
           "decode_peak_rss_mib": dec["max_rss_mib"], "decode_s": dec["seconds"],
           "bytes": Path(f"{image}.{w}x{h}.lq").stat().st_size}
    if seams:
        rec["seams"] = json.loads(_child("seams", image, threads, str(w), str(h), args.model, str(args.quality))["sha256"])
    return rec


def _crafted_record(image: str, threads: str, args) -> dict:
    """The test image's file relabelled to claim 65535² and 8192² pixels, and an 8192² claim
    with 64 KiB of random hyper data (enough to pass the chunk-size check), each with a
    valid checksum."""
    from leechcodec.bitstream import container

    header, chunks = container.unpack(Path(image + ".lq").read_bytes())
    rng = np.random.default_rng(0)
    random_chunks = [rng.integers(0, 256, 1 << 16, dtype=np.uint8).tobytes(), chunks[1]]
    rec = {"baseline_load_model": _child("load", image, threads, args.model, str(args.quality))}
    for name, side, body in [("claims_65535x65535", 65535, chunks), ("claims_8192x8192", 8192, chunks),
                             ("claims_8192x8192_random_64KiB_hyper", 8192, random_chunks)]:
        forged = container.LqHeader(
            model_key=header.model_key, weights_sha256_prefix=header.weights_sha256_prefix, height=side, width=side,
            pad_bottom=(-side) % 16, pad_right=(-side) % 16)
        path = Path(f"{image}.{name}.lq")
        path.write_bytes(container.pack(forged, body))
        run = _child("crafted", str(path), threads)
        cli = _cli_run(["decode", str(path), str(path) + ".png", "--threads", threads])
        rec[name] = {"file_bytes": path.stat().st_size, "seconds": run["seconds"],
                     "peak_rss_mib": run["max_rss_mib"], "outcome": run["sha256"], "cli": cli}
    return rec


# A small process between this one and the command, for its own peak RSS (see _child).
_CLI_WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
run = subprocess.run([sys.executable, "-m", "leechcodec.cli", *sys.argv[1:]], capture_output=True, text=True)
print(json.dumps({"exit_status": run.returncode, "stderr": run.stderr.strip()[-300:],
                  "wall_s": time.perf_counter() - t0,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _cli_run(cli_args: list[str]) -> dict:
    """``leechcodec ARGS`` in a fresh process: exit status, stderr, wall time (start-up
    included) and the command's own peak RSS (a wrapper process per call)."""
    res = subprocess.run([sys.executable, "-c", _CLI_WRAPPER, *cli_args], capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.micro.bench_codec", description=__doc__.splitlines()[0])
    p.add_argument("--image", default=None, help="a 768x512 test image (default: $LEECHCODEC_DATA/kodak/kodim01.png)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--quality", type=int, default=DEFAULT_QUALITY)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-memory", action="store_true", help="skip the 3840x2160 peak-memory runs")
    p.add_argument("--large", default="", help="comma-separated sizes to measure: SIDE or WxH (e.g. 4096,8192,65535x1)")
    p.add_argument("--crafted", action="store_true", help="measure the decoder on crafted oversize headers")
    p.add_argument("--out", default=None, help="write the JSON record here")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="also measure N steps of encoder-side refinement (one timed run)")
    args = p.parse_args(argv)

    import torch
    from compressai.zoo import bmshj2018_hyperprior
    from PIL import Image

    from leechcodec.bitstream import container
    from leechcodec.codec import compress, decompress
    from leechcodec.runtime import set_threads
    from leechcodec.zoo import load_model

    set_threads(args.threads)
    image = args.image or str(Path(os.environ.get("LEECHCODEC_DATA", "../shared/data")) / "kodak" / "kodim01.png")
    rgb = np.asarray(Image.open(image).convert("RGB"))
    h, w = rgb.shape[:2]
    entry, model = load_model(args.model, args.quality)

    res = compress(model, entry, rgb)  # warm-up (JIT, caches)
    decompress(res.data)
    enc_s = _median_time(lambda: compress(model, entry, rgb), args.repeats)
    dec_s = _median_time(lambda: decompress(res.data), args.repeats)

    ref = bmshj2018_hyperprior(quality=3, pretrained=False).eval()
    ref.update(force=True)
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        strings = ref.compress(x)
        ref.decompress(strings["strings"], strings["shape"])
        ref_enc = _median_time(lambda: ref.compress(x), args.repeats)
        ref_dec = _median_time(lambda: ref.decompress(strings["strings"], strings["shape"]), args.repeats)

    header = container.peek_header(res.data)
    overhead = container.container_overhead(len(header.model_key), 2)
    record = {
        "image": image, "size": [w, h], "model": entry.key, "threads": args.threads,
        "bytes": len(res.data), "bpp": res.bpp, "ideal_bits": res.ideal_bits,
        "file_bits_over_ideal": 8 * len(res.data) / res.ideal_bits,
        "payload_bits_over_ideal": 8 * (len(res.data) - overhead) / res.ideal_bits,
        "container_overhead_bytes": overhead,
        "encode_s": enc_s, "decode_s": dec_s,
        "bmshj2018_hyperprior_encode_s": ref_enc, "bmshj2018_hyperprior_decode_s": ref_dec,
        "encode_ratio_vs_bmshj2018": enc_s / ref_enc, "decode_ratio_vs_bmshj2018": dec_s / ref_dec,
    }

    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"leechcodec-bench-{os.getpid()}.png"
    Image.fromarray(rgb).save(tmp)
    try:
        t = str(args.threads)
        encs = [_child("encode", str(tmp), t, args.model, str(args.quality)) for _ in range(2)]
        decs = [_child("decode", str(tmp) + ".lq", t) for _ in range(3)]
        record["determinism"] = {
            "encoder_processes_identical": len({e["sha256"] for e in encs}) == 1
            and encs[0]["sha256"] == hashlib.sha256(res.data).hexdigest(),
            "decoder_processes_identical": len({d["sha256"] for d in decs}) == 1,
        }
        if not args.skip_memory:
            record["uhd_3840x2160"] = _large_record(str(tmp), t, args, 3840, 2160, seams=False)
        for item in (v for v in args.large.split(",") if v):
            lw, _, lh = item.partition("x")
            lw, lh = int(lw), int(lh or lw)
            record[f"large_{lw}x{lh}"] = _large_record(str(tmp), t, args, lw, lh, seams=min(lw, lh) >= 256)
        if args.crafted:
            record["crafted_headers"] = _crafted_record(str(tmp), t, args)
        if args.refine:
            record["refine"] = _refine_record(args, model, entry, rgb, res, enc_s, str(tmp), t)
    finally:
        for f in [tmp, *tmp.parent.glob(tmp.name + ".*")]:
            f.unlink(missing_ok=True)

    record["torch"] = torch.__version__
    record["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    if args.out:
        write_record(args.out, record)
    for k, v in record.items():
        print(f"{k:34s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
