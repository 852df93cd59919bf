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


def test_refine_variant_name_and_sweep(tiny_zoo, image_folder: Path, tmp_path: Path) -> None:
    import pytest

    from leechcodec.bench.codecs import get_codec
    from leechcodec.bench.learned import split_learned_name

    assert split_learned_name("tiny-leech") == ("tiny-leech", 0)
    assert split_learned_name("tiny-leech+refine25") == ("tiny-leech", 25)
    for bad in ("tiny-leech+refine", "tiny-leech+refine0", "tiny-leech+refinex"):
        with pytest.raises(KeyError):
            split_learned_name(bad)
    codec = get_codec("tiny-leech+refine2")
    assert (codec.name, codec.model, codec.refine) == ("tiny-leech+refine2", "tiny-leech", 2)
    dataset = load_dataset("mine", data_dir=image_folder)
    report = run_sweep(["tiny-leech", "tiny-leech+refine2"], dataset, tmp_path / "out")
    assert report.measured == 2 and not report.errors
    plain = load_result(tmp_path / "out" / "tiny-leech.json")
    refined = load_result(tmp_path / "out" / "tiny-leech+refine2.json")
    assert refined["codec"]["settings"]["refine"] == 2 and plain["codec"]["settings"]["refine"] == 0
    sizes = [[r["bpp"] for r in d["points"][0]["per_image"]] for d in (plain, refined)]
    assert sizes[0] != sizes[1]  # the refined sweep really refined
