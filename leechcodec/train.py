"""Training: ``leechcodec train`` / ``python -m leechcodec.train``.

Loss = λ·255²·MSE + bits per pixel, the bits being the exact rate of the token prior plus
the hyper-latent rate (the rate the coder pays, up to coder overhead), plus CompressAI's
EntropyBottleneck auxiliary loss on a separate optimizer.

Device and precision
    ``--device auto|cpu|cuda`` (auto: CUDA when available) holds the model, the training set
    (uint8, crops cut there: :mod:`leechcodec.traindata`) and the quantizer search (the numba
    kernel on CPU, ``leech_search_torch`` on CUDA).
    ``--amp off|bf16|fp16`` (default: bf16 on CUDA, off on CPU) runs the transforms g_a,
    g_s, h_a, h_s under autocast. The quantizer search, the EntropyBottleneck and the
    prior's log-probabilities and partition function run in float32
    (``LeechCodecModel.forward`` leaves autocast for them), and so do the loss, the aux
    loss and validation. fp16 scales the loss with a ``GradScaler``.
    The step (:mod:`leechcodec.trainstep`) reads nothing back to the host; on CUDA it also
    uses channels-last weights (``--channels-last``), fused Adam and ``torch.compile``d
    transforms (``--compile``, falling back to eager if compiling fails). On CPU it computes
    exactly what the original step did; ``--legacy-step`` runs that original step.

Logging, checkpoints and stopping
    A log record holds the means over the last ``--log-every`` steps (``n``; default 1 on CPU,
    100 on CUDA, where reading them back waits for the device). Checkpoints are written every
    ``--ckpt-every`` steps, at the end, and with ``--ckpt-minutes M`` also at the first log
    point M minutes after the last one. ``--time-limit S`` stops the run, with a checkpoint,
    at the first log point S seconds after it started: the same command resumes it later,
    on this machine or another (:mod:`leechcodec.bench.training.relay` carries runs between machines).
    ``--stop-at N`` stops, with a checkpoint, at step N while the learning rate keeps the
    schedule of ``--steps``: a segment (other crops, another λ) ends where another run's did.

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
    A rank leaves through :func:`leave` (flush, then ``os._exit``) rather than interpreter
    shutdown, which can abort it after a finished run (see there).

Resume
    Crops come from seeded numpy generators whose states (one per rank) are saved in every
    checkpoint with the torch (and CUDA) RNG states, model, optimizers and grad scaler; a
    run resumed from a checkpoint continues the same sequence as an uninterrupted run with
    the same seed — bit for bit on CPU (tested for one process, in a fresh process and in a
    copied run folder, and for two gloo processes; CUDA kernels need not be deterministic).
    The crop draws do not depend on the device, so a run moved between CPU and GPU keeps its
    crop sequence. Resuming needs the same model configuration,
    seed and number of processes; device and ``--amp`` may change, and the checkpoint's
    ``segments`` list records which ran from which step (device, batch, crop, λ and the
    schedule: a branch at another λ or with an earlier cool-down says so there).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch.nn.parallel import DistributedDataParallel

from leechcodec.models import CONTEXTS, QUANTIZERS, LeechCodecModel, ModelConfig, pad_to_multiple
from leechcodec.runtime import add_heap_argument, set_heap, set_threads
from leechcodec.traindata import (  # noqa: F401 — also this module's public names, as before
    IMAGE_SUFFIXES,
    CropSampler,
    DeviceCropSampler,
    downscaled,
    list_images,
    load_training_images,
)
from leechcodec.traincheckpoint import checkpoint as _checkpoint
from leechcodec.traincheckpoint import load_optimizer as _load_optimizer
from leechcodec.traincheckpoint import rank_rng as _rank_rng
from leechcodec.traincheckpoint import run_lock
from leechcodec.traincheckpoint import save_checkpoint, state_sha256  # noqa: F401 — public here too
from leechcodec.trainstep import AMP_DTYPES, StepOptions, TrainStep, compile_transforms, eager, step_options

log = logging.getLogger("leechcodec.train")

#: Steps per log record on CUDA unless ``--log-every`` says otherwise (CPU: every step).
DEVICE_LOG_EVERY = 100


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
    log_every: int | None = None  # steps per log record; None: 1 on CPU, DEVICE_LOG_EVERY on CUDA
    ckpt_minutes: float | None = None  # also checkpoint when this much time has passed since the last one
    time_limit: float | None = None  # seconds: stop (with a checkpoint) at the first log point after this
    stop_at: int | None = None  # stop (with a checkpoint) at this step; the schedule stays that of ``steps``
    channels_last: str = "auto"  # "auto" (CUDA: on), "on", "off"
    compile: str = "auto"  # torch.compile the transforms: "auto" (CUDA: on), "on", "off"
    fused_adam: str = "auto"  # fused Adam: "auto" (CUDA: on), "on", "off"
    legacy_step: bool = False  # the old training step (to measure it; see leechcodec.trainstep)
    gain_noise: bool = False  # gain–shape: the gain's rate sees additive uniform noise, not the rounded gain
    context_lr_scale: float = 1.0  # the context model's learning rate relative to --lr


def rank_seed(seed: int, rank: int) -> int | list[int]:
    """Seed of rank ``rank``'s crop generator: rank 0 keeps the single-process seed."""
    return seed if rank == 0 else [seed, rank]


def local_batch(batch: int, world_size: int) -> int:
    """Per-process share of the global batch; it must split evenly."""
    if batch < world_size or batch % world_size:
        raise ValueError(f"--batch {batch} is the global batch and must be a multiple of the "
                         f"{world_size} training processes")
    return batch // world_size


def seen(segments: list[dict], step: int) -> dict[str, int]:
    """``{"crops_seen", "pixels_seen"}`` of a run at ``step``: each segment's steps (to the next
    segment's first step, the last one's to ``step``) times its batch, and times its crop²."""
    crops = pixels = 0
    for seg, end in zip(segments, [s["step"] for s in segments[1:]] + [step]):
        n = (end - seg["step"]) * seg["batch"]
        crops, pixels = crops + n, pixels + n * seg["crop"] ** 2
    return {"crops_seen": crops, "pixels_seen": pixels}


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


def _torchrun_rank() -> bool:
    """True in a process torchrun launched as one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _init_distributed(device: torch.device) -> bool:
    """Join the torchrun process group if launched with WORLD_SIZE > 1; True if we created it."""
    if not _torchrun_rank() or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def train(cfg: TrainConfig, model_cfg: ModelConfig, resume: bool = True, *, clock: Callable[[], float] = time.perf_counter,
          deadline: float | None = None, on_checkpoint: Callable[[Path, int], None] | None = None) -> Path:
    """Train (or resume) a run in ``cfg.out``; returns the checkpoint path.

    Runs as one process, or as one rank of a torchrun job (see the module docstring).
    ``clock`` (seconds) times the run, the time-based checkpoints and the stop: training stops
    with a checkpoint at the first log point at or after ``deadline`` (on ``clock``) or
    ``cfg.time_limit`` seconds after the call, whichever is first. ``on_checkpoint(path, step)``
    is called on rank 0 after every checkpoint is written.
    """
    start = clock()
    if cfg.time_limit is not None:
        deadline = min(deadline if deadline is not None else math.inf, start + cfg.time_limit)
    device = resolve_device(cfg.device)
    amp = resolve_amp(cfg.amp, device)
    owns_group = _init_distributed(device)
    try:
        is_main = not dist.is_initialized() or dist.get_rank() == 0
        with run_lock(Path(cfg.out)) if is_main else contextlib.nullcontext():
            return _train(cfg, model_cfg, resume, device, amp, clock, deadline, on_checkpoint)
    finally:
        if owns_group:
            dist.destroy_process_group()


def _compile_probe(model: LeechCodecModel, batch: int, crop: int, device: torch.device, step: TrainStep):
    """One forward and backward of a constant batch (compiles the transforms), leaving the RNG
    states and gradients as they were."""

    def probe() -> None:
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        try:
            x = torch.full((batch, 3, crop, crop), 0.5, device=device).contiguous(memory_format=torch.channels_last)
            with step.autocast:
                out = model(x)
            (out.x_hat.float().mean() + out.token_bits.mean() + out.hyper_bits.mean()).backward()
        finally:
            model.zero_grad(set_to_none=True)
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state(cuda_rng, device)

    return probe


@dataclass
class _Run:
    """One process's training run: its place in the job, what it trains, and how far it is."""

    cfg: TrainConfig
    model_cfg: ModelConfig
    device: torch.device
    amp: str
    rank: int
    world: int
    distributed: bool  # joined torch.distributed (the step then runs through DDP)
    options: StepOptions
    log_every: int
    out: Path
    model: LeechCodecModel
    sampler: CropSampler | DeviceCropSampler
    step_fn: TrainStep
    val: list[np.ndarray]  # validation images (rank 0 only)
    step: int = 0
    elapsed: float = 0.0  # seconds of training, over all segments
    segments: list[dict] = field(default_factory=list)  # which device ran from which step
    fresh_optimizer: bool = False  # resumed from a checkpoint without optimizer states
    weights_from: dict | None = None  # resumed from a released model's weights (relay from-zoo)
    where: str = ""  # this segment's device_name

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"


def _setup(cfg: TrainConfig, model_cfg: ModelConfig, device: torch.device, amp: str) -> _Run:
    """Seed, build the model, its crop sampler and training step, and read the validation images."""
    distributed = dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    per_rank = local_batch(cfg.batch, world)
    options = step_options(device, cfg.legacy_step, cfg.channels_last, cfg.compile, cfg.fused_adam)
    log_every = 1 if options.legacy else cfg.log_every or (DEVICE_LOG_EVERY if device.type == "cuda" else 1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = LeechCodecModel(model_cfg).to(device)
    if cfg.gain_noise:
        if not hasattr(model.latent_codec, "gain_noise"):
            raise ValueError(f"--gain-noise is for the leech24gs family, not {model_cfg.quantizer}")
        model.latent_codec.gain_noise = True
    if rank:  # the same initial weights everywhere, then each rank its own noise
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, rank]).generate_state(1)[0]))
    if device.type == "cuda" and not options.legacy:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions
    sampler = _sampler(cfg, rank, device, options.legacy)
    step_fn = TrainStep(model, model, sampler, per_rank, cfg.lmbda, cfg.lr, device, amp, options, world,
                        lr_scales={"context.": cfg.context_lr_scale} if cfg.context_lr_scale != 1.0 else None)
    val = []
    if rank == 0 and cfg.val_dir:
        val = [np.asarray(Image.open(p).convert("RGB")) for p in list_images(cfg.val_dir)[: cfg.val_images]]
    return _Run(cfg, model_cfg, device, amp, rank, world, distributed, options, log_every, out, model, sampler,
                step_fn, val)


def _sampler(cfg: TrainConfig, rank: int, device: torch.device, legacy: bool) -> CropSampler | DeviceCropSampler:
    """Rank ``rank``'s crop sampler: on the host for the legacy step, else on ``device``."""
    images = load_training_images(cfg.data, cfg.crop, cfg.max_side)
    if legacy:
        return CropSampler(images, cfg.crop, rank_seed(cfg.seed, rank))
    return DeviceCropSampler(images, cfg.crop, rank_seed(cfg.seed, rank), device)


def _resume(run: _Run) -> None:
    """Load the run's checkpoint: weights, optimizers, grad scaler, this rank's RNG states, and
    how far the run got. Refuses one made with another configuration or number of processes."""
    path, step_fn = run.ckpt_path, run.step_fn
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["model_config"] != run.model_cfg.to_dict() or state["train_config"]["seed"] != run.cfg.seed:
        raise ValueError(f"{path} was made with another configuration; use a new --out")
    if state.get("world_size", 1) != run.world:
        raise ValueError(f"{path} was trained by {state.get('world_size', 1)} process(es) and this run has "
                         f"{run.world}; resume with the same number of processes or use a new --out")
    run.model.load_state_dict(state["model"])
    if "opt" in state:
        _load_optimizer(step_fn.opt, state["opt"])
        _load_optimizer(step_fn.aux_opt, state["aux_opt"])
    else:  # a slim checkpoint (relay slim): the weights travelled, the Adam moments did not
        run.fresh_optimizer = True
        run.weights_from = state.get("from_zoo")
        if run.is_main:
            log.warning("%s carries no optimizer states: Adam starts afresh at step %d", path, state["step"])
    if step_fn.scaler.is_enabled() and state.get("scaler"):
        step_fn.scaler.load_state_dict(state["scaler"])
    rng = _rank_rng(state)[run.rank]
    run.sampler.rng.bit_generator.state = rng["sampler"]
    torch.set_rng_state(rng["torch"])
    if run.device.type == "cuda" and rng["cuda"] is not None:
        torch.cuda.set_rng_state(rng["cuda"], run.device)
    tc = state["train_config"]  # segments written before they recorded batch and crop ran with these
    run.step, run.elapsed = state["step"], state["elapsed_s"]
    segments = state.get("segments") or [{"step": 0, "device": "unknown (before segments were recorded)",
                                          "world_size": state.get("world_size", 1), "amp": "off"}]
    run.segments = [{**seg, "batch": seg.get("batch", tc["batch"]), "crop": seg.get("crop", tc["crop"])}
                    for seg in segments]
    if run.is_main:
        log.info("resumed from %s at step %d", path, run.step)


def _distribute(run: _Run) -> None:
    """Train through a DistributedDataParallel copy of the model, the aux parameters broadcast from rank 0."""
    # The quantiles only meet the aux loss, outside forward: keep them out of DDP's reducer.
    aux_names = [n for n, _ in run.model.named_parameters() if n.endswith(".quantiles")]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(run.model, aux_names)
    for p in run.step_fn.aux_params:
        dist.broadcast(p.data, 0)
    device = run.device
    run.step_fn.net = DistributedDataParallel(run.model, device_ids=[device.index] if device.type == "cuda" else None)


class _Log:
    """Rank 0's ``log.jsonl`` and progress bar; on the other ranks it does nothing."""

    def __init__(self, run: _Run) -> None:
        self.file = self.bar = None
        if not run.is_main:
            return
        path = run.out / "log.jsonl"
        if path.exists():  # drop records written after the checkpoint by an interrupted run
            kept = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= run.step]
            path.write_text("".join(ln + "\n" for ln in kept))
        self.file = open(path, "a")
        log.info("step: %s, %d per log record", run.options.describe(), run.log_every)
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=run.cfg.steps, initial=run.step, desc="train", dynamic_ncols=True)
        except ImportError:  # pragma: no cover
            pass

    def write(self, record: dict, n: int) -> None:
        """Append ``record`` (covering ``n`` steps) and advance the bar."""
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(bpp=f"{record['bpp']:.3f}", psnr=f"{record['psnr']:.2f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.file is not None:
            self.file.close()


def _record(run: _Run, means: dict[str, float], mix: float, n: int, val_step: bool) -> dict:
    """The log record of the ``n`` steps up to ``run.step`` (rank 0), validated at ``val_step``."""
    step = run.step
    record = {"step": step, "loss": means["loss"], "bpp": means["bpp"],
              "psnr": 10 * math.log10(1 / max(means["mse"], 1e-12)), "aux": means["aux"],
              "lr": learning_rate(run.cfg, step - 1), "quant_mix": mix, "n": n, "elapsed_s": round(run.elapsed, 2)}
    if run.val and val_step:
        with eager():
            record.update({f"val_{k}": v for k, v in validate(run.model, run.val, run.device).items()})
    return record


def _save(run: _Run, on_checkpoint: Callable[[Path, int], None] | None) -> None:
    """Write the run's checkpoint (every rank takes part) and tell ``on_checkpoint`` (rank 0)."""
    cfg = run.cfg
    _checkpoint(run.ckpt_path, run.model, run.step_fn, run.sampler, run.device, run.is_main, step=run.step,
                elapsed_s=run.elapsed, model_config=run.model_cfg.to_dict(), train_config=dict(cfg.__dict__),
                **seen(run.segments, run.step), device=run.where, world_size=run.world, amp=run.amp,
                segments=run.segments, step_options=run.options.describe())
    if run.is_main and on_checkpoint is not None:
        on_checkpoint(run.ckpt_path, run.step)


def _train(cfg: TrainConfig, model_cfg: ModelConfig, resume: bool, device: torch.device, amp: str,
           clock: Callable[[], float], deadline: float | None, on_checkpoint) -> Path:
    run = _setup(cfg, model_cfg, device, amp)
    if resume and run.ckpt_path.exists():
        _resume(run)
    if run.options.compile and run.step < cfg.steps:
        probe = _compile_probe(run.model, run.step_fn.batch, cfg.crop, device, run.step_fn)
        run.options = replace(run.options, compile=compile_transforms(run.model, probe))
    run.where = device_name(device)
    segment = {"step": run.step, "device": run.where, "world_size": run.world, "amp": amp, "batch": cfg.batch,
               "crop": cfg.crop, "lmbda": cfg.lmbda, "steps": cfg.steps, "lr_decay_from": cfg.lr_decay_from}
    if run.fresh_optimizer:
        segment["optimizer"] = "fresh"
    if run.weights_from:
        segment["weights_from"] = run.weights_from
    run.segments = [*run.segments, segment]
    if run.distributed:
        _distribute(run)
    logs = _Log(run)
    run.model.train()
    _loop(run, logs, clock, deadline, on_checkpoint)
    logs.close()
    return run.ckpt_path


def _loop(run: _Run, logs: _Log, clock: Callable[[], float], deadline: float | None, on_checkpoint) -> None:
    """Train to ``cfg.steps`` or ``deadline``: log, validate and checkpoint at the log points."""
    cfg, step_fn = run.cfg, run.step_fn
    ckpt_s = cfg.ckpt_minutes * 60 if cfg.ckpt_minutes else None
    mark = last_ckpt = clock()
    end = cfg.steps if cfg.stop_at is None else min(cfg.steps, cfg.stop_at)
    while run.step < end:
        step_fn.set_lr(learning_rate(cfg, run.step))
        mix = quant_mix(cfg, run.step)
        step_fn(mix)
        run.step += 1
        step = run.step
        val_step = bool(cfg.val_dir) and (step % cfg.val_every == 0 or step == end)
        if not (step % run.log_every == 0 or step % cfg.ckpt_every == 0 or step == end or val_step):
            continue
        # A log point (the same steps on every rank): rank 0's clock decides for all.
        now, n = clock(), step_fn.pending
        flags = [float(run.is_main and ckpt_s is not None and now - last_ckpt >= ckpt_s),
                 float(run.is_main and deadline is not None and now >= deadline)]
        means, (timed_ckpt, stop) = step_fn.take_stats(flags)
        run.elapsed += clock() - mark
        if run.is_main:
            logs.write(_record(run, means, mix, n, val_step), n)
        if step % cfg.ckpt_every == 0 or step == end or timed_ckpt or stop:
            _save(run, on_checkpoint)
            last_ckpt = clock()
        mark = clock()
        if stop:
            if run.is_main:
                log.info("stopped at step %d: time is up", step)
            break


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="leechcodec train", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True,
                   help="folder of training images (searched recursively), or a .tar pack of them (relay pack)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt and log.jsonl (resumes if present)")
    p.add_argument("--quantizer", choices=list(QUANTIZERS), default="leech24")
    p.add_argument("--tokens", type=int, default=8, help="tokens per latent position (k)")
    p.add_argument("--bsq-dim", type=int, default=18)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--hyper-channels", type=int, default=64)
    p.add_argument("--lmbda", type=float, default=0.01, help="loss = λ·255²·MSE + bpp")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=8, help="global batch, split over torchrun processes")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lr-decay-from", type=float, default=0.8,
                   help="fraction of --steps after which the learning rate decays linearly to lr/10 (a resumed "
                        "run given a later --steps and this fraction at its step cools down from there)")
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
    add_heap_argument(p)
    p.add_argument("--no-resume", action="store_true", help="refuse to resume; start over")
    p.add_argument("--log-every", type=int, default=None,
                   help=f"steps per log record (their means); default 1 on CPU, {DEVICE_LOG_EVERY} on CUDA")
    p.add_argument("--ckpt-minutes", type=float, default=None,
                   help="also write a checkpoint when this many minutes have passed since the last one")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds: stop with a checkpoint at the first log point after this (resume later)")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop with a checkpoint at this step; the learning-rate schedule stays that of --steps "
                        "(to end a segment where another run's did, and go on with other crops or λ)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="weights and activations in NHWC (auto: on CUDA)")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the transforms, falling back to eager if that fails (auto: on CUDA)")
    p.add_argument("--fused-adam", choices=["auto", "on", "off"], default="auto",
                   help="fused Adam (auto: on CUDA; on the CPU a faster step than plain Adam's, but not "
                        "bit-identical to it)")
    p.add_argument("--legacy-step", action="store_true",
                   help="the old training step (host crops, a sync per step), to measure against")
    p.add_argument("--gain-frac-bits", type=int, default=0,
                   help="leech24gs: the gain's step is 2^-N of the token norm (0: integer gains)")
    p.add_argument("--context", choices=CONTEXTS, default="",
                   help="context model: none (default) or checkerboard (leech24gs: the anchors of a checkerboard "
                        "first, the rest with their parameters corrected from the anchors)")
    p.add_argument("--context-lr-scale", type=float, default=1.0,
                   help="the context model's learning rate relative to --lr (a context added to trained "
                        "weights starts from scratch)")
    p.add_argument("--gain-noise", action="store_true",
                   help="leech24gs: the gain's training rate sees ‖t‖ + uniform noise instead of the "
                        "straight-through rounded gain")
    return p


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    set_heap(args.heap)
    cfg = TrainConfig(data=args.data, out=args.out, lmbda=args.lmbda, steps=args.steps, batch=args.batch,
                      crop=args.crop, lr=args.lr, lr_decay_from=args.lr_decay_from, quant_warmup=args.quant_warmup,
                      seed=args.seed, max_side=args.max_side,
                      val_dir=args.val_dir, val_images=args.val_images, val_every=args.val_every,
                      ckpt_every=args.ckpt_every, device=args.device, amp=args.amp, log_every=args.log_every,
                      ckpt_minutes=args.ckpt_minutes, time_limit=args.time_limit, stop_at=args.stop_at,
                      channels_last=args.channels_last,
                      compile=args.compile, fused_adam=args.fused_adam, legacy_step=args.legacy_step,
                      gain_noise=args.gain_noise, context_lr_scale=args.context_lr_scale)
    mcfg = ModelConfig(quantizer=args.quantizer, tokens=args.tokens, bsq_dim=args.bsq_dim,
                       channels=args.channels, hyper_channels=args.hyper_channels,
                       gain_frac_bits=args.gain_frac_bits, context=args.context)
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


def leave(code: int) -> int:
    """Return ``code``; in a torchrun rank (``WORLD_SIZE`` > 1), flush and exit with it now.

    A rank skips interpreter shutdown because gloo can abort it there, after a finished run.
    DDP keeps the process group alive past ``destroy_process_group``, so its worker threads
    are still running at exit; one of them may still be releasing the work of the last
    collective (the checkpoint's ``all_gather_object``), whose tensors have Python objects.
    Releasing them needs the GIL, which a finalizing interpreter no longer hands out: the
    thread is unwound through a ``noexcept`` destructor and the process dies with
    "terminate called without an active exception" (SIGABRT; torch 2.14, in about 1 of
    20–60 two-process runs here, backtrace in ``ProcessGroupGloo::AsyncWork::~AsyncWork``).
    Everything the run writes is closed by then; only the standard streams and the logging
    handlers are flushed here.
    """
    if not _torchrun_rank():
        return code
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(leave(main()))
