"""What float16 weights cost: Kodak bpp and PSNR of zoo models with float32 weights and with
their large tensors rounded to float16 (as ``zoo.write_safetensors`` stores them).

    LEECHCODEC_DATA=../shared/data python -m leechcodec.bench.micro.bench_weights \\
        [--models leech24-hyper:3,leech24:1,leech24:6,scalar:3] [--images 24] [--out bench/results/weights_float16.json]

Every image is encoded and decoded with both variants in the same process (in turn); the
record gives the per-model means, the mean and largest per-image differences, and the
weights-file sizes in float32 and float16.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from leechcodec.bench.results import write_record

REPO = Path(__file__).resolve().parents[2]


def _float16_copy(model):
    """``model`` with its weights as a float16 safetensors file would restore them."""
    from leechcodec.zoo import stored_tensor

    twin = copy.deepcopy(model)
    if hasattr(twin, "zoo_entry"):
        del twin.zoo_entry
    with torch.no_grad():
        for value in twin.state_dict().values():
            value.copy_(stored_tensor(value, float16=True))
    return twin


def _size(model, float16: bool) -> int:
    from safetensors.numpy import save

    from leechcodec.zoo import stored_tensor

    return len(save({k: stored_tensor(v, float16).numpy() for k, v in model.state_dict().items()}))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def main(argv: list[str] | None = None) -> int:
    import leechcodec
    from leechcodec.imageio import load_image

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="leech24-hyper:3,leech24:1,leech24:6,scalar:3")
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("LEECHCODEC_DATA", "")) / "kodak")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "weights_float16.json")
    args = p.parse_args(argv)
    images = sorted(args.data.glob("kodim*.png"))[: args.images]
    if not images:
        p.error(f"no Kodak images in {args.data}")
    record = {"images": len(images), "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "models": {}}
    for spec in args.models.split(","):
        name, quality = spec.split(":")
        model = leechcodec.load_model(name, int(quality))
        twin = _float16_copy(model)
        rows = []
        for path in images:
            rgb = load_image(path)
            pixels = rgb.shape[0] * rgb.shape[1]
            row = {}
            for label, net in (("float32", model), ("float16", twin)):
                data = leechcodec.compress(rgb, model=net, name=f"{label}-check")
                out = leechcodec.decompress(data, model=net)
                row[label] = (8 * len(data) / pixels, _psnr(rgb, out))
            rows.append(row)
        bpp32, psnr32 = (float(np.mean([r["float32"][i] for r in rows])) for i in (0, 1))
        bpp16, psnr16 = (float(np.mean([r["float16"][i] for r in rows])) for i in (0, 1))
        dpsnr = [r["float16"][1] - r["float32"][1] for r in rows]
        dbpp = [r["float16"][0] - r["float32"][0] for r in rows]
        rec = {"bpp_float32": bpp32, "psnr_float32": psnr32, "bpp_float16": bpp16, "psnr_float16": psnr16,
               "delta_psnr_mean": float(np.mean(dpsnr)), "delta_psnr_max_abs": float(np.max(np.abs(dpsnr))),
               "delta_bpp_mean": float(np.mean(dbpp)), "delta_bpp_max_abs": float(np.max(np.abs(dbpp))),
               "bytes_float32": _size(model, False), "bytes_float16": _size(model, True)}
        record["models"][spec] = rec
        print(f"{spec:18s} PSNR {psnr32:.3f} -> {psnr16:.3f} dB (mean Δ {rec['delta_psnr_mean']:+.4f}, "
              f"max |Δ| {rec['delta_psnr_max_abs']:.4f}); bpp {bpp32:.4f} -> {bpp16:.4f}; "
              f"{rec['bytes_float32'] / 2**20:.1f} -> {rec['bytes_float16'] / 2**20:.1f} MiB", flush=True)
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
