"""Idle OpenMP threads in training, measured: sleeping (``PASSIVE``), the runtime's default, spinning (``ACTIVE``).

    python -m leechcodec.bench.micro.bench_omp [--rounds 2] [--steps 40] [--warmup 10]
        [--family leech24gs] [--config flagship] [--batch 8] [--crop 128] [--threads 2]
        [--data DIR_OR_TAR] [--out bench/results/bench_omp_cpu.json]

The ``leechcodec`` command sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it: next to
other busy processes a spinning thread of one OpenMP runtime starves the other's
(``bench_startup``). A training step is thousands of short parallel regions, and a thread that
sleeps between them must be woken for the next. ``OMP_WAIT_POLICY`` is read once, when the
runtime loads, so each measurement is a fresh process of ``bench_train`` (the ``new_bf16_nhwc``
step, compiled unless ``--compile off``, the kept heap; the flagship's configuration by
default), the policies taking turns, ``--rounds`` times. The record gives each process's step
time (wall and CPU) and the ratios of the medians against ``PASSIVE``.
"""

from __future__ import annotations

import os
import sys

from leechcodec.bench.micro.bench_heap import SETTING_KEYS, medians, process_parser, run_rounds
from leechcodec.bench.results import write_record

__all__ = ["POLICIES", "main"]

#: Label → value of OMP_WAIT_POLICY in the child (None: unset, the runtime's default).
POLICIES = {"passive": "PASSIVE", "default": None, "active": "ACTIVE"}


def main(argv: list[str] | None = None) -> int:
    args = process_parser("python -m leechcodec.bench.micro.bench_omp", __doc__.splitlines()[0],
                          "bench_omp_cpu.json").parse_args(argv)
    runs = run_rounds(args, {label: {"policy": "keep", "env": {"OMP_WAIT_POLICY": value}}
                             for label, value in POLICIES.items()})
    med = medians(runs, ("step_ms", "cpu_ms"))
    record = {"schema": "leechcodec.bench.omp", "schema_version": 1, "cpu_count": os.cpu_count(),
              "settings": {k: getattr(args, k) for k in SETTING_KEYS},
              "policies": POLICIES, "runs": runs, "median": med,
              "passive_over": {k: round(med["passive"]["step_ms"] / med[k]["step_ms"], 3) for k in POLICIES}}
    write_record(args.out, record)
    print("passive / other (wall): " + ", ".join(f"{k} {v}×" for k, v in record["passive_over"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
