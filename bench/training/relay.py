"""Training relay: one training run carried across short windows on different machines.

A lent GPU comes for minutes at a time, a CPU session for hours; a model needs many of
either. The relay trains a run for one window, brings back everything that the next window
needs to continue it exactly, and picks it up there::

    # once, here: the training set as one file (downscaled, JPEG 4:4:4, members sorted)
    python -m leechcodec.bench.training.relay pack --data ../shared/data/train --out relay/train.tar

    # a window (a new run, or --resume the folder the last window brought back)
    python -m leechcodec.bench.training.relay run --pack relay/train.tar --device cuda --minutes 9 \\
        --out "$OUT" [--resume relay/leg-001]

    # the next window, anywhere: on a CPU, over 20 minutes
    python -m leechcodec.bench.training.relay run --pack relay/train.tar --device cpu --minutes 20 \\
        --out relay/leg-002 --resume relay/leg-001

    # a checkpoint for leechcodec.export
    python -m leechcodec.bench.training.relay join relay/leg-002 --out runs/relay.pt

``run`` trains with :func:`leechcodec.train.train` in this process until ``--minutes`` minus
``--margin`` have passed (``--steps`` is the whole run's target: it fixes the learning-rate
schedule), writing a checkpoint every ``--ckpt-minutes`` (2) and at the stop. After every
checkpoint it refreshes ``--out``, so a window cut short still brings back its last one:

- ``checkpoint.pt.00``, ``.01``, …: the full training checkpoint (weights, both Adam states,
  RNG states, configuration: what an exact resume needs) cut into parts of at most
  :data:`PART_BYTES` (the default model's is 24 MB: two parts);
- ``relay.json``: the parts' sha256, the pack's sha256, the step, the run's configuration;
- ``log.jsonl.gz``: the run's training log, all windows so far;
- ``summary.json``: this window: its command line, wall time, time in training steps and its share, steps,
  Mpixel/s, the checkpoints written, the step's options.

That is at most 8 files (the device's limit) for checkpoints up to 5 parts (75 MiB).

``slim DIR --out THIN`` keeps everything but the optimizer and grad-scaler states (the weights,
step, RNG states, configuration and log): a third of the bytes, for a transfer too small for
the whole state (the 128-channel flagship: 23 MB against 69 MB). DIR is a window's folder, or
the ``checkpoint.pt`` of a ``leechcodec train`` run with ``--pack`` (the pack it trained on, for
the manifest; its ``log.jsonl`` beside it comes along). A window resumed from it
continues the schedule with fresh Adam moments, so not bit for bit; its ``segments`` entry
says ``"optimizer": "fresh"``, and what it brings back is whole again.

``from-zoo NAME.qN --out CKPT`` writes the same slim state from a released model: its weights
(float16 kernels, as the zoo stores them) and the step, crops, time and segments of its
registry entry, for when the run's own state is gone; ``leechcodec train --out`` CKPT's folder,
with the model's flags, continues its budget and schedule with fresh Adam moments, and so does
``relay run --run-dir`` CKPT's folder (give ``from-zoo --steps``: the released run has ended).

``--resume DIR`` joins DIR's parts (checking their sha256), checks that ``--pack`` is the
pack the run was trained on, and continues the run with the checkpoint's own configuration
(model and training flags are refused then); the run continues bit for bit on a CPU with the
same thread count (tested: train → stop → resume from a copied folder in a fresh process =
the uninterrupted run). The run's working folder is ``--run-dir``; without ``--resume`` a
checkpoint already there is continued the same way.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import logging
import os
import shlex
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from leechcodec.runtime import add_heap_argument
from leechcodec.zoo import sha256_file

__all__ = ["PART_BYTES", "pack", "split_checkpoint", "join_checkpoint", "load_checkpoint", "slim", "from_zoo",
           "new_run_config", "main"]

log = logging.getLogger("leechcodec.relay")

#: Largest checkpoint part: under the 16 MiB a file may have to come back from a device.
PART_BYTES = 15 * 2**20
MANIFEST, SUMMARY, LOG = "relay.json", "summary.json", "log.jsonl.gz"
#: Defaults of a new run: the architecture of ``leech24-hyper`` (the default model until 2026-11-30;
#: the flagship, now the default, gives its flags: bench/results/training/flagship/README.md).
NEW_RUN = {"quantizer": "leech24", "tokens": 8, "bsq_dim": 18, "channels": 64, "hyper_channels": 64, "lmbda": 0.01,
           "steps": 100_000, "crop": 256, "lr": 3e-4, "seed": 0, "quant_warmup": 0.0, "max_side": 1024,
           "gain_frac_bits": 0, "gain_noise": False, "context": ""}
#: Batch of a new run per device (a fixed part of the run once it started).
DEVICE_BATCH = {"cpu": 8, "cuda": 32}
MODEL_KEYS = ("quantizer", "tokens", "bsq_dim", "channels", "hyper_channels", "gain_frac_bits", "context")


def pack(src: Path, dst: Path, max_side: int, quality: int) -> tuple[int, int]:
    """Downscale every training image of ``src`` (long side ≤ ``max_side``) and store it as
    JPEG (``quality``, 4:4:4) in the tar ``dst``, members sorted, timestamps zeroed (the same
    inputs give the same bytes); returns (images, bytes)."""
    from PIL import Image

    from leechcodec.traindata import downscaled, list_images

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    n = 0
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for path in list_images(src):
            buf = io.BytesIO()
            with Image.open(path) as im:
                downscaled(im, max_side).save(buf, "JPEG", quality=quality, subsampling=0)
            info = tarfile.TarInfo(path.relative_to(src).with_suffix(".jpg").as_posix())
            info.size, info.mode = buf.tell(), 0o644
            buf.seek(0)
            tar.addfile(info, buf)
            n += 1
    os.replace(tmp, dst)
    return n, dst.stat().st_size


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def split_checkpoint(ckpt: Path, out: Path, part_bytes: int = PART_BYTES) -> dict:
    """Cut ``ckpt`` into ``out/checkpoint.pt.NN`` parts (older parts beyond them removed);
    returns ``{"sha256", "bytes", "parts"}`` for the manifest."""
    data = ckpt.read_bytes()
    names = []
    for k, start in enumerate(range(0, max(1, len(data)), part_bytes)):
        names.append(f"checkpoint.pt.{k:02d}")
        _write(out / names[-1], data[start : start + part_bytes])
    for stale in out.glob("checkpoint.pt.[0-9][0-9]"):
        if stale.name not in names:
            stale.unlink()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "parts": names}


def join_checkpoint(src: Path, dst: Path) -> dict:
    """Join the parts in ``src`` (as its manifest lists them) into ``dst``; checks the sha256.
    Returns the manifest."""
    manifest = json.loads((src / MANIFEST).read_text())
    ck = manifest["checkpoint"]
    data = b"".join((src / name).read_bytes() for name in ck["parts"])
    if hashlib.sha256(data).hexdigest() != ck["sha256"]:
        raise ValueError(f"the checkpoint parts in {src} do not join to the checkpoint its {MANIFEST} names "
                         "(incomplete copy?)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    _write(dst, data)
    return manifest


def load_checkpoint(src: Path) -> tuple[dict, dict]:
    """``(manifest, state)`` of the checkpoint in ``src``'s parts (joined and checked by
    :func:`join_checkpoint` in a temporary folder)."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        manifest = join_checkpoint(src, Path(tmp) / "checkpoint.pt")
        return manifest, torch.load(Path(tmp) / "checkpoint.pt", map_location="cpu", weights_only=False)


def _packed_log(run_dir: Path) -> bytes | None:
    """A run folder's ``log.jsonl`` as the relay carries it (gzip, no timestamp), or None."""
    log_path = run_dir / "log.jsonl"
    return gzip.compress(log_path.read_bytes(), mtime=0) if log_path.exists() else None


def _manifest(state: dict, pack_path: Path, pack_sha: str, parts: dict) -> dict:
    """The ``relay.json`` of a checkpoint ``state`` cut into ``parts``."""
    return {"format": 1, "pack": pack_path.name, "pack_sha256": pack_sha, "step": state["step"],
            "steps": state["train_config"]["steps"], "checkpoint": parts,
            "model_config": state["model_config"], "train_config": state["train_config"],
            "segments": state.get("segments", [])}


def slim(src: Path, dst: Path, pack_path: Path | None = None) -> dict:
    """Write ``src``'s checkpoint into ``dst`` without the optimizer and grad-scaler states
    (weights, step, RNG states, configuration and log stay): about a third of the bytes, for a
    window whose transfer cannot carry the whole state. ``src`` is a window's folder, or a
    ``leechcodec train`` ``checkpoint.pt`` together with ``pack_path``, the pack it was trained
    on. A run resumed from it continues the same schedule with fresh Adam moments, not bit for
    bit; its segment says so. Returns the manifest."""
    import torch

    if src.is_file():
        if pack_path is None:
            raise ValueError(f"{src} is a checkpoint file: give --pack, the pack its run was trained on")
        state = torch.load(src, map_location="cpu", weights_only=False)
        manifest = _manifest(state, pack_path, sha256_file(pack_path), {})
        log_bytes = _packed_log(src.parent)
    else:
        if pack_path is not None:
            raise ValueError(f"{src} is a window's folder, whose manifest names its pack already: drop --pack")
        manifest, state = load_checkpoint(src)
        log_bytes = (src / LOG).read_bytes() if (src / LOG).exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        slimmed = Path(tmp) / "slim.pt"
        for key in ("opt", "aux_opt", "scaler"):
            state.pop(key, None)
        torch.save(state, slimmed)
        dst.mkdir(parents=True, exist_ok=True)
        manifest = {**manifest, "checkpoint": split_checkpoint(slimmed, dst), "optimizer": False}
    _write(dst / MANIFEST, json.dumps(manifest, indent=1).encode())
    if log_bytes is not None:
        _write(dst / LOG, log_bytes)
    return manifest


def from_zoo(key: str, dst: Path, steps: int | None = None, lr_decay_from: float | None = None,
             context: str = "") -> dict:
    """Write a slim training checkpoint (:func:`slim`'s contents) of the released model ``key``
    (``name.qN``) to ``dst``: its weights as the zoo stores them (float16 kernels, widened),
    and the step, crops, time and segments that its registry entry records, so that a
    ``leechcodec train`` run with the same model flags continues its budget and schedule from
    there, with fresh Adam moments and fresh random states (not bit for bit; its segment says
    ``"optimizer": "fresh"``). For when the run's own state is gone: a released model is
    always at hand. ``steps`` and ``lr_decay_from`` replace the recorded schedule's (a released
    model's run has usually ended: ``relay run`` continues a checkpoint to its own ``steps``).
    Returns the checkpoint's record (without the weights)."""
    import numpy as np
    import torch

    from leechcodec.traincheckpoint import save_checkpoint
    from leechcodec.zoo import entry_from_key, load_model

    entry = entry_from_key(key)
    _, model = load_model(entry.name, entry.quality)
    prov, budget = entry.provenance, entry.budget
    if "train_config" not in prov or "steps" not in budget:
        raise ValueError(f"{key}'s registry entry records no training configuration to continue")
    origin = {"model": key, "sha256": entry.sha256}
    if context:
        model = _with_context(model, context, int(prov["train_config"]["seed"]))
        origin["context"] = context
    tc = dict(prov["train_config"])
    tc.update({k: v for k, v in (("steps", steps), ("lr_decay_from", lr_decay_from)) if v is not None})
    step, seed = int(budget["steps"]), int(tc["seed"])
    segments = prov.get("segments") or [{"step": 0, "device": budget.get("device", "unknown"),
                                         "world_size": budget.get("world_size", 1), "amp": tc.get("amp", "off"),
                                         "batch": tc["batch"], "crop": tc["crop"]}]
    torch_rng = torch.Generator().manual_seed(seed * 1_000_003 + step).get_state()
    sampler_rng = np.random.default_rng([seed, step]).bit_generator.state
    record = {"step": step, "elapsed_s": float(budget["wall_s"]), "model_config": model.config.to_dict(),
              "train_config": tc, "crops_seen": budget["crops_seen"], "pixels_seen": budget["pixels_seen"],
              "device": budget.get("device"), "world_size": budget.get("world_size", 1), "amp": tc.get("amp", "off"),
              "segments": segments, "from_zoo": origin}
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(dst, **record, model={k: v.detach().clone() for k, v in model.state_dict().items()},
                    rank_rng=[{"sampler": sampler_rng, "torch": torch_rng, "cuda": None}])
    return record


def _with_context(model, context: str, seed: int):
    """``model`` with a new context model of kind ``context`` (weights drawn from ``seed``)."""
    import dataclasses

    import torch

    from leechcodec.models import LeechCodecModel

    if model.config.context:
        raise ValueError(f"the model already has a {model.config.context} context")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new = LeechCodecModel(dataclasses.replace(model.config, context=context))
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    if unexpected or not all(k.startswith("context.") for k in missing):
        raise ValueError(f"weights that do not fit the context model: {unexpected or missing}")
    return new


def new_run_config(args: argparse.Namespace, device_type: str) -> tuple[dict, dict]:
    """(model config, training settings) of a new run: the flags given, else :data:`NEW_RUN`."""
    given = {k: getattr(args, k) for k in NEW_RUN if getattr(args, k) is not None}
    run = {**NEW_RUN, **given, "batch": args.batch or DEVICE_BATCH[device_type]}
    model = {k: run.pop(k) for k in MODEL_KEYS}
    return model, run


class _Window:
    """What one window did, written to ``--out`` after every checkpoint."""

    def __init__(self, out: Path, pack_path: Path, pack_sha: str, clock: Callable[[], float], device: str) -> None:
        self.out, self.pack_path, self.pack_sha, self.clock = out, pack_path, pack_sha, clock
        self.t0 = clock()
        self.summary = {"device": device, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "checkpoints": []}
        self.first: dict | None = None  # step and elapsed_s where this window started

    def start(self, step: int, elapsed: float) -> None:
        self.first = {"step": step, "elapsed_s": elapsed}

    def on_checkpoint(self, ckpt: Path, step: int) -> None:
        import torch

        t = self.clock()
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        parts = split_checkpoint(ckpt, self.out)
        manifest = _manifest({**state, "step": step}, self.pack_path, self.pack_sha, parts)
        _write(self.out / MANIFEST, json.dumps(manifest, indent=1).encode())
        log_bytes = _packed_log(ckpt.parent)
        if log_bytes is not None:
            _write(self.out / LOG, log_bytes)
        tc = state["train_config"]
        start = self.first or {"step": 0, "elapsed_s": 0.0}
        steps, train_s = step - start["step"], state["elapsed_s"] - start["elapsed_s"]
        wall = self.clock() - self.t0
        self.summary["checkpoints"].append({"step": step, "at_s": round(t - self.t0, 2),
                                            "write_s": round(self.clock() - t, 2)})
        self.summary.update({
            "step_options": state.get("step_options"), "batch": tc["batch"], "crop": tc["crop"],
            "steps_from": start["step"], "steps_to": step, "steps": steps, "wall_s": round(wall, 2),
            "train_s": round(train_s, 2), "train_share": round(train_s / wall, 4) if wall > 0 else None,
            "mpix_per_s": round(steps * tc["batch"] * tc["crop"] ** 2 / train_s / 1e6, 4) if train_s > 0 else None,
            "complete": step >= tc["steps"], "checkpoint_bytes": parts["bytes"]})
        _write(self.out / SUMMARY, json.dumps(self.summary, indent=1).encode())
        log.info("relay: checkpoint at step %d: %d steps in %.0f s of training, %.0f s of wall time (%.0f %%)",
                 step, steps, train_s, wall, 100 * train_s / max(wall, 1e-9))


def cmd_run(args: argparse.Namespace, clock: Callable[[], float]) -> int:
    import torch

    from leechcodec import train
    from leechcodec.models import ModelConfig
    from leechcodec.runtime import set_heap, set_threads

    set_threads(args.threads)
    set_heap(args.heap)
    device = train.resolve_device(args.device)
    pack_path, run_dir, out = Path(args.pack), Path(args.run_dir), Path(args.out)
    window = _Window(out, pack_path, sha256_file(pack_path), clock, train.device_name(device))
    window.summary["command"] = args.command_line
    deadline = window.t0 + args.minutes * 60 - args.margin
    out.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.pt"
    if args.resume:
        manifest = join_checkpoint(Path(args.resume), ckpt)
        if manifest["pack_sha256"] != window.pack_sha and not args.any_pack:
            raise ValueError(f"{args.pack} is not the pack this run was trained on ({manifest['pack']}, sha256 "
                             f"{manifest['pack_sha256'][:12]}…); give that pack, or --any-pack to continue anyway")
        prev_log = Path(args.resume) / LOG
        if prev_log.exists():
            (run_dir / "log.jsonl").write_bytes(gzip.decompress(prev_log.read_bytes()))
    given = [k for k in (*NEW_RUN, "batch") if getattr(args, k) is not None]
    if ckpt.exists():
        if given:
            raise ValueError(f"a resumed run keeps its configuration; drop --{', --'.join(given).replace('_', '-')}")
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model_cfg, tc = ModelConfig(**state["model_config"]), state["train_config"]
        window.start(state["step"], state["elapsed_s"])
        settings = {k: tc[k] for k in ("lmbda", "steps", "batch", "crop", "lr", "seed", "quant_warmup", "max_side",
                                        "lr_decay_from", "ckpt_every")}
        settings["gain_noise"] = tc.get("gain_noise", False)
        settings["context_lr_scale"] = tc.get("context_lr_scale", 1.0)
    else:
        model, settings = new_run_config(args, device.type)
        model_cfg = ModelConfig(**model)
        window.start(0, 0.0)
    cfg = train.TrainConfig(data=str(pack_path), out=str(run_dir), device=args.device, amp=args.amp,
                            log_every=args.log_every, ckpt_minutes=args.ckpt_minutes, compile=args.compile,
                            channels_last=args.channels_last, fused_adam=args.fused_adam,
                            val_dir=None, **settings)
    train.train(cfg, model_cfg, resume=True, clock=clock, deadline=deadline, on_checkpoint=window.on_checkpoint)
    return 0


def main(argv: list[str] | None = None, clock: Callable[[], float] = time.monotonic) -> int:
    """Command line; ``clock`` (seconds) times the window (tests inject one)."""
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.training.relay", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("pack", help="the training set as one tar of downscaled JPEGs")
    k.add_argument("--data", type=Path, required=True)
    k.add_argument("--out", type=Path, required=True)
    k.add_argument("--max-side", type=int, default=NEW_RUN["max_side"])
    k.add_argument("--quality", type=int, default=80)
    j = sub.add_parser("join", help="join a window's checkpoint parts (for leechcodec.export)")
    j.add_argument("dir", type=Path)
    j.add_argument("--out", type=Path, required=True)
    sl = sub.add_parser("slim", help="a window's folder without the optimizer states (for a small transfer)")
    sl.add_argument("dir", type=Path, help="a window's folder, or a leechcodec train checkpoint.pt (with --pack)")
    sl.add_argument("--out", type=Path, required=True)
    sl.add_argument("--pack", type=Path, default=None, help="the pack a checkpoint.pt was trained on")
    z = sub.add_parser("from-zoo", help="a slim training checkpoint of a released model (to train it further)")
    z.add_argument("model", help="the model's key, name.qN (leechcodec models lists them)")
    z.add_argument("--out", type=Path, required=True,
                   help="the checkpoint.pt to write (in a leechcodec train --out, or a relay run --run-dir)")
    z.add_argument("--steps", type=int, default=None, help="the continued run's --steps (default: the recorded one)")
    z.add_argument("--lr-decay-from", type=float, default=None,
                   help="the continued run's --lr-decay-from (default: the recorded one)")
    z.add_argument("--context", default="", metavar="KIND",
                   help="add a context model (checkerboard), starting as the released model (train it with --context)")
    r = sub.add_parser("run", help="train one window: a new run, or --resume the last window's folder")
    r.add_argument("--pack", required=True, help="the packed training set (relay pack)")
    r.add_argument("--out", required=True, help="where the checkpoint parts, manifest, log and summary go")
    r.add_argument("--resume", default=None, help="a folder that an earlier window wrote (its --out)")
    r.add_argument("--run-dir", default="runs/relay", help="working folder of the run on this machine")
    r.add_argument("--minutes", type=float, required=True, help="length of the window, from the start of this command")
    r.add_argument("--margin", type=float, default=20.0, help="seconds of the window kept for the last checkpoint")
    r.add_argument("--ckpt-minutes", type=float, default=2.0, help="minutes between checkpoints")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    r.add_argument("--amp", default=None, choices=["off", "bf16", "fp16"], help="default: bf16 on CUDA, off on CPU")
    r.add_argument("--compile", default="auto", choices=["auto", "on", "off"], help="auto: on CUDA")
    r.add_argument("--fused-adam", default="auto", choices=["auto", "on", "off"],
                   help="auto: on CUDA (on the CPU faster, not bit-identical to plain Adam)")
    r.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"],
                   help="NHWC weights and activations (auto: on CUDA; on the CPU with --amp bf16 it is "
                        "what lets oneDNN use bf16 matrix units where the CPU has them)")
    r.add_argument("--log-every", type=int, default=None, help="steps per log record (default: 1 CPU, 100 CUDA)")
    r.add_argument("--threads", type=int, default=None)
    add_heap_argument(r)
    r.add_argument("--any-pack", action="store_true", help="resume with another pack than the run's")
    new = r.add_argument_group("a new run (a resumed run keeps its own)")
    for key, value in NEW_RUN.items():
        if isinstance(value, bool):
            new.add_argument(f"--{key.replace('_', '-')}", action="store_const", const=True, default=None)
            continue
        kind = str if isinstance(value, str) else type(value)
        new.add_argument(f"--{key.replace('_', '-')}", type=kind, default=None, help=f"default {value}")
    new.add_argument("--batch", type=int, default=None,
                     help=", ".join(f"{d}: {b}" for d, b in DEVICE_BATCH.items()) + " by default")
    args = p.parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "leechcodec.bench.training.relay",
                                    *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.cmd == "pack":
            n, size = pack(args.data, args.out, args.max_side, args.quality)
            print(f"{n} images, {size / 2**20:.1f} MiB in {args.out} (sha256 {sha256_file(args.out)[:12]}…)")
            return 0
        if args.cmd == "slim":
            manifest = slim(args.dir, args.out, args.pack)
            print(f"{args.out}: step {manifest['step']}, {manifest['checkpoint']['bytes'] / 2**20:.1f} MiB without "
                  "optimizer states")
            return 0
        if args.cmd == "from-zoo":
            if args.out.exists():
                raise ValueError(f"{args.out} exists; it is not overwritten")
            record = from_zoo(args.model, args.out, args.steps, args.lr_decay_from, args.context)
            print(f"{args.out}: {args.model} at step {record['step']}, {record['pixels_seen'] / 1e9:.2f} Gpixel seen, "
                  "without optimizer states")
            return 0
        if args.cmd == "join":
            manifest = join_checkpoint(args.dir, args.out)
            print(f"{args.out}: step {manifest['step']} of {manifest['steps']}")
            return 0
        return cmd_run(args, clock)
    except (ValueError, FileNotFoundError) as exc:
        print(f"relay {args.cmd}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
