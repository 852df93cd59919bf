"""Throughput of the exact Λ24 nearest-codeword search against brute force.

    python -m leechcodec.bench.micro.bench_search [--tokens 50000] [--bf-tokens 5000]
                                            [--threads 2] [--seed 0] [--json]
    python -m leechcodec.bench.micro.bench_search --torch [--tokens 20000] [--old-tokens 4000]
                                            [--exact-tokens 1000000] [--threads 1] [--json]

Both are measured in the same run on the same seeded Gaussian tokens ``(N, 24)`` float32:

- ``structured``: :func:`leechcodec.lattice.leech_quantize` (numba, ``--threads`` threads)
  on all ``--tokens`` tokens; best of ``--repeats`` runs;
- ``bruteforce``: float32 ``tokens @ codebook.T`` over all 196,560 codewords, chunked
  (``--chunk`` rows), plus argmax, with OpenBLAS set to ``--threads`` threads; timed on
  the first ``--bf-tokens`` tokens only and reported per token.

Warm-up calls (numba compilation or cache load, first BLAS call) are not timed. CPU time
of the process (all threads) per token is reported too: on a shared machine it is
steadier than wall time. The load average at start is recorded for the same reason.

``--torch`` measures the torch searches against the numba kernel on the current device
(``--device``, default CPU), in the same run, on seeded unit Gaussian float32 tokens (what
the quantizer feeds them):

- speed: tokens/s of ``search_numba`` (CPU), of :func:`leechcodec.leech_search.leech_search_torch`
  (the sync-free search, ``--tokens`` tokens) and of the previous torch search
  ``quantizers._leech_search_torch_reference`` (``--old-tokens``); torch and numba use
  ``--threads`` threads; best of ``--repeats``; the ratio new / old;
- exactness: new torch search = numba, counted per kind, on ``--exact-tokens`` tokens
  (a third each: unit Gaussian float32 tokens, :func:`adversarial_tokens` in float64 and
  the same in float32), on the latents of every shipped Λ24 model on the Kodak images
  (``--kodak``; skipped if the folder is missing), and = brute force on ``--bf-tokens``
  adversarial tokens.
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

from leechcodec.kernels.leech import all_codewords, search_bruteforce, search_numba
from leechcodec.kernels.search_reference import adversarial_tokens
from leechcodec.lattice import NUM_CODEWORDS, leech_quantize

KODAK = "../shared/data/kodak"


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


def kodak_latents(folder: str) -> np.ndarray:
    """Normalized latent tokens ``(N, 24)`` float32 of every shipped Λ24 model on the images of
    ``folder`` (empty if it is missing), in the quantizer's token order."""
    import torch

    from leechcodec.imageio import load_image
    from leechcodec.latent_codecs import Leech24Codec, latent_codec_class
    from leechcodec.zoo import list_models, load_model

    paths = sorted(p for p in (os.listdir(folder) if os.path.isdir(folder) else []) if p.endswith(".png"))
    images = [torch.from_numpy(load_image(os.path.join(folder, p))).permute(2, 0, 1)[None].float() / 255 for p in paths]
    out = []
    with torch.no_grad():
        for entry in list_models():
            if not issubclass(latent_codec_class(entry.quantizer), Leech24Codec):
                continue
            model = load_model(entry.name, entry.quality)[1]
            for im in images:
                h, w = im.shape[-2] // 16 * 16, im.shape[-1] // 16 * 16
                tokens = model.tokens_of(model.g_a(im[..., :h, :w])).reshape(-1, 24)
                out.append(torch.nn.functional.normalize(tokens, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 24), np.float32)


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


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best wall time and the CPU time of that run, in seconds."""
    return min(_timed(fn)[:2] for _ in range(repeats))


def run_torch(tokens: int, old_tokens: int, exact_tokens: int, bf_tokens: int, threads: int, seed: int,
              repeats: int, device: str, kodak: str) -> dict:
    """Old vs new torch search vs numba: speed and exactness (module docstring)."""
    import torch

    from leechcodec import quantizers
    from leechcodec.leech_search import leech_search_torch

    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    load = os.getloadavg()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((max(tokens, old_tokens), 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    xt = torch.from_numpy(x).to(dev)

    cases = {"numba": (lambda n: search_numba(x[:n]), tokens),
             "new": (lambda n: leech_search_torch(xt[:n]), tokens),
             "old": (lambda n: quantizers._leech_search_torch_reference(xt[:n]), old_tokens)}
    speed = {}
    for name, (fn, n) in cases.items():
        def go(fn=fn, n=n):
            fn(n)
            sync()
        go()  # warm-up: numba cache, tables on the device
        wall, cpu = _best(go, repeats)
        speed[name] = {"tokens": n, "wall_s": wall, "tokens_per_s": n / wall, "cpu_us_per_token": 1e6 * cpu / n}

    def new_search(data: np.ndarray) -> np.ndarray:
        parts = np.array_split(data, max(1, len(data) // 65536))
        return torch.cat([leech_search_torch(torch.from_numpy(c).to(dev)).cpu() for c in parts]).numpy()

    latents = kodak_latents(kodak)
    adv = adversarial_tokens(exact_tokens // 3, seed + 1)
    gauss = rng.standard_normal((exact_tokens - 2 * len(adv), 24)).astype(np.float32)
    gauss /= np.linalg.norm(gauss, axis=1, keepdims=True)
    bf = adversarial_tokens(bf_tokens, seed + 2)
    t0 = time.perf_counter()
    kinds = {name: {"tokens": len(data), "mismatches": int((new_search(data) != oracle(data)).sum())}
             for name, data, oracle in (("gaussian_float32", gauss, search_numba),
                                        ("adversarial_float64", adv, search_numba),
                                        ("adversarial_float32", adv.astype(np.float32), search_numba),
                                        ("kodak_latents_float32", latents, search_numba),
                                        ("bruteforce_adversarial_float64", bf, search_bruteforce))}
    return {
        "schema": 1,
        "benchmark": "leech_search_torch",
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({platform.machine()}, {os.cpu_count()} cpus)",
        "seed": seed,
        "threads": {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()},
        "loadavg_at_start": load,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
                     "torch": torch.__version__},
        "speed": speed,
        "ratio_new_over_old": speed["new"]["tokens_per_s"] / speed["old"]["tokens_per_s"],
        "ratio_new_over_old_cpu_time": speed["old"]["cpu_us_per_token"] / speed["new"]["cpu_us_per_token"],
        "exactness": {"kinds": kinds, "tokens": sum(k["tokens"] for k in kinds.values()),
                      "mismatches": sum(k["mismatches"] for k in kinds.values()),
                      "seconds": time.perf_counter() - t0},
    }


def _print_torch(res: dict) -> None:
    sp = res["speed"]
    print(f"{res['device']}, {res['threads']['torch']} torch / {res['threads']['numba']} numba threads, "
          f"load average at start {res['loadavg_at_start'][0]:.2f}")
    for name, label in (("numba", "numba kernel"), ("new", "torch, sync-free"), ("old", "torch, previous")):
        s = sp[name]
        print(f"  {label:18s} {s['tokens_per_s']:>10,.0f} tokens/s  {s['cpu_us_per_token']:8.1f} CPU-us/token"
              f"  ({s['tokens']:,} tokens)")
    print(f"  new / old: {res['ratio_new_over_old']:.1f}x (wall), {res['ratio_new_over_old_cpu_time']:.1f}x (CPU time)")
    ex = res["exactness"]
    print(f"  exactness: {ex['mismatches']} mismatches in {ex['tokens']:,} tokens ({ex['seconds']:.0f} s)")
    for name, k in ex["kinds"].items():
        print(f"    {name:32s} {k['tokens']:>9,} tokens  {k['mismatches']} mismatches")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.micro.bench_search", description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=50000, help="tokens for the structured search")
    p.add_argument("--bf-tokens", type=int, default=5000, help="tokens for brute force (a prefix)")
    p.add_argument("--threads", type=int, default=2, help="numba and OpenBLAS threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=256, help="brute-force rows per matmul")
    p.add_argument("--repeats", type=int, default=3, help="structured runs (best is kept)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--torch", action="store_true", help="torch searches (old, new) against numba: speed, exactness")
    p.add_argument("--old-tokens", type=int, default=4000, help="--torch: tokens for the previous torch search")
    p.add_argument("--exact-tokens", type=int, default=1_000_000,
                   help="--torch: synthetic tokens checked against numba (plus the Kodak latents)")
    p.add_argument("--device", default="cpu", help="--torch: torch device")
    p.add_argument("--kodak", default=KODAK, help="--torch: folder of images for real latents")
    args = p.parse_args(argv)
    if args.torch:
        if min(args.tokens, args.old_tokens, args.bf_tokens, args.threads, args.repeats) < 1 or args.exact_tokens < 0:
            print("error: counts must be positive", file=sys.stderr)
            return 2
        res = run_torch(args.tokens, args.old_tokens, args.exact_tokens, args.bf_tokens, args.threads, args.seed,
                        args.repeats, args.device, args.kodak)
        print(json.dumps(res, indent=2)) if args.json else _print_torch(res)
        return 0
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
