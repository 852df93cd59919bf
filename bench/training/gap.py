"""Seen against unseen: a model's loss on images it trained on and on Kodak, for several models.

A model that keeps improving on the photos it trains on while Kodak stands still is limited by
its data, not by its steps. ``gap`` takes models of one line (zoo keys such as
``leech24gs-n128-v4.q3``, or ``checkpoint.pt`` files) and reports, from the float model (the
estimated rate under the exact prior and the reconstruction rounded to 8 bits, as training's
validation and ``curve add --estimate``), the mean bpp, PSNR and training loss
``λ·255²·MSE + bpp`` on two sets:

* *seen*: every ``--every``-th image of the training pack, prepared as the trainer prepares it
  (``--max-side``), whole;
* *unseen*: the Kodak images (``--data-dir``).

Each model's line also gives both losses relative to the first model's, so a line whose seen
loss falls faster than its unseen loss shows it::

    python -m leechcodec.bench.training.gap leech24gs-n128-v1.q3 leech24gs-n128-v4.q3 runs/flagship/v5cool/checkpoint.pt \\
        --pack runs/flagship/train.tar --data-dir ../shared/data/kodak --out bench/results/training/flagship/gap.json

The λ of every model is the first model's unless ``--lmbda`` is given: the loss compares models
only under one λ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["load", "losses", "main"]


def load(source: str):
    """``(model, λ, label)`` of a zoo key (``name.qN``) or a checkpoint file (eval mode, float32)."""
    from leechcodec.bench.training.curve import load_state, model_of

    path = Path(source)
    if path.suffix == ".pt" or path.is_file():
        state = load_state(path)
        return model_of(state), float(state["train_config"]["lmbda"]), f"{source} (step {state['step']})"
    from leechcodec.zoo import entry_from_key, load_model

    entry = entry_from_key(source)
    _, model = load_model(entry.name, entry.quality)
    return model.eval(), float(entry.lmbda), source


def losses(model, images: list[np.ndarray], lmbda: float) -> dict:
    """Mean estimated bpp, PSNR and ``λ·255²·MSE + bpp`` (per image, MSE of the 8-bit
    reconstruction on [0, 1], then averaged) over ``images`` (:func:`curve.float_code`)."""
    from leechcodec.bench.training.curve import float_code

    bpp, psnr, loss = [], [], []
    for rgb in images:
        rate, x_hat = float_code(model, rgb)
        mse = float(np.mean((x_hat.astype(np.float64) - rgb) ** 2)) / 255 ** 2
        bpp.append(rate)
        psnr.append(10 * np.log10(1 / max(mse, 1e-12)))
        loss.append(lmbda * 255 ** 2 * mse + rate)
    return {"bpp": float(np.mean(bpp)), "psnr": float(np.mean(psnr)), "loss": float(np.mean(loss))}


def _table(rows: list[dict]) -> str:
    lines = ["| model | seen bpp | seen PSNR | seen loss | unseen bpp | unseen PSNR | unseen loss "
             "| seen loss vs first | unseen loss vs first |", "|---|" + "---:|" * 8]
    for r in rows:
        s, u = r["seen"], r["unseen"]
        lines.append(f"| {r['model']} | {s['bpp']:.4f} | {s['psnr']:.2f} dB | {s['loss']:.4f} | {u['bpp']:.4f} "
                     f"| {u['psnr']:.2f} dB | {u['loss']:.4f} | {100 * r['seen_vs_first']:+.2f} % "
                     f"| {100 * r['unseen_vs_first']:+.2f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.training.gap", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="zoo keys (name.qN) or checkpoint.pt files, oldest first")
    p.add_argument("--pack", required=True, help="the training pack (relay pack) or folder the models trained on")
    p.add_argument("--data-dir", required=True, help="the unseen images (e.g. ../shared/data/kodak)")
    p.add_argument("--every", type=int, default=10, help="take every N-th training image (default 10)")
    p.add_argument("--max-side", type=int, default=1024, help="as the trainer's --max-side (default 1024)")
    p.add_argument("--images", type=int, default=None, help="the first N unseen images only")
    p.add_argument("--lmbda", type=float, default=None, help="λ of the loss (default: the first model's)")
    p.add_argument("--out", default=None, help="also write the rows here (JSON)")
    args = p.parse_args(argv)
    if args.every < 1:
        p.error("--every must be at least 1")

    from tqdm import tqdm

    from leechcodec.bench.runner import load_rgb
    from leechcodec.traindata import list_images, load_training_images

    seen = load_training_images(args.pack, 0, args.max_side)[:: args.every]
    unseen = [load_rgb(f) for f in list_images(args.data_dir)[: args.images]]
    rows: list[dict] = []
    lmbda = args.lmbda
    for source in tqdm(args.models, desc="gap", unit="model"):
        model, own_lmbda, label = load(source)
        lmbda = own_lmbda if lmbda is None else lmbda
        row = {"model": label, "seen": losses(model, seen, lmbda), "unseen": losses(model, unseen, lmbda)}
        first = rows[0] if rows else row
        row["seen_vs_first"] = row["seen"]["loss"] / first["seen"]["loss"] - 1
        row["unseen_vs_first"] = row["unseen"]["loss"] / first["unseen"]["loss"] - 1
        rows.append(row)
    print(_table(rows))
    if args.out:
        record = {"lmbda": lmbda, "pack": str(args.pack), "every": args.every, "max_side": args.max_side,
                  "seen_images": len(seen), "unseen_dir": str(args.data_dir), "unseen_images": len(unseen),
                  "rows": rows}
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
