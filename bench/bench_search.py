"""Throughput of the exact Λ24 nearest-codeword search against brute force.

    python -m leechcodec.bench.bench_search [--tokens 50000] [--bf-tokens 5000]
                                            [--threads 2] [--seed 0] [--json]

Both are measured in the same run on the same seeded Gaussian tokens ``(N, 24)`` float32:

- ``structured``: :func:`leechcodec.lattice.leech_quantize` (numba, ``--threads`` threads)
  on all ``--tokens`` tokens; best of ``--repeats`` runs;
- ``bruteforce``: float32 ``tokens @ codebook.T`` over all 196,560 codewords, chunked
  (``--chunk`` rows), plus argmax, with OpenBLAS set to ``--threads`` threads; timed on
  the first ``--bf-tokens`` tokens only and reported per token.

Warm-up calls (numba compilation or cache load, first BLAS call) are not timed. CPU time
of the process (all threads) per token is reported too: on a shared machine it is
steadier than wall time. The load average at start is recorded for the same reason.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import sys
import time

import numba
import numpy as np

from leechcodec.kernels.leech import all_codewords
from leechcodec.lattice import NUM_CODEWORDS, leech_quantize


def blas_threads(n: int | None = None) -> int | None:
    """Set OpenBLAS's thread count (if ``n``) in the loaded library; return the count in
    effect, or None when no OpenBLAS with the usual entry points is loaded."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {ln.split()[-1] for ln in fh if "openblas" in ln.lower() and "/" in ln}
    except OSError:
        return None
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for suffix in ("64_", ""):
            get = getattr(lib, "openblas_get_num_threads" + suffix, None)
            put = getattr(lib, "openblas_set_num_threads" + suffix, None)
            if get is None or put is None:
                continue
            if n is not None:
                put(ctypes.c_int(n))
            return int(get())
    return None


def bruteforce_search(x: np.ndarray, cb_t: np.ndarray, chunk: int) -> np.ndarray:
    """Argmax of ``x @ cb_t`` (float32), ``chunk`` rows at a time: ``(N, 24) -> (N,)``."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for s in range(0, x.shape[0], chunk):
        out[s : s + chunk] = np.argmax(x[s : s + chunk] @ cb_t, axis=1)
    return out


def _timed(fn, *args) -> tuple[float, float, np.ndarray]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - w0, time.process_time() - c0, out


def run(tokens: int, bf_tokens: int, threads: int, seed: int, chunk: int, repeats: int) -> dict:
    numba.set_num_threads(threads)
    blas = blas_threads(threads)
    load = os.getloadavg()
    x = np.random.default_rng(seed).standard_normal((tokens, 24)).astype(np.float32)
    xb = x[: min(bf_tokens, tokens)]
    cb_t = np.ascontiguousarray(all_codewords().T, dtype=np.float32)

    leech_quantize(x[:1000])  # warm-up: compile or load the numba cache
    runs = [_timed(leech_quantize, x) for _ in range(repeats)]
    wall, cpu, idx = min(runs, key=lambda r: r[0])

    bruteforce_search(xb[:chunk], cb_t, chunk)  # warm-up
    bf_wall, bf_cpu, bf_idx = _timed(bruteforce_search, xb, cb_t, chunk)

    structured = {"tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall,
                  "cpu_us_per_token": 1e6 * cpu / tokens}
    brute = {"tokens": len(xb), "wall_s": bf_wall, "tokens_per_s": len(xb) / bf_wall,
             "cpu_us_per_token": 1e6 * bf_cpu / len(xb), "chunk": chunk, "dtype": "float32"}
    return {
        "schema": 1,
        "benchmark": "leech_search",
        "codewords": NUM_CODEWORDS,
        "seed": seed,
        "threads": {"numba": numba.get_num_threads(), "openblas": blas},
        "loadavg_at_start": load,
        "cpu_count": os.cpu_count(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "numba": numba.__version__},
        "structured": structured,
        "bruteforce": brute,
        "speedup": structured["tokens_per_s"] / brute["tokens_per_s"],
        "agreement_on_bruteforce_tokens": float(np.mean(idx[: len(xb)] == bf_idx)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.bench_search", description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=50000, help="tokens for the structured search")
    p.add_argument("--bf-tokens", type=int, default=5000, help="tokens for brute force (a prefix)")
    p.add_argument("--threads", type=int, default=2, help="numba and OpenBLAS threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=256, help="brute-force rows per matmul")
    p.add_argument("--repeats", type=int, default=3, help="structured runs (best is kept)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if min(args.tokens, args.bf_tokens, args.threads, args.chunk, args.repeats) < 1:
        print("error: counts must be positive", file=sys.stderr)
        return 2
    res = run(args.tokens, args.bf_tokens, args.threads, args.seed, args.chunk, args.repeats)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    s, b = res["structured"], res["bruteforce"]
    print(
        f"structured (numba, {res['threads']['numba']} threads): {s['tokens_per_s']:,.0f} tokens/s "
        f"({s['tokens']:,} tokens, {s['cpu_us_per_token']:.2f} CPU-us/token)\n"
        f"brute force (float32 matmul, OpenBLAS {res['threads']['openblas']} threads, timed on "
        f"{b['tokens']:,} tokens, scaled per token): {b['tokens_per_s']:,.0f} tokens/s "
        f"({b['cpu_us_per_token']:.0f} CPU-us/token)\n"
        f"speedup {res['speedup']:.0f}x; agreement on the brute-force tokens "
        f"{100 * res['agreement_on_bruteforce_tokens']:.2f}%; load average at start "
        f"{res['loadavg_at_start'][0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
