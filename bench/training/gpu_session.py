"""One prepared training session on a single CUDA device with a hard deadline.

A lent GPU comes with minutes, not hours, and a fixed transfer size. This script makes one
such session count and leaves a record of exactly what ran:

``pack`` (here, before the session) stores the training set the way the device gets it:
every image downscaled so its long side is at most ``--max-side`` (as ``leechcodec train``
does on load) and saved as JPEG (``--quality``, 4:4:4), so the whole set fits the transfer.

``run`` (on the device) then, within ``--deadline`` seconds of its start:

1. trains the zoo models named by ``--zoo-qualities`` (the :mod:`leechcodec.bench.training.zoo_recipe`
   recipe and budget, all families at once, ``--amp off``), giving up on them at
   ``--zoo-deadline``;
2. probes the default model's step rate for ``--probe-steps`` steps, then trains it for as many
   whole hundreds of steps as fit the time left (``--margin`` of it kept back), with the learning
   rate schedule of that step count — one ordinary ``leechcodec train`` command, printed and
   recorded, that anyone can rerun;
3. writes each finished run's model weights and training record (a checkpoint without the
   optimizer states, which :mod:`leechcodec.export` accepts) and a tar of the logs to ``--out``.

    python -m leechcodec.bench.training.gpu_session pack --data ../shared/data/train --out .gpudata/train
    python -m leechcodec.bench.training.gpu_session run --data .gpudata/train --runs runs/gpu --out "$OUT"
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from leechcodec.bench.training.zoo_recipe import FAMILIES, RECIPE, Recipe, launch, run_dir, train_command

__all__ = ["pack", "default_command", "zoo_command", "steps_that_fit", "GPU_QUALITIES", "DEVICE_DATA", "main"]

#: Zoo qualities whose shipped models were trained by this script (their registry entries name the device).
GPU_QUALITIES = (6,)
#: Where ``pack`` put the training set, as the shipped commands name it.
DEVICE_DATA = ".gpudata/train"

#: ``leech24-hyper`` (the default model until 2026-11-30): its architecture, larger crops and batches.
DEFAULT_RUN = {"quantizer": "leech24", "tokens": 8, "channels": 64, "hyper_channels": 64, "lmbda": 0.01,
               "batch": 16, "crop": 256, "lr": 3e-4, "seed": 0}


def pack(src: Path, dst: Path, max_side: int, quality: int) -> tuple[int, int]:
    """Downscale and re-encode every training image of ``src`` into ``dst``; (images, bytes)."""
    from PIL import Image

    from leechcodec.train import downscaled, list_images

    n = size = 0
    for path in list_images(src):
        out = dst / path.relative_to(src).with_suffix(".jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            downscaled(im, max_side).save(out, quality=quality, subsampling=0)
        n, size = n + 1, size + out.stat().st_size
    return n, size


def default_command(data: str, out: Path, steps: int, device: str = "cuda", **override) -> list[str]:
    d = {**DEFAULT_RUN, **override}
    return ["leechcodec", "train", "--data", data, "--out", str(out), "--quantizer", d["quantizer"],
            "--tokens", str(d["tokens"]), "--channels", str(d["channels"]), "--hyper-channels",
            str(d["hyper_channels"]), "--lmbda", str(d["lmbda"]), "--steps", str(steps), "--batch", str(d["batch"]),
            "--crop", str(d["crop"]), "--lr", str(d["lr"]), "--seed", str(d["seed"]), "--ckpt-every", "500",
            "--device", device, "--amp", "off", "--threads", "2"]


def zoo_command(data: str, out: Path, family: str, recipe: Recipe, device: str = "cuda",
                steps: int | None = None) -> list[str]:
    """A zoo model's command on the device: the recipe's, one thread, ``--device``, no autocast."""
    return train_command(data, out, family, recipe, threads=1, steps=steps, device=device) + ["--amp", "off"]


def steps_that_fit(seconds_per_step: float, seconds_left: float, startup_s: float) -> int:
    """Whole hundreds of steps that fit ``seconds_left`` after a start-up of ``startup_s``."""
    return max(0, int((seconds_left - startup_s) / seconds_per_step) // 100 * 100)


def _wait(procs: dict[Path, subprocess.Popen], until: float) -> dict[Path, int | None]:
    """Wait for every process until the wall-clock time ``until``; kill the rest (rc None)."""
    while any(p.poll() is None for p in procs.values()) and time.time() < until:
        time.sleep(1.0)
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()
    return {out: p.returncode if p.returncode is not None and p.returncode >= 0 else None for out, p in procs.items()}


def _seconds_per_step(log: Path, skip: int) -> float:
    """Seconds per step after the first ``skip`` steps (from the start where no record falls
    there: on CUDA a record holds many steps)."""
    recs = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
    a = ([{"step": 0, "elapsed_s": 0.0}] + [r for r in recs[:-1] if r["step"] <= skip])[-1]
    b = recs[-1]
    return (b["elapsed_s"] - a["elapsed_s"]) / (b["step"] - a["step"])


def _slim(ckpt: Path, dst: Path, command: list[str]) -> dict:
    """The checkpoint without optimizer states, plus the exact command; returns its summary."""
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    keep = ("model", "model_config", "train_config", "step", "elapsed_s", "crops_seen", "device", "world_size",
            "amp", "segments")
    torch.save({**{k: state[k] for k in keep if k in state}, "command": shlex.join(command)}, dst)
    return {"file": dst.name, "step": state["step"], "elapsed_s": round(state["elapsed_s"], 1),
            "device": state.get("device"), "command": shlex.join(command)}


def cmd_run(args: argparse.Namespace) -> int:
    t0 = time.time()
    end = t0 + args.deadline
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)), "runs": {}}
    finished: list[tuple[str, Path, list[str]]] = []  # (name, run dir, command)

    by_q = {r.quality: r for r in RECIPE}
    zoo = {}
    for q in args.zoo_qualities:
        for family in FAMILIES:
            d = run_dir(runs, family, q)
            cmd = zoo_command(args.data, d, family, by_q[q], args.device, args.zoo_steps)
            zoo[d] = (f"{family}-q{q}", cmd, launch(cmd, d))
    if zoo:
        rcs = _wait({d: p for d, (_, _, p) in zoo.items()}, min(end, t0 + args.zoo_deadline))
        for d, (name, cmd, _) in zoo.items():
            summary["runs"][name] = {"rc": rcs[d], "wall_s": round(time.time() - t0, 1)}
            if rcs[d] == 0:
                finished.append((name, d, cmd))
            else:
                print(f"{name}: {'killed at the zoo deadline' if rcs[d] is None else f'exit {rcs[d]}'}", flush=True)

    trial = {"batch": 2, "crop": 64} if args.trial else {}
    if args.default:
        probe = runs / "default-probe"
        t1 = time.time()
        probe_cmd = default_command(args.data, probe, args.probe_steps, args.device, **trial)
        rc = _wait({probe: launch(probe_cmd, probe)}, end - args.margin)[probe]
        startup = time.time() - t1
        if rc != 0:
            print(f"default probe failed (rc {rc}); see {probe / 'stdout.txt'}", flush=True)
            summary["default_probe"] = {"rc": rc}
        else:
            sps = _seconds_per_step(probe / "log.jsonl", args.probe_steps // 4)
            startup -= sps * args.probe_steps
            steps = int(steps_that_fit(sps, end - args.margin - time.time(), startup + 10) * args.fill) // 100 * 100
            steps = args.default_steps or steps
            summary["default_probe"] = {"seconds_per_step": sps, "startup_s": round(startup, 1), "steps": steps}
            print(f"default: {sps * 1000:.1f} ms/step, start-up {startup:.0f} s -> {steps} steps", flush=True)
            if steps >= 100 or args.default_steps:
                d = runs / "leech24-hyper-q3"
                cmd = default_command(args.data, d, steps, args.device, **trial)
                rc = _wait({d: launch(cmd, d)}, end - args.margin / 2)[d]
                summary["runs"]["leech24-hyper-q3"] = {"rc": rc, "wall_s": round(time.time() - t0, 1)}
                if rc == 0:
                    finished.append(("leech24-hyper-q3", d, cmd))

    for name, d, cmd in finished:
        summary["runs"][name].update(_slim(d / "checkpoint.pt", out / f"{name}.pt", cmd))
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        for d in sorted(runs.iterdir()) if runs.exists() else []:
            for f in ("log.jsonl", "stdout.txt"):
                if (d / f).exists():
                    tar.add(d / f, arcname=f"{d.name}/{f}")
    summary["wall_s"] = round(time.time() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1), flush=True)
    return 0 if finished else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.training.gpu_session", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("pack", help="downscale and re-encode a training set for the transfer")
    k.add_argument("--data", type=Path, required=True)
    k.add_argument("--out", type=Path, required=True)
    k.add_argument("--max-side", type=int, default=1536)
    k.add_argument("--quality", type=int, default=88)
    r = sub.add_parser("run", help="train on one CUDA device within a deadline")
    r.add_argument("--data", required=True)
    r.add_argument("--runs", default="runs/gpu")
    r.add_argument("--out", required=True, help="where the weights, logs and summary go")
    r.add_argument("--deadline", type=float, default=560.0, help="seconds from start to the last byte written")
    r.add_argument("--zoo-qualities", type=int, nargs="*", default=[], choices=[r.quality for r in RECIPE],
                   help="zoo recipe qualities to train")
    r.add_argument("--zoo-deadline", type=float, default=240.0, help="seconds after which zoo runs are abandoned")
    r.add_argument("--device", default="cuda", help="cuda (cpu only to try the script out)")
    r.add_argument("--zoo-steps", type=int, default=None, help="override the zoo budget's steps (trials only)")
    r.add_argument("--trial", action="store_true", help="a tiny default model batch (to try the script out)")
    r.add_argument("--no-default", dest="default", action="store_false", help="skip the default model")
    r.add_argument("--probe-steps", type=int, default=60)
    r.add_argument("--margin", type=float, default=45.0, help="seconds kept for writing the results")
    r.add_argument("--fill", type=float, default=0.9, help="fraction of the fitting steps to ask for")
    r.add_argument("--default-steps", type=int, default=None,
                   help="train the default model for exactly this many steps (the probe still runs)")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        n, size = pack(args.data, args.out, args.max_side, args.quality)
        print(f"{n} images, {size / 1e6:.1f} MB in {args.out}")
        return 0
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
