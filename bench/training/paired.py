"""Two training runs that drew the same crops, compared step by step.

Runs started from one checkpoint with the same seed (``relay from-zoo`` twice, say, with and
without ``--context``) draw the very same crops at every step, so the difference of their
logged losses is free of the crops' noise: a few hundredths of a percent are visible where
a comparison of unpaired runs could not tell 1 % from nothing. Each window's line gives the
mean loss, rate and PSNR of run A relative to run B over the steps both logged::

    python -m leechcodec.bench.training.paired bench/results/training/flagship/log-context.jsonl.gz \\
        bench/results/training/flagship/log-control-1e-4.jsonl.gz --after 61000 --window 1000
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["read_log", "compare", "main"]


def read_log(path: Path, after: int = 0) -> dict[int, dict]:
    """Records of a ``log.jsonl`` (or ``.jsonl.gz``) by step, the steps after ``after`` only."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        records = (json.loads(line) for line in f if line.strip())
        return {r["step"]: r for r in records if r["step"] > after}


def compare(a: dict[int, dict], b: dict[int, dict], window: int) -> list[dict]:
    """Per window of ``window`` steps (counted from the first common step): the steps both
    logged, A's mean loss and bpp relative to B's (a fraction) and A's PSNR minus B's (dB)."""
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("the two logs have no step in common")
    rows = []
    start = common[0] - 1
    for lo in range(start, common[-1], window):
        steps = [s for s in common if lo < s <= lo + window]
        if not steps:
            continue

        def mean(run, key):
            return float(np.mean([run[s][key] for s in steps]))

        rows.append({"from": lo, "to": lo + window, "steps": len(steps),
                     "loss": mean(a, "loss") / mean(b, "loss") - 1, "bpp": mean(a, "bpp") / mean(b, "bpp") - 1,
                     "psnr": mean(a, "psnr") - mean(b, "psnr")})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.training.paired", description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, help="run A's log.jsonl (or .jsonl.gz)")
    p.add_argument("b", type=Path, help="run B's log, the reference")
    p.add_argument("--after", type=int, default=0, help="only the steps after this one (where the two runs split)")
    p.add_argument("--window", type=int, default=1000)
    args = p.parse_args(argv)
    try:
        rows = compare(read_log(args.a, args.after), read_log(args.b, args.after), args.window)
    except (ValueError, FileNotFoundError) as exc:
        print(f"paired: error: {exc}", file=sys.stderr)
        return 1
    print("steps            logged  loss A/B − 1  bpp A/B − 1  PSNR A − B")
    for r in rows:
        print(f"{r['from']:>7}–{r['to']:<7}  {r['steps']:>6}  {100 * r['loss']:+10.3f} %  {100 * r['bpp']:+9.3f} %"
              f"  {r['psnr']:+8.4f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
