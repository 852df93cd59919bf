"""How much could a spatial context save on a trained gain–shape model? Two cheap oracles.

For the non-anchor positions of a checkerboard (``i + j`` odd), on real images:

- **Shapes.** The Λ24 shape prior's ``a`` acts as a mean direction. The simplest context
  adds ``κ`` times the sum of the 4 neighbouring anchors' unit directions (same token, same
  channel) to ``a``; the script sweeps ``κ`` and reports the non-anchor shape bits under the
  exact prior. It also reports the mean cosine between horizontally neighbouring tokens'
  shapes (random directions in 24 dimensions: about 0.16 in absolute value).
- **Gains.** The residual variance of the gain levels around the hyperprior's mean ``μ``,
  against a least-squares fit of ``μ`` and the mean gain of the 4 neighbours.

Everything is the float model in evaluation mode (``LeechCodecModel.quantize_latent``);
nothing is trained, so a learned context can do better than these, and a context that
cannot beat them has little to find::

    LEECHCODEC_DATA=../shared/data python -m leechcodec.bench.micro.context_oracle \\
        --model leech24gs-n128-v4 --quality 3 --images 6 --out bench/results/context_oracle.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

KAPPAS = (-0.1, 0.0, 0.02, 0.05, 0.1, 0.2, 0.5)


def measure(model, rgb: np.ndarray) -> dict:
    import torch
    import torch.nn.functional as F

    from leechcodec.latent_codecs import gain_likelihood
    from leechcodec.models import anchor_mask, pad_to_multiple

    x = pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, model.stride)
    m, k = model.config.latent_channels, model.config.tokens
    with torch.no_grad():
        y = model.g_a(x)
        z_hat, _ = model.entropy_bottleneck(model.h_a(y))
        q, (a, b, mu, sigma) = model.quantize_latent(y, z_hat, False)
        codes, g, mask = q.rate_input.split([m, k, k], 1)
        h, w = y.shape[-2:]
        anchors = anchor_mask(h, w)
        others = (~anchors).flatten().repeat(k)[None]
        shape_bits = -model.token_log_prob(a, b, codes) / math.log(2) * mask.flatten(1)
        gain_bits = -torch.log2(gain_likelihood(g, mu, sigma))
        unit = q.y_hat.reshape(1, k, m // k, h, w)
        unit = unit / unit.norm(dim=2, keepdim=True).clamp_min(1e-9)
        both = (g[..., :, 1:] > 0) & (g[..., :, :-1] > 0)
        cos = (unit[..., :, 1:] * unit[..., :, :-1]).sum(2)[both]
        kernel = torch.zeros(m, 1, 3, 3)
        kernel[:, 0, 0, 1] = kernel[:, 0, 2, 1] = kernel[:, 0, 1, 0] = kernel[:, 0, 1, 2] = 1
        near = F.conv2d(unit.reshape(1, m, h, w) * anchors, kernel, padding=1, groups=m)
        sweep = {}
        for kappa in KAPPAS:
            a2 = torch.where(anchors, a, (a + kappa * near).clamp(-16, 16))
            bits = -model.token_log_prob(a2, b, codes) / math.log(2) * mask.flatten(1)
            sweep[kappa] = float((bits * others).sum())
        gp = F.pad(g[0], (1, 1, 1, 1))
        neighbours = (gp[:, :-2, 1:-1] + gp[:, 2:, 1:-1] + gp[:, 1:-1, :-2] + gp[:, 1:-1, 2:]) / 4
    return {"pixels": rgb.shape[0] * rgb.shape[1], "shape_bits": float(shape_bits.sum()),
            "gain_bits": float(gain_bits.sum()), "cos": cos.numpy(), "sweep": sweep,
            "gains": g[0].flatten().numpy(), "mu": mu[0].flatten().numpy(), "neighbours": neighbours.flatten().numpy()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.micro.context_oracle", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="leech24gs-n128-v4")
    p.add_argument("--quality", type=int, default=3)
    p.add_argument("--data-dir", type=Path, default=None, help="images (default: $LEECHCODEC_DATA/kodak)")
    p.add_argument("--images", type=int, default=6, help="every 4th image of the folder, this many")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    from leechcodec.bench.datasets import list_images
    from leechcodec.bench.runner import load_rgb
    from leechcodec.zoo import load_model

    folder = args.data_dir or Path(os.environ.get("LEECHCODEC_DATA", "data")) / "kodak"
    paths = list_images(folder)[::4][: args.images]
    entry, model = load_model(args.model, args.quality)
    model.eval()
    runs = [measure(model, load_rgb(path)) for path in paths]
    shape = sum(r["shape_bits"] for r in runs)
    gain = sum(r["gain_bits"] for r in runs)
    sweep = {kappa: sum(r["sweep"][kappa] for r in runs) for kappa in KAPPAS}
    best = min(sweep, key=sweep.get)
    gains, mu, nb = (np.concatenate([r[key] for r in runs]) for key in ("gains", "mu", "neighbours"))
    design = np.stack([mu, nb, np.ones_like(mu)], 1)
    coef, *_ = np.linalg.lstsq(design, gains, rcond=None)
    cos = np.concatenate([r["cos"] for r in runs])
    record = {
        "model": entry.key, "images": [path.name for path in paths],
        "bpp": (shape + gain) / sum(r["pixels"] for r in runs),
        "gain_share_of_token_bits": gain / (shape + gain),
        "neighbour_shape_cosine": {"mean": float(cos.mean()), "mean_abs": float(np.abs(cos).mean()),
                                   "random_mean_abs": math.sqrt(2 / math.pi / 24)},
        "shape_context_sweep": {"kappa": list(KAPPAS), "non_anchor_shape_bits": [sweep[k] for k in KAPPAS],
                                "best_kappa": best, "best_saving": 1 - sweep[best] / sweep[0.0],
                                "best_saving_of_token_bits": (sweep[0.0] - sweep[best]) / (shape + gain)},
        "gain_residual_variance": {"hyperprior_mu": float(np.mean((gains - mu) ** 2)),
                                   "mu_and_neighbours": float(np.mean((gains - design @ coef) ** 2)),
                                   "fit": [float(c) for c in coef]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    s = record["shape_context_sweep"]
    print(f"{entry.key}, {len(paths)} images: gains {100 * record['gain_share_of_token_bits']:.1f} % of the token bits; "
          f"neighbouring shapes' |cos| {record['neighbour_shape_cosine']['mean_abs']:.3f} (random 0.163); "
          f"κ = {best}: non-anchor shape bits −{100 * s['best_saving']:.2f} % "
          f"({100 * s['best_saving_of_token_bits']:.2f} % of the token bits); gain residual variance "
          f"{record['gain_residual_variance']['hyperprior_mu']:.3f} → {record['gain_residual_variance']['mu_and_neighbours']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
