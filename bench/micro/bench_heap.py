"""The trainer's heap policy, measured: glibc's defaults against keeping freed memory mapped.

    python -m leechcodec.bench.micro.bench_heap [--rounds 2] [--steps 40] [--warmup 10]
        [--family leech24gs] [--config flagship] [--batch 8] [--crop 128] [--threads 2]
        [--data DIR_OR_TAR] [--out bench/results/bench_heap_cpu.json]

``leechcodec train`` calls :func:`leechcodec.runtime.keep_freed_memory` (``--heap keep``, the
default): blocks up to 32 MiB come from the heap and its free top is never given back, so a
step reuses the pages of the step before. With glibc's defaults (``--heap glibc``) the
activations of every step are mapped, page-faulted and zeroed afresh.

The policy is process-wide and set once, so each measurement is a fresh process of
``bench_train`` (its ``new_bf16_nhwc`` step: bf16 autocast and channels_last, with
``torch.compile`` unless ``--compile off``; the flagship's training configuration by default),
the two policies taking turns, ``--rounds`` times: a shared machine's load falls on both
alike. The record gives each process's step time (wall and CPU) and page faults per step,
and the ratios of the medians (glibc over keep).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from leechcodec.bench.results import write_record

__all__ = ["main"]

POLICIES = ("glibc", "keep")


def _one(policy: str, args: argparse.Namespace, folder: Path, i: int, env: dict[str, str | None] | None = None,
         label: str | None = None) -> dict:
    """One ``bench_train`` process with heap ``policy`` and the environment changed by ``env``
    (a value None removes the variable); its step time, CPU time and page faults."""
    out = folder / f"{label or policy}-{i}.json"
    cmd = [sys.executable, "-m", "leechcodec.bench.micro.bench_train", "--device", "cpu",
           "--families", args.family, "--configs", args.config, "--variants", "new_bf16_nhwc",
           "--batch", str(args.batch), "--crop", str(args.crop), "--compile", args.compile,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--rounds", "1",
           "--heap", policy, "--out", str(out)]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    cmd += ["--data", args.data] if args.data else []
    child = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child.pop(key, None)
        else:
            child[key] = value
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=child)
    rec = json.loads(out.read_text())
    v = rec["results"][0]["variants"]["new_bf16_nhwc"]
    return {"step_ms": v["step_ms"], "cpu_ms": v["cpu_ms"], "minflt_per_step": v["minflt_per_step"],
            "mpix_per_s": v["mpix_per_s"], "options": v["options"], "heap_kept": rec["settings"]["heap_kept"],
            "omp_wait_policy": rec["settings"].get("omp_wait_policy"),
            "load_average": rec["load_average"]}


def process_parser(prog: str, description: str, out_name: str) -> argparse.ArgumentParser:
    """The options of a bench that runs one ``bench_train`` process per setting (:func:`_one`)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=40, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=10, help="steps before timing (compilation, the heap's growth)")
    p.add_argument("--family", default="leech24gs")
    p.add_argument("--config", default="flagship")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--compile", choices=["on", "off"], default="on")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data", default=None, help="training images, folder or pack (default $LEECHCODEC_DATA/train)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results" / out_name)
    return p


#: The options a record's ``settings`` repeat.
SETTING_KEYS = ("rounds", "steps", "warmup", "family", "config", "batch", "crop", "compile", "threads", "data")


def run_rounds(args: argparse.Namespace, variants: dict[str, dict]) -> dict[str, list[dict]]:
    """``--rounds`` rounds, each one :func:`_one` process per variant in turn (label → its
    keyword arguments), so that a shared machine's load falls on all alike; label → its runs."""
    runs: dict[str, list[dict]] = {label: [] for label in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for label, kwargs in variants.items():
                r = _one(args=args, folder=Path(tmp), i=i, label=label, **kwargs)
                runs[label].append(r)
                print(f"round {i + 1} {label}: {r['step_ms']:.0f} ms/step (CPU {r['cpu_ms']:.0f} ms), "
                      f"{r['minflt_per_step']:.0f} page faults/step", flush=True)
    return runs


def medians(runs: dict[str, list[dict]], metrics: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Label → the median of each of ``metrics`` over its runs."""
    return {k: {m: statistics.median(r[m] for r in rs) for m in metrics} for k, rs in runs.items()}


def main(argv: list[str] | None = None) -> int:
    args = process_parser("python -m leechcodec.bench.micro.bench_heap", __doc__.splitlines()[0],
                          "bench_heap_cpu.json").parse_args(argv)
    runs = run_rounds(args, {policy: {"policy": policy} for policy in POLICIES})
    med = medians(runs, ("step_ms", "cpu_ms", "minflt_per_step"))
    record = {"schema": "leechcodec.bench.heap", "schema_version": 1, "cpu_count": os.cpu_count(),
              "settings": {k: getattr(args, k) for k in SETTING_KEYS},
              "runs": runs, "median": med,
              "glibc_over_keep": round(med["glibc"]["step_ms"] / med["keep"]["step_ms"], 3),
              "glibc_over_keep_cpu": round(med["glibc"]["cpu_ms"] / med["keep"]["cpu_ms"], 3)}
    write_record(args.out, record)
    print(f"glibc / keep: {record['glibc_over_keep']}× wall, {record['glibc_over_keep_cpu']}× CPU; page faults per "
          f"step {med['glibc']['minflt_per_step']:.0f} → {med['keep']['minflt_per_step']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
