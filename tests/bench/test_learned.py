"""The learned-codec adapter: a tiny seeded zoo model swept through the harness."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leechcodec.bench.datasets import load_dataset
from leechcodec.bench.results import load_result
from leechcodec.bench.runner import run_sweep


def test_zoo_model_sweep_counts_real_files(tiny_zoo, image_folder: Path, tmp_path: Path) -> None:
    dataset = load_dataset("mine", data_dir=image_folder)
    report = run_sweep(["tiny-leech"], dataset, tmp_path / "out")
    assert report.measured == 1 and not report.errors
    data = load_result(tmp_path / "out" / "tiny-leech.json")
    assert data["codec"]["settings"]["quantizer"] == "leech24"
    (point,) = data["points"]
    assert point["param"] == 1 and point["n_images"] == 2
    for record in point["per_image"]:
        assert record["bpp"] > 0 and np.isfinite(record["psnr_rgb"])
