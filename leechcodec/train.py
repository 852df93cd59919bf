"""Training: ``leechcodec train`` / ``python -m leechcodec.train``.

Loss = λ·255²·MSE + bits per pixel, the bits being the exact rate of the token prior plus
the hyper-latent rate (the rate the coder pays, up to coder overhead), plus CompressAI's
EntropyBottleneck auxiliary loss on a separate optimizer.

Device and precision
    ``--device auto|cpu|cuda`` (auto: CUDA when available) holds the model, the batches
    and the quantizer search (the numba kernel on CPU, ``leech_search_torch`` on CUDA).
    ``--amp off|bf16|fp16`` (default: bf16 on CUDA, off on CPU) runs the transforms g_a,
    g_s, h_a, h_s under autocast. The quantizer search, the EntropyBottleneck and the
    prior's log-probabilities and partition function run in float32
    (``LeechCodecModel.forward`` leaves autocast for them), and so do the loss, the aux
    loss and validation. fp16 scales the loss with a ``GradScaler``.

Several processes (DDP)
    Launched by torchrun (``WORLD_SIZE`` > 1), every process joins ``torch.distributed``
    (nccl on CUDA, one GPU per process by ``LOCAL_RANK``; gloo on CPU) and trains a
    ``DistributedDataParallel`` copy of the model::

        torchrun --nproc_per_node 8 -m leechcodec.train --data D --out R --batch 64
        torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
            -m leechcodec.train --data D --out R --batch 128      # on each node
        python -m torch.distributed.run --standalone --nproc_per_node 2 \\
            -m leechcodec.train --device cpu --data D --out R --batch 8

    ``--batch`` is the global batch, split evenly over the processes. Rank r draws its
    crops from its own generator seeded by (seed, r) (rank 0's is the single-process
    generator). The EntropyBottleneck's quantiles stay outside DDP; their aux gradients
    are averaged by an all-reduce. Logged loss, bpp and PSNR are means over all ranks;
    only rank 0 writes the log, the progress bar, validation and checkpoints (on several
    nodes, every rank reads ``--data`` and, to resume, ``--out``: use a shared filesystem).
    Every checkpoint compares a hash of every rank's weights and stops the run if they differ.

Resume
    Crops come from seeded numpy generators whose states (one per rank) are saved in every
    checkpoint with the torch (and CUDA) RNG states, model, optimizers and grad scaler; a
    run resumed from a checkpoint continues the same sequence as an uninterrupted run with
    the same seed — bit for bit on CPU (tested for one process and for two gloo processes;
    CUDA kernels need not be deterministic). Resuming needs the same model configuration,
    seed and number of processes; device and ``--amp`` may change, and the checkpoint's
    ``segments`` list records which ran from which step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch.nn.parallel import DistributedDataParallel

from leechcodec.models import LeechCodecModel, ModelConfig, pad_to_multiple
from leechcodec.runtime import set_threads

log = logging.getLogger("leechcodec.train")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainConfig:
    data: str
    out: str
    lmbda: float = 0.01
    steps: int = 20000
    batch: int = 8  # global batch, split over the processes
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
    device: str = "auto"  # "auto", "cpu" or "cuda"
    amp: str | None = None  # "off", "bf16", "fp16"; None: bf16 on CUDA, off on CPU


def list_images(folder: str | Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images found under {folder}")
    return files


def downscaled(im: Image.Image, max_side: int) -> Image.Image:
    """``im`` in RGB, downscaled (Lanczos) so that its long side is at most ``max_side``."""
    im = im.convert("RGB")
    scale = max_side / max(im.size)
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    return im


def load_training_images(folder: str | Path, min_side: int, max_side: int) -> list[np.ndarray]:
    """All images of a folder as uint8 (H, W, 3), downscaled so the long side ≤ max_side."""
    images = []
    for path in list_images(folder):
        with Image.open(path) as im:
            im = downscaled(im, max_side)
            if min(im.size) >= min_side:
                images.append(np.asarray(im))
    return images


class CropSampler:
    """Random crops with random horizontal flips from a fixed, seeded generator."""

    def __init__(self, images: list[np.ndarray], crop: int, seed: int | Sequence[int]) -> None:
        self.images, self.crop = images, crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        """``n`` crops as ``(n, 3, crop, crop)`` float32 in [0, 1]."""
        out = np.empty((n, self.crop, self.crop, 3), dtype=np.uint8)
        for k in range(n):
            img = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(img.shape[0] - self.crop + 1)
            x = self.rng.integers(img.shape[1] - self.crop + 1)
            patch = img[y : y + self.crop, x : x + self.crop]
            out[k] = patch[:, ::-1] if self.rng.integers(2) else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


def rank_seed(seed: int, rank: int) -> int | list[int]:
    """Seed of rank ``rank``'s crop generator: rank 0 keeps the single-process seed."""
    return seed if rank == 0 else [seed, rank]


def local_batch(batch: int, world_size: int) -> int:
    """Per-process share of the global batch; it must split evenly."""
    if batch < world_size or batch % world_size:
        raise ValueError(f"--batch {batch} is the global batch and must be a multiple of the "
                         f"{world_size} training processes")
    return batch // world_size


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


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; under torchrun on CUDA, GPU ``LOCAL_RANK``."""
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def resolve_amp(amp: str | None, device: torch.device) -> str:
    """Autocast mode for the transforms: the default is bf16 on CUDA, off on CPU."""
    if amp is None:
        return "bf16" if device.type == "cuda" else "off"
    if amp not in ("off", *AMP_DTYPES):
        raise ValueError(f"unknown --amp {amp!r}; use off, bf16 or fp16")
    return amp


def device_name(device: torch.device) -> str:
    """What the checkpoint records as the training device."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} torch threads)"


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and bytes of a state dict (compares the ranks' weights)."""
    h = hashlib.sha256()
    for name, value in state.items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _rank_rng(state: dict) -> list[dict]:
    """Per-rank RNG states of a checkpoint (single-process checkpoints before DDP kept one)."""
    if "rank_rng" in state:
        return state["rank_rng"]
    return [{"sampler": state["sampler_rng"], "torch": state["torch_rng"], "cuda": None}]


@torch.no_grad()
def validate(model: LeechCodecModel, images: list[np.ndarray], device: torch.device | str = "cpu") -> dict:
    """Mean estimated bpp (exact prior rate) and PSNR over full images, in float32."""
    model.eval()
    bpps, psnrs = [], []
    for img in images:
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float().to(device) / 255
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


def _init_distributed(device: torch.device) -> bool:
    """Join the torchrun process group if launched with WORLD_SIZE > 1; True if we created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def train(cfg: TrainConfig, model_cfg: ModelConfig, resume: bool = True) -> Path:
    """Train (or resume) a run in ``cfg.out``; returns the checkpoint path.

    Runs as one process, or as one rank of a torchrun job (see the module docstring).
    """
    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    owns_group = _init_distributed(device)
    try:
        return _train(cfg, model_cfg, resume, device, amp)
    finally:
        if owns_group:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, model_cfg: ModelConfig, resume: bool, device: torch.device, amp: str) -> Path:
    distributed = dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    is_main = rank == 0
    per_rank = local_batch(cfg.batch, world)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    model = LeechCodecModel(model_cfg).to(device)
    if rank:  # the same initial weights everywhere, then each rank its own noise
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, rank]).generate_state(1)[0]))
    aux_names = [n for n, _ in model.named_parameters() if n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n in aux_names]
    main_params = [p for n, p in model.named_parameters() if n not in aux_names]
    opt = torch.optim.Adam(main_params, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    images = load_training_images(cfg.data, cfg.crop, cfg.max_side)
    sampler = CropSampler(images, cfg.crop, rank_seed(cfg.seed, rank))
    val = []
    if is_main and cfg.val_dir:
        val = [np.asarray(Image.open(p).convert("RGB")) for p in list_images(cfg.val_dir)[: cfg.val_images]]
    step, elapsed, segments = 0, 0.0, []
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state["model_config"] != model_cfg.to_dict() or state["train_config"]["seed"] != cfg.seed:
            raise ValueError(f"{ckpt_path} was made with another configuration; use a new --out")
        if state.get("world_size", 1) != world:
            raise ValueError(f"{ckpt_path} was trained by {state.get('world_size', 1)} process(es) and this run has "
                             f"{world}; resume with the same number of processes or use a new --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        if scaler.is_enabled() and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        rng = _rank_rng(state)[rank]
        sampler.rng.bit_generator.state = rng["sampler"]
        torch.set_rng_state(rng["torch"])
        if device.type == "cuda" and rng["cuda"] is not None:
            torch.cuda.set_rng_state(rng["cuda"], device)
        step, elapsed, segments = state["step"], state["elapsed_s"], state.get("segments", [])
        if is_main:
            log.info("resumed from %s at step %d", ckpt_path, step)
    where = device_name(device)
    segments = [*segments, {"step": step, "device": where, "world_size": world, "amp": amp}]
    net = model
    if distributed:
        # The quantiles only meet the aux loss, outside forward: keep them out of DDP's reducer.
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, aux_names)
        for p in aux_params:
            dist.broadcast(p.data, 0)
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    log_file = bar = None
    if is_main:
        log_path = out / "log.jsonl"
        if log_path.exists():  # drop records written after the checkpoint by an interrupted run
            kept = [ln for ln in log_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
            log_path.write_text("".join(ln + "\n" for ln in kept))
        log_file = open(log_path, "a")
        try:
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps, initial=step, desc="train", dynamic_ncols=True)
        except ImportError:  # pragma: no cover
            pass
    autocast = torch.autocast(device.type, dtype=AMP_DTYPES[amp]) if amp != "off" else nullcontext()
    model.train()
    while step < cfg.steps:
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        x = sampler.batch(per_rank).to(device, non_blocking=True)
        mix = quant_mix(cfg, step)
        with autocast:
            outp = net(x, quant_mix=mix)
        npix = x.shape[0] * x.shape[2] * x.shape[3]
        bpp = (outp.token_bits.sum() + outp.hyper_bits.sum()) / npix
        mse = torch.mean((outp.x_hat.float() - x) ** 2)
        loss = cfg.lmbda * 255**2 * mse + bpp
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(main_params, 1.0)
        scaler.step(opt)
        scaler.update()
        aux_loss = model.entropy_bottleneck.loss()
        aux_opt.zero_grad(set_to_none=True)
        aux_loss.backward()
        if distributed:
            for p in aux_params:
                dist.all_reduce(p.grad)
                p.grad /= world
        aux_opt.step()
        step += 1
        elapsed += time.perf_counter() - t0
        stats = torch.stack([loss.detach(), bpp.detach(), mse.detach()])
        if distributed:
            dist.all_reduce(stats)
            stats /= world
        loss_v, bpp_v, mse_v = stats.tolist()
        if is_main:
            record = {"step": step, "loss": loss_v, "bpp": bpp_v, "psnr": 10 * math.log10(1 / max(mse_v, 1e-12)),
                      "aux": aux_loss.item(), "lr": learning_rate(cfg, step - 1), "quant_mix": mix,
                      "elapsed_s": round(elapsed, 2)}
            if val and (step % cfg.val_every == 0 or step == cfg.steps):
                record.update({f"val_{k}": v for k, v in validate(model, val, device).items()})
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(bpp=f"{bpp_v:.3f}", psnr=f"{record['psnr']:.2f}")
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            weights = model.state_dict()
            mine = ({"sampler": sampler.rng.bit_generator.state, "torch": torch.get_rng_state(),
                     "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
                    state_sha256(weights))
            ranks = [mine]
            if distributed:
                ranks = [None] * world
                dist.all_gather_object(ranks, mine)
            hashes = [h for _, h in ranks]
            if len(set(hashes)) > 1:
                raise RuntimeError(f"the ranks' weights differ at step {step} (sha256 {hashes})")
            if is_main:
                save_checkpoint(
                    ckpt_path, model=weights, opt=opt.state_dict(), aux_opt=aux_opt.state_dict(),
                    scaler=scaler.state_dict(), rank_rng=[r for r, _ in ranks], rank_state_sha256=hashes,
                    step=step, elapsed_s=elapsed, model_config=model_cfg.to_dict(), train_config=dict(cfg.__dict__),
                    crops_seen=step * cfg.batch, device=where, world_size=world, amp=amp,
                    segments=segments,
                )
    if bar is not None:
        bar.close()
    if log_file is not None:
        log_file.close()
    return ckpt_path


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="leechcodec train", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of training images (searched recursively)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt and log.jsonl (resumes if present)")
    p.add_argument("--quantizer", choices=["leech24", "bsq", "scalar"], default="leech24")
    p.add_argument("--tokens", type=int, default=8, help="tokens per latent position (k)")
    p.add_argument("--bsq-dim", type=int, default=18)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--hyper-channels", type=int, default=64)
    p.add_argument("--lmbda", type=float, default=0.01, help="loss = λ·255²·MSE + bpp")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=8, help="global batch, split over torchrun processes")
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
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: CUDA when available (under torchrun: GPU LOCAL_RANK)")
    p.add_argument("--amp", choices=["off", *AMP_DTYPES], default=None,
                   help="autocast for the transforms (default: bf16 on CUDA, off on CPU); "
                        "quantizer, prior and EntropyBottleneck stay float32")
    p.add_argument("--threads", type=int, default=None, help="torch/numba threads (per process)")
    p.add_argument("--no-resume", action="store_true", help="refuse to resume; start over")
    return p


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    cfg = TrainConfig(data=args.data, out=args.out, lmbda=args.lmbda, steps=args.steps, batch=args.batch,
                      crop=args.crop, lr=args.lr, quant_warmup=args.quant_warmup, seed=args.seed, max_side=args.max_side,
                      val_dir=args.val_dir, val_images=args.val_images, val_every=args.val_every,
                      ckpt_every=args.ckpt_every, device=args.device, amp=args.amp)
    mcfg = ModelConfig(quantizer=args.quantizer, tokens=args.tokens, bsq_dim=args.bsq_dim,
                       channels=args.channels, hyper_channels=args.hyper_channels)
    if args.no_resume and (Path(args.out) / "checkpoint.pt").exists():
        raise SystemExit(f"{args.out} already holds a checkpoint and --no-resume was given")
    train(cfg, mcfg, resume=not args.no_resume)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return run(build_parser().parse_args(argv))
    except ValueError as exc:
        print(f"leechcodec train: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
