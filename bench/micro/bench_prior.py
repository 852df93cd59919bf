"""Throughput of the exact Leech prior tables (``leechcodec.kernels.leech_prior``).

    python -m leechcodec.bench.micro.bench_prior [--tokens 12000] [--threads 2] [--json]
    python -m leechcodec.bench.micro.bench_prior --torch [--repeats 5] [--previous REV] [--json]

Measures tokens/s, numba kernels against their numpy twins in the same run, and the
portable arithmetic (coder profile 3, ``portable=True``, the default) against the
platform's libm (profile 2, ``portable=False``), for

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

``--torch`` measures the differentiable training prior instead (:mod:`leechcodec.prior`),
one thread for torch and numba, float32, the median of ``--repeats`` runs with the
implementations alternating: ``old`` (``_leech_log_partition_reference``, the first one),
``previous`` (``leech_log_partition`` as of git revision ``--previous``, read with ``git
show``; left out when git or the revision is unavailable) and ``new`` (the current one):

- ``log Z`` forward + backward of each on the 9,216 tokens of a training batch — the prior
  parameters of an untrained ``LeechCodecModel(ModelConfig())`` (the default config: Λ24,
  8 tokens, 64 channels) on 8 random 192×192 crops — and on as many "sharp" tokens
  (``a ~ N(0, 4)`` clipped to ±16, ``b ~ U(0, 0.5)``);
- a training step of that model on those crops (forward, loss, backward) with each
  implementation, and inside it the quantizer (forward + backward on the step's latent;
  on the CPU that is the numba search) and the prior (``leech_log_prob`` forward +
  backward on the step's tensors), timed separately on the same tensors; the report gives
  (quantizer + prior) / step.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Callable

import numba
import numpy as np

from leechcodec.kernels import leech_prior as lp

TORCH_BATCH, TORCH_CROP = 8, 192
#: The parent of the commit that made the training prior sync-free.
PREVIOUS_PRIOR = "e7c2689^"


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


def decoder_tables(f: np.ndarray, idx: np.ndarray, twin: bool = False, portable: bool = True) -> None:
    """The decoder's sequence of calls, given the symbols it will have decoded."""
    shape_logp, major_p, minor_p = (
        (lp.shape_log_probs_numpy, lp.major_probs_numpy, lp.minor_probs_numpy)
        if twin
        else (functools.partial(fn, portable=portable) for fn in (lp.shape_log_probs, lp.major_probs, lp.minor_probs))
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
    for portable in (True, False):  # compile / load the cache outside the timings
        lp.log_partition(f[:8], portable=portable)
        lp.coding_tables(f[:8], idx[:8], portable=portable)
        decoder_tables(f[:8], idx[:8], portable=portable)
    cases = {
        "log_partition": (lambda p: lp.log_partition(f, portable=p), lambda: lp.log_partition_numpy(ft)),
        "encoder": (lambda p: lp.coding_tables(f, idx, portable=p), lambda: lp.coding_tables_numpy(ft, it)),
        "decoder": (lambda p: decoder_tables(f, idx, portable=p), lambda: decoder_tables(ft, it, twin=True)),
    }
    results = {}
    for name, (nb, tw) in cases.items():
        (t_nb, cpu_nb), (t_libm, cpu_libm) = _alternating(lambda: nb(True), lambda: nb(False), repeats)
        t_tw, _ = best_time(tw, max(1, repeats // 2))
        results[name] = {
            "numba_tokens_per_s": tokens / t_nb,
            "numba_seconds": t_nb,
            "numba_cpu_us_per_token": cpu_nb / tokens * 1e6,
            "libm_tokens_per_s": tokens / t_libm,
            "libm_cpu_us_per_token": cpu_libm / tokens * 1e6,
            "portable_over_libm_cpu": cpu_nb / cpu_libm,
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
        "machine": _machine(),
        "results": results,
    }


def _alternating(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[tuple, tuple]:
    """:func:`best_time` of ``a`` and of ``b``, their runs interleaved (a shared machine's load
    then weighs on both alike)."""
    best_a = best_b = (float("inf"), float("inf"))
    for _ in range(repeats):
        best_a = min(best_a, best_time(a, 1))
        best_b = min(best_b, best_time(b, 1))
    return best_a, best_b


def _machine() -> dict:
    """CPU count, processor and the 1-minute load average at report time."""
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "load_average_1min": os.getloadavg()[0]}


def _median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU milliseconds per function, the functions alternating each round."""
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm up (tables, caches, numba compilation)
    for _ in range(repeats):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            runs[name].append((time.perf_counter() - t0, time.process_time() - c0))
    return {k: {"wall_ms": 1e3 * float(np.median([w for w, _ in v])), "cpu_ms": 1e3 * float(np.median([c for _, c in v]))}
            for k, v in runs.items()}


def previous_log_partition(rev: str) -> Callable | None:
    """``leech_log_partition`` of ``leechcodec/prior.py`` at git revision ``rev``, or None when
    git or that revision is not available (an installed copy, a shallow clone)."""
    root = Path(__file__).resolve().parents[2]
    try:
        src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:leechcodec/prior.py"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    module = types.ModuleType("leechcodec_prior_previous")
    exec(compile(src, f"{rev}:leechcodec/prior.py", "exec"), module.__dict__)
    return module.leech_log_partition


def torch_prior_report(repeats: int, seed: int, previous: str | None = PREVIOUS_PRIOR) -> dict:
    """Old, previous and new training prior and their share of a training step (module docstring)."""
    import torch

    from leechcodec import prior
    from leechcodec.models import LeechCodecModel, ModelConfig

    threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    implementations = {"old": prior._leech_log_partition_reference, "new": prior.leech_log_partition}
    prev = previous_log_partition(previous) if previous else None
    if prev is not None:
        implementations = {"old": implementations["old"], "previous": prev, "new": implementations["new"]}
    current = prior.leech_log_partition
    try:
        torch.manual_seed(seed)
        config = ModelConfig()
        model = LeechCodecModel(config)
        x = torch.rand(TORCH_BATCH, 3, TORCH_CROP, TORCH_CROP, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            y = model.g_a(x)
            z_hat, _ = model.entropy_bottleneck(model.h_a(y))
            a, b = model.prior_params(z_hat)
            codes = model.quantizer(y).codes
        at, bt, ct = (model.tokens_of(t).reshape(-1, 24).contiguous() for t in (a, b, codes))
        n = at.shape[0]
        gen = torch.Generator().manual_seed(seed + 1)
        sharp = ((2 * torch.randn(n, 24, generator=gen)).clamp(-16, 16), 0.5 * torch.rand(n, 24, generator=gen))

        def log_z(f, a0, b0):
            def run():
                a1, b1 = a0.clone().requires_grad_(), b0.clone().requires_grad_()
                f(a1, b1).sum().backward()
            return run

        results = {}
        for name, (a0, b0) in {"model": (at, bt), "sharp": sharp}.items():
            results[f"log_z_{name}"] = _median_times({k: log_z(f, a0, b0) for k, f in implementations.items()}, repeats)

        def step(f):
            def run():
                prior.leech_log_partition = f
                try:
                    out = model(x)
                    bpp = (out.token_bits.sum() + out.hyper_bits.sum()) / x[:, 0].numel()
                    loss = 0.01 * 255**2 * torch.mean((out.x_hat - x) ** 2) + bpp
                    model.zero_grad(set_to_none=True)
                    loss.backward()
                finally:
                    prior.leech_log_partition = current
            return run

        def in_step_prior(f):
            def run():
                a1, b1 = at.clone().requires_grad_(), bt.clone().requires_grad_()
                (prior.factorized_logits(a1, b1, ct) - f(a1, b1)).sum().backward()
            return run

        y_grad = y.clone().requires_grad_()

        def quantizer():
            model.quantizer(y_grad).y_hat.sum().backward()

        fns = {f"step_{k}": step(f) for k, f in implementations.items()}
        fns.update({f"prior_{k}": in_step_prior(f) for k, f in implementations.items()})
        fns["quantizer"] = quantizer
        results["training_step"] = _median_times(fns, repeats)
    finally:
        prior.leech_log_partition = current
        torch.set_num_threads(threads)
        numba.set_num_threads(numba_threads)
    ts = results["training_step"]
    share = {k: (ts["quantizer"]["cpu_ms"] + ts[f"prior_{k}"]["cpu_ms"]) / ts[f"step_{k}"]["cpu_ms"] for k in implementations}
    return {
        "schema": 1,
        "benchmark": "torch_prior",
        "tokens": n,
        "dtype": "float32",
        "threads": 1,
        "repeats": repeats,
        "seed": seed,
        "previous_revision": previous if prev is not None else None,
        "model": config.to_dict(),
        "batch": [TORCH_BATCH, 3, TORCH_CROP, TORCH_CROP],
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numba": numba.__version__},
        "machine": _machine(),
        "results": results,
        "share_quantizer_plus_prior": share,
    }


def _print_torch_report(report: dict) -> None:
    r = report["results"]
    print(f"torch prior: {report['tokens']} tokens, float32, 1 thread, median of {report['repeats']} "
          f"(old and new alternating), load average {report['machine']['load_average_1min']:.1f}")
    names = list(report["share_quantizer_plus_prior"])
    print("  log Z forward+backward, cpu ms (wall ms):  " + "   ".join(names))
    for name in ("model", "sharp"):
        cells = [f"{r[f'log_z_{name}'][k]['cpu_ms']:.0f} ({r[f'log_z_{name}'][k]['wall_ms']:.0f})" for k in names]
        print(f"  {name:22s} " + "   ".join(cells))
    ts = report["results"]["training_step"]
    print(f"  training step (batch {TORCH_BATCH}, {TORCH_CROP}x{TORCH_CROP}, forward+backward), cpu ms:")
    for k in names:
        print(f"    {k}: step {ts[f'step_{k}']['cpu_ms']:6.0f}   prior {ts[f'prior_{k}']['cpu_ms']:5.0f}   "
              f"quantizer {ts['quantizer']['cpu_ms']:4.0f}   (quantizer + prior) / step "
              f"{100 * report['share_quantizer_plus_prior'][k]:4.1f}%")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m leechcodec.bench.micro.bench_prior", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--tokens", type=int, default=12_000, help="tokens for the numba kernels (default 12000)")
    ap.add_argument("--twin-tokens", type=int, default=200, help="tokens for the numpy twins (default 200)")
    ap.add_argument("--threads", type=int, default=2, help="numba threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ap.add_argument("--torch", action="store_true",
                    help="benchmark the differentiable training prior instead (old vs new, share of a training step)")
    ap.add_argument("--previous", default=PREVIOUS_PRIOR,
                    help=f"--torch: git revision of the previous prior (default {PREVIOUS_PRIOR}; 'none' to skip)")
    args = ap.parse_args(argv)
    if args.torch:
        if args.repeats < 1:
            print("error: --repeats must be positive", file=sys.stderr)
            return 2
        report = torch_prior_report(args.repeats, args.seed, None if args.previous == "none" else args.previous)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            _print_torch_report(report)
        return 0
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
              f"   numpy {r['numpy_tokens_per_s']:6.0f} tok/s   x{r['speedup']:.0f}"
              f"   libm {r['libm_tokens_per_s']:8.0f} tok/s (portable/libm cpu x{r['portable_over_libm_cpu']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
