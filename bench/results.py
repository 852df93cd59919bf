"""Result files: one JSON file per (codec, dataset), named ``<codec>.json`` in a dataset folder.

Schema (``schema_version`` 1)::

    {
      "schema": "leechcodec.bench.result", "schema_version": 1,
      "codec":   {"name", "label", "param_name", "settings": {...}, "versions": {...}},
      "dataset": {"name", "n_images", "images": [...], "canonical", "verified",
                  "file_list_sha256"},
      "metrics": {"bpp": ..., "psnr_rgb": ..., "ms_ssim_rgb": ..., "aggregation": ...},
      "runs":    [{"git_commit", "git_dirty", "packages": {...}, "workers",
                   "threads_per_worker", "machine", "date"}, ...],
      "points":  [{"param", "bpp", "psnr_rgb", "ms_ssim_rgb", "enc_time_s", "dec_time_s",
                   "n_images", "run",
                   "per_image": [{"image", "bytes", "bpp", "psnr_rgb", "ms_ssim_rgb",
                                  "enc_time_s", "dec_time_s"}, ...]}, ...]
    }

Points are sorted by bpp; ``run`` indexes ``runs`` (a resumed sweep appends a run).
Dataset values are means over images. ``ms_ssim_rgb`` is ``null`` for images too small
for MS-SSIM. :func:`to_compressai` writes CompressAI's JSON shape.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

SCHEMA = "leechcodec.bench.result"
SCHEMA_VERSION = 1

METRICS_DOC = {
    "bpp": "8 * (size of the whole encoded file in bytes) / (H * W), per image",
    "psnr_rgb": "10*log10(255^2 / MSE over H*W*3 RGB samples), per image",
    "ms_ssim_rgb": "pytorch-msssim ms_ssim, data_range 255, window 11, sigma 1.5, 5 scales, "
                   "mean over R,G,B; null if the smaller side < 161",
    "aggregation": "dataset value = mean over images of the per-image values",
    "times": "wall-clock seconds, one thread, encode = writing the file (ffmpeg codecs "
             "include process start and colour conversion), decode = reading it back; "
             "each worker first codes a 64x64 crop once per codec and parameter, untimed "
             "(model loading and compilation are not in the times)",
}

_PACKAGES = ("leechcodec", "numpy", "pillow", "pillow_heif", "imagecodecs", "imageio-ffmpeg",
             "torch", "pytorch-msssim", "bjontegaard")


class ResultError(RuntimeError):
    """A result file that cannot be used or resumed (a user error: no traceback)."""


def git_state(cwd: Path | None = None) -> tuple[str, bool]:
    """``(commit, dirty)`` of the repository holding this package, or ``("unknown", False)``."""
    where = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                                text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=where, capture_output=True, text=True, check=True).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def run_provenance(workers: int) -> dict[str, Any]:
    """Provenance of one sweep run: commit, versions, threads, machine, date."""
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": package_versions(),
        "workers": workers,
        "threads_per_worker": 1,
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpu_count": os.cpu_count()},
        "device": "cpu",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _mean(values: Iterable[float | None]) -> float | None:
    vals = list(values)
    if not vals or any(v is None for v in vals):
        return None
    return float(sum(vals) / len(vals))


def aggregate_point(param: Any, per_image: list[dict[str, Any]], run: int) -> dict[str, Any]:
    """One rate point from its per-image records (dataset value = mean over images)."""
    per_image = sorted(per_image, key=lambda r: r["image"])
    point = {"param": param, "n_images": len(per_image), "run": run}
    for key in ("bpp", "psnr_rgb", "ms_ssim_rgb", "enc_time_s", "dec_time_s"):
        point[key] = _mean(r[key] for r in per_image)
    point["per_image"] = per_image
    return point


def new_result(codec: Any, dataset: Any) -> dict[str, Any]:
    """An empty result for ``codec`` (a :class:`Codec`) on ``dataset`` (a :class:`Dataset`)."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "codec": {"name": codec.name, "label": codec.label, "param_name": codec.param_name,
                  "settings": codec.settings(), "versions": codec.versions()},
        "dataset": {"name": dataset.name, "n_images": len(dataset.paths),
                    "images": dataset.names, "canonical": dataset.canonical,
                    "verified": dataset.verified, "file_list_sha256": dataset.file_list_hash},
        "metrics": METRICS_DOC,
        "runs": [],
        "points": [],
    }


def load_result(path: Path) -> dict[str, Any]:
    """Read and check a result file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: cannot read result file ({exc})") from exc
    if data.get("schema") != SCHEMA:
        raise ResultError(f"{path}: not a leechcodec result file")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ResultError(f"{path}: schema version {data.get('schema_version')} "
                          f"is not {SCHEMA_VERSION}")
    return data


def save_result(result: dict[str, Any], path: Path) -> None:
    """Write ``result`` atomically (temporary file, then rename), points sorted by bpp."""
    result["points"].sort(key=lambda p: (p["bpp"] is None, p["bpp"] or 0.0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a result file is for sharing
    with os.fdopen(fd, "w") as f:
        json.dump(result, f, indent=1, allow_nan=False, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def write_record(path: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Write a micro-benchmark's JSON ``record`` to ``path`` (its folder created, the file
    replaced atomically, readable by all) and say so; returns the path."""
    from leechcodec.fileio import atomic_write_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(record, indent=1, default=_json_default) + "\n").encode())
    print(f"wrote {path}")
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value)}")


def check_resumable(existing: dict[str, Any], fresh: dict[str, Any], path: Path) -> None:
    """Refuse to add points to a file made with other settings or other images."""
    for key in ("settings", "param_name"):
        if existing["codec"].get(key) != fresh["codec"].get(key):
            raise ResultError(f"{path}: codec {key} differ from this run's; move the file away "
                              "or pass --fresh to start over")
    if existing["dataset"]["file_list_sha256"] != fresh["dataset"]["file_list_sha256"]:
        raise ResultError(f"{path}: made on other images (file-list hash differs); use another "
                          "--out or pass --fresh")


def params_done(result: dict[str, Any]) -> set[Any]:
    return {_param_key(p["param"]) for p in result["points"]}


def _param_key(param: Any) -> Any:
    return float(param) if isinstance(param, (int, float)) else param


def to_compressai(result: dict[str, Any]) -> dict[str, Any]:
    """The result in CompressAI's JSON shape (``results`` of parallel lists, by bpp)."""
    points = sorted(result["points"], key=lambda p: p["bpp"])
    codec = result["codec"]
    versions = ", ".join(f"{k} {v}" for k, v in codec["versions"].items())
    return {
        "name": codec["label"],
        "description": f"{codec['label']}; leechcodec bench; {versions}",
        "results": {
            "bpp": [p["bpp"] for p in points],
            "psnr-rgb": [p["psnr_rgb"] for p in points],
            "ms-ssim-rgb": [p["ms_ssim_rgb"] for p in points],
            "encoding_time": [p["enc_time_s"] for p in points],
            "decoding_time": [p["dec_time_s"] for p in points],
        },
    }


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
