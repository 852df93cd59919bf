"""RD curves from our result files and from published result files (anchors).

A :class:`Curve` is what plots and BD-rate tables use: mean bpp, PSNR and MS-SSIM per
rate point, sorted by bpp. Sources:

- our result files (:mod:`leechcodec.bench.results`), ``kind="ours"``;
- CompressAI result JSON (``{"name", "results": {"bpp", "psnr-rgb", "ms-ssim-rgb"}}``,
  and ``paper-*`` files with ``ms-ssim-db-rgb``), ``kind="published"``;
- TensorFlow Compression's ``bpp, value`` text tables (``PSNR_sRGB_RGB/*.txt``,
  ``MS-SSIM_sRGB_RGB/*.txt``);
- DeepMind C3's baseline dictionaries (``{"<codec>": {"bpp", "psnr"}}``).

The anchor folder is ``--anchors DIR``, else ``$LEECHCODEC_DATA/anchors``. Published
files are drawn as published: nothing is recomputed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from leechcodec.bench.datasets import DATA_ENV
from leechcodec.bench.results import load_result


@dataclasses.dataclass(frozen=True)
class Curve:
    """Dataset-mean RD points, sorted by bpp. ``ms_ssim`` is ``None`` when unknown."""

    name: str
    label: str
    bpp: np.ndarray
    psnr: np.ndarray | None
    ms_ssim: np.ndarray | None
    kind: str
    """``ours`` or ``published``."""
    source: str

    def metric(self, metric: str) -> np.ndarray | None:
        """``psnr`` (dB) or ``ms_ssim_db`` (``-10·log10(1 - MS-SSIM)``) per point."""
        if metric == "psnr":
            return self.psnr
        if metric == "ms_ssim_db":
            return None if self.ms_ssim is None else -10.0 * np.log10(1.0 - self.ms_ssim)
        raise ValueError(f"unknown metric {metric!r}")


def _sorted_curve(name: str, label: str, bpp: Any, psnr: Any, ms_ssim: Any, kind: str,
                  source: str) -> Curve:
    b = np.asarray(bpp, dtype=np.float64)
    order = np.argsort(b)
    p = None if psnr is None else np.asarray(psnr, dtype=np.float64)[order]
    m = None if ms_ssim is None else np.asarray(ms_ssim, dtype=np.float64)[order]
    return Curve(name, label, b[order], p, m, kind, source)


def subset_mark(dataset: dict[str, Any]) -> str:
    """`` [3 of 24 images]`` for a result measured on part of a public set (its curve is
    then not comparable point for point with published full-set curves), else ``""``."""
    from leechcodec.bench.datasets import DATASETS

    spec = DATASETS.get(dataset.get("name", ""))
    n = int(dataset.get("n_images", 0))
    if spec is None or dataset.get("canonical") or n >= spec.count:
        return ""
    return f" [{n} of {spec.count} images]"


def curve_from_result(path: str | Path) -> Curve:
    """Our result file as a curve (points with a missing metric drop that metric)."""
    data = load_result(Path(path))
    pts = [p for p in data["points"] if p["bpp"] is not None]
    psnr = [p["psnr_rgb"] for p in pts]
    msssim = [p["ms_ssim_rgb"] for p in pts]
    return _sorted_curve(
        data["codec"]["name"], data["codec"]["label"] + subset_mark(data["dataset"]), [p["bpp"] for p in pts],
        None if any(v is None for v in psnr) else psnr,
        None if any(v is None for v in msssim) else msssim, "ours", str(path))


def curve_from_compressai(path: str | Path, name: str | None = None) -> Curve:
    """A CompressAI-shaped JSON file (theirs, or ours exported)."""
    data = json.loads(Path(path).read_text())
    r = data["results"]
    ms = r.get("ms-ssim-rgb")
    if ms is None and "ms-ssim-db-rgb" in r:
        ms = [1.0 - 10.0 ** (-v / 10.0) for v in r["ms-ssim-db-rgb"]]
    return _sorted_curve(name or Path(path).stem, data.get("name", Path(path).stem), r["bpp"],
                         r.get("psnr-rgb"), ms, "published", str(path))


def curve_from_tfc(psnr_path: str | Path | None, msssim_path: str | Path | None,
                   name: str, label: str) -> Curve:
    """TensorFlow Compression tables (``bpp, value`` lines); the two metrics may differ in
    bpp, so only the PSNR table's points are kept when both exist and they differ."""
    def table(path: str | Path) -> np.ndarray:
        rows = [line.replace(",", " ").split() for line in Path(path).read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        return np.array([[float(a), float(b)] for a, b in rows])

    p = table(psnr_path) if psnr_path else None
    m = table(msssim_path) if msssim_path else None
    base = p if p is not None else m
    ms = None
    if m is not None and (p is None or np.array_equal(m[:, 0], p[:, 0])):
        ms = m[:, 1]
    return _sorted_curve(name, label, base[:, 0], None if p is None else p[:, 1], ms,
                         "published", str(psnr_path or msssim_path))


def curve_from_c3(path: str | Path, key: str, name: str | None = None) -> Curve:
    """One codec of DeepMind C3's baseline dictionary (PSNR only)."""
    entry = json.loads(Path(path).read_text())[key]
    return _sorted_curve(name or key, key, entry["bpp"], entry["psnr"], None, "published",
                         f"{path}#{key}")


def anchors_root(explicit: str | Path | None = None) -> Path | None:
    """The published-anchors folder: ``explicit``, else ``$LEECHCODEC_DATA/anchors``."""
    if explicit is not None:
        return Path(explicit)
    root = os.environ.get(DATA_ENV)
    if root and (Path(root) / "anchors").is_dir():
        return Path(root) / "anchors"
    return None


DEFAULT_ANCHORS: dict[str, list[tuple[str, str, str]]] = {
    "kodak": [
        ("bpg444-published", "BPG 4:4:4 (published, CompressAI)",
         "compressai/kodak/bpg_444_x265_ycbcr.json"),
        ("vtm-published", "VTM intra (published, CompressAI)", "compressai/kodak/vtm.json"),
        ("balle2018-published", "Ballé 2018 hyperprior (published)",
         "compressai/kodak/paper-bmshj2018-hyperprior.json"),
        ("minnen2018-published", "Minnen 2018 (published)",
         "compressai/kodak/paper-mbt2018.json"),
        ("jpeg-published", "JPEG (published, CompressAI)", "compressai/kodak/jpeg.json"),
        ("webp-published", "WebP (published, CompressAI)", "compressai/kodak/webp.json"),
    ],
    "clic2020-pro-valid": [
        ("bpg-published", "BPG (published, C3 baselines)",
         "c3-baselines/clic2020-professional-valid.json#BPG"),
        ("vtm-published", "VTM-17 intra (published, C3 baselines)",
         "c3-baselines/clic2020-professional-valid.json#VTM"),
    ],
}
"""Published curves drawn by default, per dataset: (name, label, path under anchors)."""


def load_anchor(root: Path, name: str, label: str, rel: str) -> Curve:
    """One published curve from ``root/rel`` (``file#key`` selects a C3 entry)."""
    if "#" in rel:
        file, key = rel.split("#", 1)
        curve = curve_from_c3(root / file, key, name)
    elif rel.endswith(".txt"):
        curve = curve_from_tfc(root / rel, None, name, label)
    else:
        curve = curve_from_compressai(root / rel, name)
    return dataclasses.replace(curve, label=label)


def default_anchors(dataset: str, root: Path | None) -> list[Curve]:
    """The default published curves for ``dataset`` that exist under ``root``."""
    if root is None:
        return []
    out = []
    for name, label, rel in DEFAULT_ANCHORS.get(dataset, []):
        if (root / rel.split("#", 1)[0]).exists():
            out.append(load_anchor(root, name, label, rel))
    return out
