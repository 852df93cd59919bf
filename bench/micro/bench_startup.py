"""Wall time of the CLI as a user meets it: start-up, warm encode/decode, first run, threads.

    python -m leechcodec.bench.micro.bench_startup [--repeat 3] [--image PNG] [--out bench/results/startup.json]

Every number is the wall time of a whole command in a fresh process (``leechcodec ...``, the
console script of this environment), the median of ``--repeat`` runs:

- ``--help``, ``--version``, ``models``, ``info FILE``: start-up only;
- ``encode IMAGE`` and ``decode`` with the default model on a warm install (numba's cache
  filled), the encode target of issue 16 being 3 s for a Kodak image;
- first run: encode then decode with an empty numba cache (``NUMBA_CACHE_DIR`` set to a
  new folder), then the same again (second run);
- read-only install (Linux, as root): the repository bind-mounted read-only over itself in
  a private mount namespace, ``HOME`` a new folder (the kernels cache in the user's cache
  folder, never next to the source); first and second encode;
- the thread policy: ``encode --refine 3`` alone and next to two busy processes (a loaded
  2-core machine), with idle OpenMP threads sleeping (``OMP_WAIT_POLICY=PASSIVE``, the
  CLI's default) and spinning (``ACTIVE``, the OpenMP default), interleaved.

The machine is shared and noisy: compare numbers of one run, and read the load average
recorded next to them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leechcodec.bench.results import write_record

REPO = Path(__file__).resolve().parents[2]


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("leechcodec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "leechcodec.cli"]


def _run(args: list[str], env: dict | None = None, wrap: list[str] | None = None) -> float:
    cmd = _cli() + args
    if wrap:  # the last item is a shell script prefix that ends in "exec "
        cmd = wrap[:-1] + [wrap[-1] + " ".join(map(_quote, cmd))]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")
    return seconds


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def _median(args: list[str], repeat: int, env: dict | None = None) -> dict:
    times = [_run(args, env) for _ in range(repeat)]
    return {"median_s": statistics.median(times), "runs_s": times}


def _busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _readonly_wrap(home: Path) -> list[str] | None:
    """A shell in a private mount namespace with the repository read-only, or None."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return None
    script = (f"mount --bind {_quote(str(REPO))} {_quote(str(REPO))} && "
              f"mount -o remount,bind,ro {_quote(str(REPO))} && HOME={_quote(str(home))} exec ")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script + "touch " + _quote(str(REPO / '.rw-probe'))],
                           capture_output=True)
    if probe.returncode == 0:  # the mount did not make it read-only
        (REPO / ".rw-probe").unlink(missing_ok=True)
        return None
    return ["unshare", "-m", "sh", "-c", script]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    data = Path(os.environ.get("LEECHCODEC_DATA", "")) / "kodak" / "kodim01.png"
    p.add_argument("--image", type=Path, default=data if data.is_file() else None,
                   help="image to encode (default: $LEECHCODEC_DATA/kodak/kodim01.png, else the bundled sample)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "startup.json")
    p.add_argument("--skip-load", action="store_true", help="leave out the runs next to busy processes")
    args = p.parse_args(argv)
    image = args.image or REPO / "leechcodec" / "data" / "sample.png"
    import torch

    record: dict = {"image": str(image), "cpus": os.cpu_count(), "load_before": os.getloadavg(),
                    "torch": torch.__version__, "torch_cuda_build": torch.version.cuda is not None,
                    "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    with tempfile.TemporaryDirectory(prefix="lc-startup-") as tmp:
        tmp = Path(tmp)
        lq, png = tmp / "a.lq", tmp / "a.png"
        _run(["encode", str(image), str(lq), "-q"])  # warm numba's own cache
        starts = {}
        for name, cmd in [("help", ["--help"]), ("version", ["--version"]), ("models", ["models"]),
                          ("info", ["info", str(lq)]), ("encode", ["encode", str(image), str(tmp / "b.lq"), "-f", "-q"]),
                          ("decode", ["decode", str(lq), str(png), "-f", "-q"])]:
            starts[name] = _median(cmd, args.repeat)
            print(f"{name:8s} {starts[name]['median_s']:6.2f} s", flush=True)
        record["commands"] = starts

        first = {}
        cache = {"NUMBA_CACHE_DIR": str(tmp / "numba")}
        for run in ("first", "second"):
            first[f"{run}_encode_s"] = _run(["encode", str(image), str(tmp / f"{run}.lq"), "-q"], cache)
            first[f"{run}_decode_s"] = _run(["decode", str(tmp / f"{run}.lq"), str(tmp / f"{run}.png"), "-q"], cache)
        print(f"first run: encode {first['first_encode_s']:.1f} s, decode {first['first_decode_s']:.1f} s; "
              f"second: {first['second_encode_s']:.1f} s, {first['second_decode_s']:.1f} s", flush=True)
        record["first_run"] = first

        wrap = _readonly_wrap(tmp / "home")
        if wrap is None:
            record["readonly"] = "not measured (needs root and unshare on Linux)"
        else:
            ro = {}
            for run in ("first", "second"):
                cmd = ["encode", str(image), str(tmp / f"ro-{run}.lq"), "-q"]
                ro[f"{run}_encode_s"] = _run(cmd, wrap=wrap)
            caches = sorted(str(p.relative_to(tmp)) for p in (tmp / "home").rglob("*.nbi"))[:3]
            ro["user_cache_files"] = caches
            record["readonly"] = ro
            print(f"read-only install: first encode {ro['first_encode_s']:.1f} s, second {ro['second_encode_s']:.1f} s "
                  f"(cache in {caches[0].split('/')[0] if caches else '?'})", flush=True)

        if not args.skip_load:
            refine = ["encode", str(image), str(tmp / "r.lq"), "-f", "-q", "--refine", "3"]
            load: dict = {}
            for busy in (0, 2):
                procs = _busy(busy)
                try:
                    for policy in ("PASSIVE", "ACTIVE", "PASSIVE", "ACTIVE"):
                        load.setdefault(f"busy{busy}_{policy}", []).append(_run(refine, {"OMP_WAIT_POLICY": policy}))
                finally:
                    for proc in procs:
                        proc.kill()
            record["refine3_seconds"] = load
            for k, v in load.items():
                print(f"refine 3, {k}: {', '.join(f'{t:.1f}' for t in v)} s", flush=True)
    record["load_after"] = os.getloadavg()
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
