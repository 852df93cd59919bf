"""Do files decode on another machine? ``python -m leechcodec.bench.micro.portability``.

Encodes every image of a folder (default: Kodak under ``$LEECHCODEC_DATA``) once with
every chosen zoo model, in this process, then decodes all the files in fresh processes
under a matrix of settings a user's machine may have: 1, 2, 3, 8 and 16 threads (torch,
numba and the BLAS), oneDNN off with the integer prior computed by torch instead of
numpy, and the integer prior on CUDA when a GPU is present. For every decode it records
whether it succeeded, whether every coding parameter (:func:`leechcodec.codec.coding_parameters`)
equals the reference decode's, and the largest pixel difference.

On Linux with a C compiler the matrix also has two settings with another libm: a shim
preloaded in front of the C library (``LD_PRELOAD``) returns every ``exp``, ``log``,
``log1p``, ``erf`` and ``erfc`` one ulp (the size of real libms' disagreements) or 1e-9
(far more) off; the profile-2 files (format 1.1, whose probabilities use libm) are decoded
under those two settings too, to show what they do.

The matrix decodes the files of the default coder profile (3, format 1.2). It also reports
the rate cost of the exact prior: the total bytes of coder profile 2 (format 1.1) against
profile 1 (format 1.0, float prior), and of profile 3 against profile 2, for the same
images and models.
``--legacy-models`` also decodes the profile-1 files of those models under the matrix,
to show what the float prior did.

Writes ``--out`` (JSON) and prints a summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from leechcodec.bench.results import write_record

_CHILD = r"""
import json, sys
import numpy as np
import numba, torch
from leechcodec.codec import _decode
from leechcodec.bench.micro.portability import param_digest
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
numba.set_num_threads(cfg["threads"])
if cfg["onednn_off"]:
    torch.backends.mkldnn.enabled = False
for path in cfg["files"]:
    try:
        image, params = _decode(open(path, "rb").read(), cfg["prior_device"])
    except Exception as exc:
        print(json.dumps({"file": path, "ok": False, "error": str(exc)[:200]}), flush=True)
        continue
    ref = path + ".ref.npy"
    diff = int(np.abs(image.astype(int) - np.load(ref).astype(int)).max()) if cfg["compare"] else None
    print(json.dumps({"file": path, "ok": True, "params": param_digest(params), "max_pixel_diff": diff}), flush=True)
"""


def param_digest(params: dict[str, np.ndarray]) -> str:
    """SHA256 over the coding parameters (sorted by name, raw bytes)."""
    h = hashlib.sha256()
    for key in sorted(params):
        h.update(key.encode() + np.ascontiguousarray(params[key]).tobytes())
    return h.hexdigest()


_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#define WRAP(name)                                                         \
  double name(double x) {                                                  \
    static double (*real)(double);                                         \
    if (!real) real = (double (*)(double))dlsym(RTLD_NEXT, #name);         \
    double y = real(x);                                                    \
    return OFF;                                                            \
  }
WRAP(exp) WRAP(log) WRAP(log1p) WRAP(erf) WRAP(erfc)
"""
#: name → the shim's result expression for a libm result y
_SHIMS = {"another libm (exp/log/erf one ulp up)": "nextafter(y, y * 2.0 + 1.0)",
          "another libm (exp/log/erf 1e-9 off)": "y * (1.0 + 1e-9)"}


def _libm_configs(folder: str) -> list[dict]:
    """Decoder settings with a preloaded libm shim, built into ``folder`` (Linux with ``cc`` only)."""
    import shutil

    if not sys.platform.startswith("linux") or shutil.which("cc") is None:
        return []
    out = []
    for k, (name, expr) in enumerate(_SHIMS.items()):
        src, lib = Path(folder) / f"shim{k}.c", Path(folder) / f"shim{k}.so"
        src.write_text(_SHIM.replace("OFF", expr))
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(src), "-ldl", "-lm"], check=True)
        out.append({"name": name, "threads": 2, "onednn_off": False, "prior_device": None, "preload": str(lib)})
    return out


def _configs(folder: str | None = None) -> list[dict]:
    import torch

    out = [{"name": f"threads={n}", "threads": n, "onednn_off": False, "prior_device": None} for n in (1, 2, 3, 8, 16)]
    out.append({"name": "oneDNN off, torch integer prior", "threads": 2, "onednn_off": True, "prior_device": "cpu"})
    if torch.cuda.is_available():
        out.append({"name": "integer prior on CUDA", "threads": 2, "onednn_off": False, "prior_device": "cuda"})
    return out + (_libm_configs(folder) if folder else [])


def _run_config(cfg: dict, files: list[str], compare: bool) -> list[dict]:
    env = dict(os.environ, **{v: str(cfg["threads"]) for v in (
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")})
    if cfg.get("preload"):
        env["LD_PRELOAD"] = cfg["preload"]
    run = subprocess.run([sys.executable, "-c", _CHILD, json.dumps({**cfg, "files": files, "compare": compare})],
                         capture_output=True, text=True, env=env)
    if run.returncode:
        raise RuntimeError(f"{cfg['name']}: decoder process failed: {run.stderr.strip()[-500:]}")
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def _summarize(records: list[dict], expected: dict[str, str] | None) -> dict:
    ok = [r for r in records if r["ok"]]
    out = {"files": len(records), "decode_failures": len(records) - len(ok)}
    if expected is not None:
        out["parameter_mismatches"] = sum(r["params"] != expected[r["file"]] for r in ok)
        out["max_pixel_diff"] = max((r["max_pixel_diff"] for r in ok), default=None)
    if len(ok) < len(records):
        out["first_error"] = next(r["error"] for r in records if not r["ok"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.micro.portability", description=__doc__.splitlines()[0])
    p.add_argument("--images", default=None, help="folder of PNG images (default: $LEECHCODEC_DATA/kodak)")
    p.add_argument("--models", default=None, help="comma-separated name.qQ keys (default: every zoo model)")
    p.add_argument("--legacy-models", default="", help="keys whose format-1.0 files are also decoded under the matrix")
    p.add_argument("--out", default=None, help="write the JSON record here")
    args = p.parse_args(argv)

    import torch
    from PIL import Image
    from tqdm import tqdm

    from leechcodec.bitstream import container
    from leechcodec.codec import coding_parameters, compress, decompress
    from leechcodec.zoo import entry_from_key, list_models, load_model

    folder = Path(args.images or Path(os.environ.get("LEECHCODEC_DATA", "../shared/data")) / "kodak")
    images = sorted(folder.glob("*.png"))
    if not images:
        print(f"error: no PNG images in {folder}", file=sys.stderr)
        return 1
    keys = args.models.split(",") if args.models else [e.key for e in list_models()]
    legacy = [k for k in args.legacy_models.split(",") if k]
    record = {"images": str(folder), "n_images": len(images), "models": keys, "configs": [],
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rate": {}, "matrix": {},
              "legacy_matrix": {}, "matrix_1_1": {}}
    with tempfile.TemporaryDirectory(prefix="leechcodec-portability-") as tmp:
        configs = _configs(tmp)
        record["configs"] = [c["name"] for c in configs]
        files, legacy_files, files_1_1, expected = [], [], [], {}
        bar = tqdm(total=len(keys) * len(images), desc="encode", unit="file")
        for key in keys:
            entry = entry_from_key(key)
            _, model = load_model(entry.name, entry.quality)
            profiles = model.latent_codec.profiles  # the gain–shape family has the exact prior only
            sizes = {p: 0 for p in profiles}
            for img in images:
                rgb = np.asarray(Image.open(img).convert("RGB"))
                for profile in profiles:
                    data = compress(model, entry, rgb, profile=profile).data
                    sizes[profile] += len(data)
                    path = Path(tmp) / f"{key}-{img.stem}-p{profile}.lq"
                    path.write_bytes(data)
                    if profile in (container.PROFILE_DEFAULT, container.PROFILE_EXACT_ANS32_P24):
                        (files if profile == container.PROFILE_DEFAULT else files_1_1).append(str(path))
                        expected[str(path)] = param_digest(coding_parameters(data))
                        np.save(str(path) + ".ref.npy", decompress(data))
                    elif key in legacy:
                        legacy_files.append(str(path))
                bar.update(1)
            record["rate"][key] = {"profile1_bytes": sizes.get(1), "profile2_bytes": sizes[2], "profile3_bytes": sizes[3],
                                   "profile2_over_profile1": sizes[2] / sizes[1] - 1 if 1 in sizes else None,
                                   "profile3_over_profile2": sizes[3] / sizes[2] - 1}
        bar.close()
        for cfg in tqdm(configs, desc="decode matrix", unit="config"):
            record["matrix"][cfg["name"]] = _summarize(_run_config(cfg, files, True), expected)
            if legacy_files:
                record["legacy_matrix"][cfg["name"]] = _summarize(_run_config(cfg, legacy_files, False), None)
            if cfg.get("preload") or cfg["name"] == "threads=2":  # format 1.1: the writer's setting, other libms
                record["matrix_1_1"][cfg["name"]] = _summarize(_run_config(cfg, files_1_1, True), expected)
    both = [r for r in record["rate"].values() if r["profile1_bytes"] is not None]  # models with both profiles
    total1, total2 = sum(r["profile1_bytes"] for r in both), sum(r["profile2_bytes"] for r in both)
    record["rate_total_profile2_over_profile1"] = total2 / total1 - 1 if both else None
    total2, total3 = (sum(r[f"profile{n}_bytes"] for r in record["rate"].values()) for n in (2, 3))
    record["rate_total_profile3_over_profile2"] = total3 / total2 - 1
    record["decode_failures"] = sum(m["decode_failures"] for m in record["matrix"].values())
    record["parameter_mismatches"] = sum(m["parameter_mismatches"] for m in record["matrix"].values())
    if args.out:
        write_record(args.out, record)
    print(f"{len(files)} files ({len(keys)} models × {len(images)} images), {len(configs)} decoder settings: "
          f"{record['decode_failures']} decode failures, {record['parameter_mismatches']} parameter mismatches")
    for name, m in record["matrix"].items():
        print(f"  {name:34s} failures {m['decode_failures']}, mismatches {m['parameter_mismatches']}, "
              f"max pixel diff {m['max_pixel_diff']}")
    for name, m in record["legacy_matrix"].items():
        print(f"  format 1.0, {name:23s} failures {m['decode_failures']} of {m['files']}")
    for name, m in record["matrix_1_1"].items():
        print(f"  format 1.1, {name:34s} failures {m['decode_failures']} of {m['files']}, "
              f"mismatches {m['parameter_mismatches']}")
    if both:
        print(f"rate of the exact prior: {100 * record['rate_total_profile2_over_profile1']:+.3f} % bytes "
              "vs format 1.0")
    print(f"rate of the portable arithmetic: {100 * record['rate_total_profile3_over_profile2']:+.4f} % bytes "
          "vs format 1.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
