"""How finely each model quantizes its latent: the latent's signal-to-noise ratio against the rate.

    LEECHCODEC_DATA=../shared/data python -m leechcodec.bench.micro.latent_snr leech24gs-n128-v4.q3 \\
        runs/scalar/lam002/checkpoint.pt [--images 6] [--out bench/results/latent_snr.json] [--stages]

For every model (a zoo key ``name.qN`` or a ``checkpoint.pt``) over every 4th of the first
``--images``·4 Kodak images (as ``context_oracle``), the float model's latent ``y = g_a(x)``, its
quantized ``ŷ`` (the family's own quantizer, the hyperprior's means for the scalar one) and:

* ``latent_snr_db``: ``10·log10(Σy² / Σ(y − ŷ)²)`` over all images;
* ``bpp`` and ``psnr``: the float model's estimated rate and its 8-bit reconstruction;
* gain–shape models also: the mean cosine between a token and its codeword, the mean gain of
  the coded tokens (in gain steps) and the token SNR by gain.

A gain–shape token keeps only its codeword's direction: the 196,560 minimal vectors of Λ24 are
60° apart at least, so a token's direction error, and with it the error relative to its norm,
does not shrink as the rate grows. A scalar latent's error is a fixed ±½ per channel, which
shrinks relative to the latent as the transforms scale it up.

``--stages`` asks, for gain–shape models, what the model's own g_s makes of finer shapes
(:func:`stage_oracle`): every coded token with its exact direction (the gain still quantized),
and a second, residual gain–shape stage (the residual's gain in the same steps, its direction
snapped to Λ24's minimal vectors), with that stage's rate bounded by a fixed-length code of its
shapes. Nothing is retrained, so this measures how far g_s has specialized to the codewords
(measured: finer latents *lower* the PSNR of the shipped models), not what a finer quantizer
trained from the start would give.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

from leechcodec.bench.results import write_record

__all__ = ["model_snr", "stage_oracle", "main"]


def model_snr(model, images: list[np.ndarray], lmbda: float) -> dict:
    """The latent SNR and, for gain–shape models, the token statistics of ``model`` over ``images``."""
    import torch

    from leechcodec.bench.training.gap import losses
    from leechcodec.models import pad_to_multiple

    signal = noise = 0.0
    cos, gains, token_signal, token_noise = [], [], [], []
    gain_shape = model.config.quantizer == "leech24gs"
    for rgb in images:
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            x = pad_to_multiple(x, model.stride)
            y = model.g_a(x).float()
            z_hat, _ = model.entropy_bottleneck(model.h_a(y).float())
            q, _ = model.quantize_latent(y, z_hat, training=False)
        y_hat = q.y_hat.float()
        signal += float(y.square().sum())
        noise += float((y - y_hat).square().sum())
        if gain_shape:
            t, t_hat = model.tokens_of(y)[0], model.tokens_of(y_hat)[0]  # (tokens, 24)
            norm, norm_hat = t.norm(dim=1), t_hat.norm(dim=1)
            coded = norm_hat > 0
            cos.append(((t * t_hat).sum(1)[coded] / (norm * norm_hat)[coded]).numpy())
            gains.append(np.rint(norm_hat.numpy() / model.latent_codec.gain_step))
            token_signal.append(norm.square().numpy())
            token_noise.append((t - t_hat).square().sum(1).numpy())
    out = {"latent_snr_db": 10 * math.log10(signal / noise), **losses(model, images, lmbda)}
    if gain_shape:
        g, s, n = (np.concatenate(a) for a in (gains, token_signal, token_noise))
        out.update({"mean_cos": float(np.concatenate(cos).mean()), "coded_share": float((g > 0).mean()),
                    "mean_gain": float(g[g > 0].mean()),
                    "token_snr_db_by_gain": {str(int(v)): 10 * math.log10(s[g == v].sum() / n[g == v].sum())
                                             for v in np.unique(g[g > 0])[:8]}})
    return out


def stage_oracle(model, images: list[np.ndarray]) -> dict:
    """A gain–shape model's latent SNR and 8-bit PSNR (mean over ``images``) with its tokens as
    coded (``coded``: ĝ₁·c₁, the encoder's own rounding and search), with exact directions
    (``exact_shape``: ĝ₁·t/‖t‖) and with a residual stage (``two_stage``: ĝ₁·c₁ + ĝ₂·c₂, where
    ĝ₂ rounds the residual's norm to the same gain steps and c₂ is the nearest unit minimal vector
    to its direction); ``stage2_coded_share`` is the share of tokens with ĝ₂ > 0 and
    ``stage2_shape_bpp_max`` their shapes' rate under a fixed-length code (log2 196,560 bits
    each; the second stage's gains are not counted)."""
    import torch

    from leechcodec.models import pad_to_multiple

    if model.config.quantizer != "leech24gs":
        raise ValueError(f"the stage oracle needs a gain–shape (leech24gs) model, not {model.config.quantizer}")
    step, k = model.latent_codec.gain_step, model.config.tokens

    def gain_shape(t):  # (B, 24k, h, w) -> the codec's one-stage ĝ·c and the rounded gains (B, k, h, w)
        q = model.latent_codec.quantize(model, t, None, training=False)  # the gain–shape family reads no prior
        return q.y_hat.float(), q.indices[:, k:].float()

    sums = {key: [0.0, 0.0] for key in ("coded", "exact_shape", "two_stage")}
    psnr = {key: [] for key in sums}
    coded2 = tokens = pixels = 0
    for rgb in images:
        h, w = rgb.shape[:2]
        ref = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)
        with torch.no_grad():
            y = model.g_a(pad_to_multiple(ref[None].float() / 255, model.stride)).float()
            signal = float(y.square().sum())
            bsz, c, hh, ww = y.shape
            y1, n1 = gain_shape(y)
            norm = y.reshape(bsz, k, c // k, hh, ww).norm(dim=2, keepdim=True).clamp_min(1e-12)
            exact = (y.reshape(bsz, k, c // k, hh, ww) / norm * (n1 * step)[:, :, None]).reshape(y.shape)
            r2, n2 = gain_shape(y - y1)
            for key, y_hat in (("coded", y1), ("exact_shape", exact), ("two_stage", y1 + r2)):
                sums[key][0] += signal
                sums[key][1] += float((y - y_hat).square().sum())
                x_hat = model.g_s(y_hat)[0, :, :h, :w].clamp(0, 1).mul(255).round().double()
                mse = float((x_hat - ref.double()).square().mean())
                psnr[key].append(10 * math.log10(255**2 / max(mse, 1e-12)))
        coded2 += int((n2 > 0).sum())
        tokens += n2.numel()
        pixels += h * w
    out = {key: {"latent_snr_db": 10 * math.log10(s / max(n, 1e-30)), "psnr": float(np.mean(psnr[key]))}
           for key, (s, n) in sums.items()}
    out["stage2_coded_share"] = coded2 / tokens
    out["stage2_shape_bpp_max"] = coded2 * math.log2(196560) / pixels
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.micro.latent_snr", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="zoo keys (name.qN) or checkpoint.pt files")
    p.add_argument("--images", type=int, default=6, help="Kodak images: every 4th, this many (default 6)")
    p.add_argument("--data", default=os.environ.get("LEECHCODEC_DATA"), help="data folder (default $LEECHCODEC_DATA)")
    p.add_argument("--out", default=None, help="the JSON record (default: print only)")
    p.add_argument("--stages", action="store_true",
                   help="gain–shape models also: g_s on exact directions and on a residual second stage")
    args = p.parse_args(argv)
    if not args.data:
        p.error("give --data or set LEECHCODEC_DATA")

    from leechcodec.bench.runner import load_rgb
    from leechcodec.bench.training.gap import load
    from leechcodec.traindata import list_images

    files = list_images(Path(args.data) / "kodak")[::4][: args.images]
    images = [load_rgb(f) for f in files]
    rows = {}
    for source in args.models:
        model, lmbda, label = load(source)
        rows[label] = {"lmbda": lmbda, "quantizer": model.config.quantizer, **model_snr(model, images, lmbda)}
        r = rows[label]
        extra = f", token cos {r['mean_cos']:.3f}, mean gain {r['mean_gain']:.2f}" if "mean_cos" in r else ""
        print(f"{label}: latent SNR {r['latent_snr_db']:.2f} dB at {r['bpp']:.4f} bpp, {r['psnr']:.2f} dB{extra}")
        if args.stages and r["quantizer"] == "leech24gs":
            r["stages"] = s = stage_oracle(model, images)
            print("  " + "; ".join(f"{key}: latent SNR {s[key]['latent_snr_db']:.2f} dB, PSNR {s[key]['psnr']:.2f} dB"
                                   for key in ("coded", "exact_shape", "two_stage"))
                  + f"; stage 2 codes {100 * s['stage2_coded_share']:.1f} % of tokens, "
                  f"≤ {s['stage2_shape_bpp_max']:.4f} bpp of shapes")
    if args.out:
        write_record(Path(args.out), {"images": [f.name for f in files], "models": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
