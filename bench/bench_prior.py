"""Throughput of the exact Leech prior tables (``leechcodec.kernels.leech_prior``).

    python -m leechcodec.bench.bench_prior [--tokens 12000] [--threads 2] [--json]

Measures tokens/s, numba kernels against their numpy twins in the same run, for

- ``log_partition``: log Z only;
- ``encoder``: :func:`coding_tables` — P(shape) for every token plus each token's own
  P(major | shape) row and P(minor | shape, major) row (the whole encoder-side table work);
- ``decoder``: :func:`shape_log_probs`, then :func:`major_probs` and :func:`minor_probs`
  per shape group (what the decoder runs, same numbers bit for bit).

Logits are the smooth Gaussian family of DESIGN §3, ``f_i(v) = −(v − m_i)²/(2 s_i²)``,
with ``m`` a random direction of norm √32 plus N(0, 0.7²) noise and ``s ∈ [0.6, 2]`` (priors
of about 6–9 bits of entropy per token, all on the fast shape-2 tier; much sharper priors
take slower exact paths, see ``leech_prior``);
indices are uniform over the codebook (about half of them shape 3·1²³). The numpy twins
run on ``--twin-tokens`` tokens (they are ~50–100× slower) and are reported per token.
CPU time (all threads) per token is printed too: on a shared machine it is steadier than
wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Callable

import numba
import numpy as np

from leechcodec.kernels import leech_prior as lp


def make_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-shaped logits ``(n, 24, 9)`` float64 and uniform indices ``(n,)`` int64."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, 24))
    u *= np.sqrt(32) / np.linalg.norm(u, axis=1, keepdims=True)
    m = u + rng.normal(scale=0.7, size=(n, 24))
    s = rng.uniform(0.6, 2.0, size=(n, 24))
    v = np.arange(-4, 5, dtype=np.float64)
    f = -((v - m[:, :, None]) ** 2) / (2 * s[:, :, None] ** 2)
    return np.ascontiguousarray(f), rng.integers(0, lp.N_CODEWORDS, n)


def decoder_tables(f: np.ndarray, idx: np.ndarray, twin: bool = False) -> None:
    """The decoder's sequence of calls, given the symbols it will have decoded."""
    shape_logp, major_p, minor_p = (
        (lp.shape_log_probs_numpy, lp.major_probs_numpy, lp.minor_probs_numpy)
        if twin
        else (lp.shape_log_probs, lp.major_probs, lp.minor_probs)
    )
    shape_logp(f)
    offsets, minor_sizes = np.asarray(lp.SHAPE_OFFSETS), np.asarray(lp.MINOR_SIZES)
    shape = (idx >= offsets[1]).astype(np.int64) + (idx >= offsets[2])
    major = (idx - offsets[shape]) // minor_sizes[shape]
    for s in range(3):
        pos = np.flatnonzero(shape == s)
        major_p(f[pos], s)
        minor_p(f[pos], s, major[pos])


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall time and the process CPU time (all threads) of that run, in seconds."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    return best


def run(tokens: int, twin_tokens: int, threads: int, repeats: int, seed: int) -> dict:
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return _run(tokens, twin_tokens, repeats, seed)
    finally:
        numba.set_num_threads(previous)


def _run(tokens: int, twin_tokens: int, repeats: int, seed: int) -> dict:
    f, idx = make_inputs(tokens, seed)
    ft, it = f[:twin_tokens], idx[:twin_tokens]
    lp.log_partition(f[:8])  # compile / load the cache outside the timings
    lp.coding_tables(f[:8], idx[:8])
    decoder_tables(f[:8], idx[:8])
    cases = {
        "log_partition": (lambda: lp.log_partition(f), lambda: lp.log_partition_numpy(ft)),
        "encoder": (lambda: lp.coding_tables(f, idx), lambda: lp.coding_tables_numpy(ft, it)),
        "decoder": (lambda: decoder_tables(f, idx), lambda: decoder_tables(ft, it, twin=True)),
    }
    results = {}
    for name, (nb, tw) in cases.items():
        t_nb, cpu_nb = best_time(nb, repeats)
        t_tw, _ = best_time(tw, max(1, repeats // 2))
        results[name] = {
            "numba_tokens_per_s": tokens / t_nb,
            "numba_seconds": t_nb,
            "numba_cpu_us_per_token": cpu_nb / tokens * 1e6,
            "numpy_tokens_per_s": twin_tokens / t_tw,
            "speedup": (tokens / t_nb) / (twin_tokens / t_tw),
        }
    return {
        "schema": 1,
        "benchmark": "leech_prior",
        "tokens": tokens,
        "twin_tokens": twin_tokens,
        "threads": numba.get_num_threads(),
        "repeats": repeats,
        "seed": seed,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__},
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_1min": os.getloadavg()[0],
        },
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m leechcodec.bench.bench_prior", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--tokens", type=int, default=12_000, help="tokens for the numba kernels (default 12000)")
    ap.add_argument("--twin-tokens", type=int, default=200, help="tokens for the numpy twins (default 200)")
    ap.add_argument("--threads", type=int, default=2, help="numba threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args(argv)
    if args.tokens < 1 or args.twin_tokens < 1 or args.repeats < 1:
        print("error: --tokens, --twin-tokens and --repeats must be positive", file=sys.stderr)
        return 2
    if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        print(f"error: --threads must be in [1, {numba.config.NUMBA_NUM_THREADS}]", file=sys.stderr)
        return 2
    report = run(args.tokens, min(args.twin_tokens, args.tokens), args.threads, args.repeats, args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    load = report["machine"]["load_average_1min"]
    print(f"leech_prior: {report['tokens']} tokens, {report['threads']} numba threads "
          f"(numpy twin on {report['twin_tokens']} tokens), load average {load:.1f}")
    for name, r in report["results"].items():
        print(f"  {name:14s} numba {r['numba_tokens_per_s']:10.0f} tok/s ({r['numba_seconds']:.3f} s)"
              f" {r['numba_cpu_us_per_token']:5.1f} cpu-µs/tok"
              f"   numpy {r['numpy_tokens_per_s']:6.0f} tok/s   x{r['speedup']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
