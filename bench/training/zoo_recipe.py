"""The model zoo recipe: gain–shape Λ24, Λ24-SQ, BSQ and scalar quantization at seven rates, equal budgets.

``python -m leechcodec.bench.training.zoo_recipe train --data DIR`` (runs in :data:`DEFAULT_RUNS`) trains every
model of :data:`RECIPE` that is not finished yet (each one a ``leechcodec train`` run in
its own process, so an interrupted recipe resumes where it stopped), and
``python -m leechcodec.bench.training.zoo_recipe export`` freezes the finished
checkpoints into the package zoo (registry entry with sha256, budget and the exact
training command).

The families differ only in the quantizer (the gain–shape family's h_s has 2k more output
channels, its gain prior's (μ, σ) per token): the transforms (g_a, g_s), the prior
network (h_a, h_s, EntropyBottleneck), the number of tokens k per latent position, λ, data,
seed, steps, batch and crop size are identical at every quality. The latent has D·k
channels, D being the token dimension: 24 for Λ24-SQ, gain–shape and scalar, 18 for BSQ (L = 18 bits
per token, a capacity of 18 bits against Λ24's log2 196,560 = 17.58).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from leechcodec.latent_codecs import LATENT_CODECS

__all__ = ["RECIPE", "BUDGET", "DEFAULT_RUNS", "Recipe", "train_command", "launch", "main"]

#: Shared by every model of the zoo. (The first zoo had 800 steps, in ``runs/zoo``.)
BUDGET = {"steps": 4000, "batch": 8, "crop": 128, "lr": 3e-4, "channels": 48, "hyper_channels": 48, "seed": 0}
DEFAULT_RUNS = Path("runs/zoo-4k")
FAMILIES = tuple(LATENT_CODECS)  # each family's zoo models are named after it


@dataclass(frozen=True)
class Recipe:
    quality: int
    tokens: int  # k, tokens per latent position
    lmbda: float  # loss = λ·255²·MSE + bpp


#: Rate points: λ, and more tokens per latent position for the high rates.
RECIPE = (
    Recipe(0, 2, 0.00015),  # added after q1–q6 shipped, so every family reaches 0.1 bpp (issue 14)
    Recipe(1, 4, 0.004),
    Recipe(2, 8, 0.006),
    Recipe(3, 8, 0.015),
    Recipe(4, 16, 0.025),
    Recipe(5, 16, 0.06),
    Recipe(6, 32, 0.08),  # k = 32: Λ24's rate saturates near 0.6 bpp with 16 tokens per position
)

#: Training order: pairs of families at the same quality first, so an early stop still
#: leaves comparable points.
ORDER = (3, 1, 5, 2, 4, 6, 0)


def run_dir(runs: Path, family: str, quality: int) -> Path:
    return runs / f"{family}-q{quality}"


def train_command(data: str, out: Path, family: str, r: Recipe, threads: int, steps: int | None = None,
                  device: str | None = None) -> list[str]:
    """The ``leechcodec train`` command of one model (``steps`` overrides the budget's)."""
    b = BUDGET
    cmd = ["leechcodec", "train", "--data", data, "--out", str(out), "--quantizer", family,
           "--tokens", str(r.tokens), "--channels", str(b["channels"]), "--hyper-channels", str(b["hyper_channels"]),
           "--lmbda", str(r.lmbda), "--steps", str(steps or b["steps"]), "--batch", str(b["batch"]),
           "--crop", str(b["crop"]), "--lr", str(b["lr"]), "--seed", str(b["seed"]), "--ckpt-every", "100",
           "--threads", str(threads)]
    return cmd + ["--device", device] if device else cmd


def launch(cmd: list[str], out: Path) -> subprocess.Popen:
    """Start a ``leechcodec train`` command in the background, its output appended to
    ``out/stdout.txt``; the command is printed first."""
    print("+", shlex.join(cmd), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "stdout.txt", "a") as log:
        # The same command through this interpreter (the `leechcodec` script may not be on PATH).
        return subprocess.Popen([sys.executable, "-m", "leechcodec.cli", *cmd[1:]], stdout=log,
                                stderr=subprocess.STDOUT)


def _finished(out: Path, steps: int) -> bool:
    """The run in ``out`` reached ``steps`` and no process is training it any more."""
    from leechcodec.traincheckpoint import is_training

    ckpt = out / "checkpoint.pt"
    if not ckpt.exists() or is_training(out):
        return False
    import torch

    return torch.load(ckpt, map_location="cpu", weights_only=False)["step"] >= steps


def _plan(families: list[str], qualities: list[int] | None = None) -> list[tuple[str, Recipe]]:
    by_q = {r.quality: r for r in RECIPE}
    return [(f, by_q[q]) for q in ORDER if not qualities or q in qualities for f in families]


def cmd_train(args: argparse.Namespace) -> int:
    """Train the unfinished models, ``--jobs`` processes at a time, in :data:`ORDER`."""
    steps = args.steps or BUDGET["steps"]
    todo = []
    for family, r in _plan(args.families, args.qualities):
        out = run_dir(args.runs, family, r.quality)
        if _finished(out, steps):
            print(f"{out}: finished", flush=True)
        else:
            todo.append((out, train_command(args.data, out, family, r, args.threads, args.steps, args.device)))
    running: list[tuple[Path, subprocess.Popen]] = []
    failed = 0

    def reap(wait: bool) -> None:
        nonlocal failed
        for item in list(running):
            out, proc = item
            rc = proc.wait() if wait else proc.poll()
            if rc is None:
                continue
            running.remove(item)
            if rc != 0:
                failed += 1
                print(f"{out}: training failed (exit {rc}); see {out / 'stdout.txt'}", file=sys.stderr)

    for out, cmd in todo:
        while len(running) >= args.jobs:
            time.sleep(1.0)
            reap(False)
        running.append((out, launch(cmd, out)))
    reap(True)
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from leechcodec.export import export_checkpoint
    from leechcodec.zoo import zoo_dir

    missing = 0
    for family, r in _plan(args.families, args.qualities):
        out = run_dir(args.runs, family, r.quality)
        if not _finished(out, args.steps or BUDGET["steps"]):
            print(f"{out}: not finished (or still training), skipped", file=sys.stderr)
            missing += 1
            continue
        cmd = train_command(args.data_note_path, out, family, r, args.threads, args.steps, args.device)
        entry = export_checkpoint(out / "checkpoint.pt", family, r.quality, args.zoo or zoo_dir(),
                                  command=shlex.join(cmd), data_note=args.data_note)
        print(f"{entry.key}: sha256 {entry.sha256}")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.training.zoo_recipe", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train every unfinished model of the recipe, in order")
    t.add_argument("--data", required=True, help="training image folder")
    t.add_argument("--jobs", type=int, default=1, help="trainings run at once (e.g. several per GPU)")
    e = sub.add_parser("export", help="freeze finished checkpoints into the zoo")
    e.add_argument("--zoo", type=Path, default=None)
    e.add_argument("--data-note-path", default="../shared/data/train", help="data path recorded in the command")
    e.add_argument("--data-note", default=None, help="what the training data was")
    for s in (t, e):
        s.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
        s.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--qualities", type=int, nargs="+", default=None, choices=[r.quality for r in RECIPE])
        s.add_argument("--steps", type=int, default=None,
                       help=f"override the budget's {BUDGET['steps']} steps (a new budget: use a new --runs)")
        s.add_argument("--device", default=None, help="passed to leechcodec train (cpu, cuda)")
    args = p.parse_args(argv)
    return cmd_train(args) if args.cmd == "train" else cmd_export(args)


if __name__ == "__main__":
    sys.exit(main())
