"""Training: ``leechcodec train`` / ``python -m leechcodec.train``.

Loss = λ·255²·MSE + bits per pixel, the bits being the exact rate of the token prior plus
the hyper-latent rate (the rate the coder pays, up to coder overhead), plus CompressAI's
EntropyBottleneck auxiliary loss on a separate optimizer.

Reproducible and resumable: crops come from a seeded numpy generator whose state is saved
in every checkpoint with the torch RNG state, model and optimizers; a run resumed from a
checkpoint continues the same sequence as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from leechcodec.models import LeechCodecModel, ModelConfig, pad_to_multiple

log = logging.getLogger("leechcodec.train")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class TrainConfig:
    data: str
    out: str
    lmbda: float = 0.01
    steps: int = 20000
    batch: int = 8
    crop: int = 256
    lr: float = 2e-4
    lr_decay_from: float = 0.8  # fraction of steps after which lr decays linearly to lr/10
    quant_warmup: float = 0.0  # fraction of steps over which g_s's input goes from tokens to codewords
    seed: int = 0
    max_side: int = 1536  # larger training images are downscaled (reduces JPEG artefacts)
    val_dir: str | None = None
    val_images: int = 4
    val_every: int = 1000
    ckpt_every: int = 500


def list_images(folder: str | Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images found under {folder}")
    return files


def load_training_images(folder: str | Path, min_side: int, max_side: int) -> list[np.ndarray]:
    """All images of a folder as uint8 (H, W, 3), downscaled so the long side ≤ max_side."""
    images = []
    for path in list_images(folder):
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = max_side / max(im.size)
            if scale < 1:
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
            if min(im.size) >= min_side:
                images.append(np.asarray(im))
    return images


class CropSampler:
    """Random crops with random horizontal flips from a fixed, seeded generator."""

    def __init__(self, images: list[np.ndarray], crop: int, seed: int) -> None:
        self.images, self.crop = images, crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, self.crop, self.crop, 3), dtype=np.uint8)
        for k in range(n):
            img = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(img.shape[0] - self.crop + 1)
            x = self.rng.integers(img.shape[1] - self.crop + 1)
            patch = img[y : y + self.crop, x : x + self.crop]
            out[k] = patch[:, ::-1] if self.rng.integers(2) else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    start = cfg.lr_decay_from * cfg.steps
    if step < start:
        return cfg.lr
    frac = (step - start) / max(1.0, cfg.steps - start)
    return cfg.lr * (1 - 0.9 * frac)


def quant_mix(cfg: TrainConfig, step: int) -> float:
    """Quantization warm-up: 0 → 1 linearly over the first ``quant_warmup`` of the steps."""
    ramp = cfg.quant_warmup * cfg.steps
    return 1.0 if step >= ramp else step / ramp


@torch.no_grad()
def validate(model: LeechCodecModel, images: list[np.ndarray]) -> dict:
    """Mean estimated bpp (exact prior rate) and PSNR over full images."""
    model.eval()
    bpps, psnrs = [], []
    for img in images:
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255
        out = model(pad_to_multiple(x, model.stride))
        h, w = img.shape[:2]
        x_hat = out.x_hat[..., :h, :w].clamp(0, 1)
        mse = torch.mean((x_hat - x) ** 2).item()
        psnrs.append(10 * math.log10(1 / max(mse, 1e-12)))
        bpps.append(float(out.token_bits.sum() + out.hyper_bits.sum()) / (h * w))
    model.train()
    return {"bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))}


def save_checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, model_cfg: ModelConfig, resume: bool = True) -> Path:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    model = LeechCodecModel(model_cfg)
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    images = load_training_images(cfg.data, cfg.crop, cfg.max_side)
    sampler = CropSampler(images, cfg.crop, cfg.seed)
    val = [np.asarray(Image.open(p).convert("RGB")) for p in list_images(cfg.val_dir)[: cfg.val_images]] if cfg.val_dir else []
    step, elapsed = 0, 0.0
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        if state["model_config"] != model_cfg.to_dict() or state["train_config"]["seed"] != cfg.seed:
            raise ValueError(f"{ckpt_path} was made with another configuration; use a new --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.set_rng_state(state["torch_rng"])
        step, elapsed = state["step"], state["elapsed_s"]
        log.info("resumed from %s at step %d", ckpt_path, step)
    log_path = out / "log.jsonl"
    if log_path.exists():  # drop records written after the checkpoint by an interrupted run
        kept = [ln for ln in log_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        log_path.write_text("".join(ln + "\n" for ln in kept))
    log_file = open(log_path, "a")
    model.train()
    try:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train", dynamic_ncols=True)
    except ImportError:  # pragma: no cover
        bar = None
    while step < cfg.steps:
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        x = sampler.batch(cfg.batch)
        mix = quant_mix(cfg, step)
        outp = model(x, quant_mix=mix)
        npix = x.shape[0] * x.shape[2] * x.shape[3]
        bpp = (outp.token_bits.sum() + outp.hyper_bits.sum()) / npix
        mse = torch.mean((outp.x_hat - x) ** 2)
        loss = cfg.lmbda * 255**2 * mse + bpp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main_params, 1.0)
        opt.step()
        aux_loss = model.entropy_bottleneck.loss()
        aux_opt.zero_grad(set_to_none=True)
        aux_loss.backward()
        aux_opt.step()
        step += 1
        elapsed += time.perf_counter() - t0
        record = {"step": step, "loss": loss.item(), "bpp": bpp.item(),
                  "psnr": 10 * math.log10(1 / max(mse.item(), 1e-12)), "aux": aux_loss.item(),
                  "lr": learning_rate(cfg, step - 1), "quant_mix": mix, "elapsed_s": round(elapsed, 2)}
        if val and (step % cfg.val_every == 0 or step == cfg.steps):
            record.update({f"val_{k}": v for k, v in validate(model, val).items()})
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(bpp=f"{record['bpp']:.3f}", psnr=f"{record['psnr']:.2f}")
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            save_checkpoint(
                ckpt_path, model=model.state_dict(), opt=opt.state_dict(), aux_opt=aux_opt.state_dict(),
                sampler_rng=sampler.rng.bit_generator.state, torch_rng=torch.get_rng_state(),
                step=step, elapsed_s=elapsed, model_config=model_cfg.to_dict(),
                train_config=cfg.__dict__, crops_seen=step * cfg.batch,
            )
    if bar is not None:
        bar.close()
    log_file.close()
    return ckpt_path


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="leechcodec train", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of training images (searched recursively)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt and log.jsonl (resumes if present)")
    p.add_argument("--quantizer", choices=["leech24", "bsq"], default="leech24")
    p.add_argument("--tokens", type=int, default=8, help="tokens per latent position (k)")
    p.add_argument("--bsq-dim", type=int, default=18)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--hyper-channels", type=int, default=64)
    p.add_argument("--lmbda", type=float, default=0.01, help="loss = λ·255²·MSE + bpp")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--quant-warmup", type=float, default=0.0,
                   help="fraction of steps over which g_s's input ramps from tokens to codewords")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-side", type=int, default=1536)
    p.add_argument("--val-dir", default=None, help="validation images (e.g. Kodak)")
    p.add_argument("--val-images", type=int, default=4, help="validate on the first N images of --val-dir")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--ckpt-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=None, help="torch/numba threads")
    p.add_argument("--no-resume", action="store_true", help="refuse to resume; start over")
    return p


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
        import numba

        numba.set_num_threads(args.threads)
    cfg = TrainConfig(data=args.data, out=args.out, lmbda=args.lmbda, steps=args.steps, batch=args.batch,
                      crop=args.crop, lr=args.lr, quant_warmup=args.quant_warmup, seed=args.seed, max_side=args.max_side,
                      val_dir=args.val_dir, val_images=args.val_images, val_every=args.val_every,
                      ckpt_every=args.ckpt_every)
    mcfg = ModelConfig(quantizer=args.quantizer, tokens=args.tokens, bsq_dim=args.bsq_dim,
                       channels=args.channels, hyper_channels=args.hyper_channels)
    if args.no_resume and (Path(args.out) / "checkpoint.pt").exists():
        raise SystemExit(f"{args.out} already holds a checkpoint and --no-resume was given")
    train(cfg, mcfg, resume=not args.no_resume)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
