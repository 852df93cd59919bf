"""Where the bits of a gain–shape Λ24 model go: gains against shapes, and how many tokens are dropped.

    LEECHCODEC_DATA=../shared/data python -m leechcodec.bench.micro.gain_shape_stats \\
        [--model leech24gs] [--images 24] [--out bench/results/gain_shape_stats.json]

For every quality of the zoo model, over the first ``--images`` Kodak images, the record gives
the share of tokens whose gain is 0 (no shape coded), the gain histogram, and the coder's
own bits (its 24-bit integer model, as in the file) split into hyper-latents, gains and
shapes: per image, per token, per coded shape, and per coded shape by its gain (do small
gains carry cheaper shapes?). Every number comes from encoding the
images with the exact coder; nothing is estimated.

Whether the hyperprior earns its keep for the gains: ``bits_per_gain_static`` is the entropy
of all the images' gains pooled, what the best static gain distribution (one for every
token, fitted to these very images, so an optimistic bound) would pay per gain, against
``bits_per_gain``, what the hyperprior-conditioned gain prior pays in the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from leechcodec.bench.results import write_record

REPO = Path(__file__).resolve().parents[2]
#: Gains at or above this are pooled in the histogram's last bin.
HIST_BINS = 8
#: Lowest gain of each group for the bits per coded shape by gain (the last group is open).
SHAPE_GAIN_GROUPS = (1, 2, 3, 5)


def _gain_groups(levels: int) -> list[tuple[int, int, str]]:
    """``(lo, hi, key)`` of each shape group: gains ``lo ≤ ĝ < hi``, named ``"1"``, ``"3-4"``, ``"5+"``."""
    ends = (*SHAPE_GAIN_GROUPS[1:], levels)
    return [(lo, hi, f"{lo}+" if hi == levels else str(lo) if hi == lo + 1 else f"{lo}-{hi - 1}")
            for lo, hi in zip(SHAPE_GAIN_GROUPS, ends)]


def model_stats(model, images: list[np.ndarray]) -> dict:
    """Bits and gains of one gain–shape model over ``images`` (the coder's accounting)."""
    from leechcodec import coding
    from leechcodec.bitstream import ans, container
    from leechcodec.latent_codecs import GAIN_LEVELS

    tokens = dropped = 0
    hist = np.zeros(GAIN_LEVELS, dtype=np.int64)
    groups = _gain_groups(GAIN_LEVELS)
    by_gain = {key: [0.0, 0] for _, _, key in groups}  # bits and count of the coded shapes
    per_gain_bits, at_bound = [], 0
    hyper = gains_bits = shape_bits = pixels = 0.0
    coded_shapes = 0
    for rgb in images:
        enc = model.compress(rgb)
        _, p = model.decompress(enc.chunks, enc.height, enc.width, enc.padded_height, enc.padded_width,
                                container.PROFILE_DEFAULT)
        g = p["gains"]
        rows = coding._gain_tables(p["gain_mean_index"], p["scale_index"], container.PROFILE_DEFAULT)
        freq = ans.quantized_frequencies(rows)[np.arange(len(g)), g]
        per_gain_bits.append(ans.PRECISION - np.log2(freq.astype(np.float64)))
        g_bits = float(per_gain_bits[-1].sum())
        at_bound += int((p["scale_index"] == 0).sum())  # σ at the scale table's smallest entry
        tokens += len(g)
        dropped += int((g == 0).sum())
        coded_shapes += int((g > 0).sum())
        hist += np.bincount(g, minlength=GAIN_LEVELS)
        hyper += enc.hyper_ideal_bits
        gains_bits += g_bits
        shape_bits += enc.ideal_bits - enc.hyper_ideal_bits - g_bits
        pixels += rgb.shape[0] * rgb.shape[1]
        for lo, hi, key in groups:
            sel = (g >= lo) & (g < hi)
            enc_group = ans.SymbolEncoder()  # the same coder, fed only this group's shapes
            coding._code_leech(p["symbols"][sel], p["A"][sel], p["B"][sel], enc_group, container.PROFILE_DEFAULT)
            by_gain[key][0] += enc_group.ideal_bits
            by_gain[key][1] += int(sel.sum())
    share = hist[hist > 0] / tokens
    per_gain_bits = np.concatenate(per_gain_bits)
    return {"tokens": tokens, "share_gain_zero": dropped / tokens,
            "gain_histogram": {**{str(i): int(hist[i]) for i in range(HIST_BINS - 1)},
                               f"{HIST_BINS - 1}+": int(hist[HIST_BINS - 1:].sum())},
            "max_gain": int(np.nonzero(hist)[0].max()),
            "share_gain_scale_at_bound": at_bound / tokens,
            "gain_bits_quantiles": {f"{q:g}": float(np.quantile(per_gain_bits, q)) for q in (0.5, 0.9, 0.99)},
            "bits_per_gain_static": float(-(share * np.log2(share)).sum()),
            "bpp_ideal": (hyper + gains_bits + shape_bits) / pixels, "bpp_hyper": hyper / pixels,
            "bpp_gains": gains_bits / pixels, "bpp_shapes": shape_bits / pixels,
            "bits_per_gain": gains_bits / tokens, "bits_per_coded_shape": shape_bits / max(coded_shapes, 1),
            "bits_per_coded_shape_by_gain": {key: bits / n if n else None for key, (bits, n) in by_gain.items()}}


def main(argv: list[str] | None = None) -> int:
    import leechcodec
    from leechcodec.bench.datasets import list_images
    from leechcodec.imageio import load_image
    from leechcodec.zoo import list_models

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="leech24gs")
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--data-dir", type=Path, default=None, help="Kodak folder (default: $LEECHCODEC_DATA/kodak)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gain_shape_stats.json")
    args = p.parse_args(argv)
    folder = args.data_dir or Path(os.environ.get("LEECHCODEC_DATA", "../shared/data")) / "kodak"
    paths = list_images(folder)[: args.images] if folder.is_dir() else []
    if not paths:
        print(f"error: no images in {folder}", file=sys.stderr)
        return 2
    images = [load_image(path) for path in paths]
    qualities = sorted(e.quality for e in list_models() if e.name == args.model)
    if not qualities:
        print(f"error: no zoo model named {args.model!r}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    record = {"model": args.model, "images": len(images), "dataset": str(folder), "qualities": {}}
    print(f"{'q':>2} {'bpp':>7} {'hyper':>7} {'gains':>7} {'shapes':>7} {'ĝ = 0':>6} {'bits/gain':>9} "
          f"{'static':>6} {'bits/shape':>10}")
    for q in qualities:
        s = model_stats(leechcodec.load_model(args.model, q), images)
        record["qualities"][str(q)] = s
        print(f"{q:>2} {s['bpp_ideal']:7.4f} {s['bpp_hyper']:7.4f} {s['bpp_gains']:7.4f} {s['bpp_shapes']:7.4f} "
              f"{s['share_gain_zero']:6.1%} {s['bits_per_gain']:9.2f} {s['bits_per_gain_static']:6.2f} "
              f"{s['bits_per_coded_shape']:10.2f}", flush=True)
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
