from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from leechcodec.bench.datasets import load_dataset
from leechcodec.bench.results import SCHEMA, SCHEMA_VERSION, ResultError, load_result
from leechcodec.bench.runner import load_rgb, run_sweep


def test_sweep_writes_real_measurements(image_folder: Path, tmp_path: Path) -> None:
    dataset = load_dataset("mine", data_dir=image_folder)
    out = tmp_path / "out"
    report = run_sweep(["jpeg420"], dataset, out, params={"jpeg420": [30, 80]})
    assert report.measured == 2 and report.skipped == 0 and not report.errors
    data = load_result(out / "jpeg420.json")
    assert data["schema"] == SCHEMA and data["schema_version"] == SCHEMA_VERSION
    assert data["dataset"]["images"] == ["a.png", "b.png"]
    assert data["dataset"]["file_list_sha256"] == dataset.file_list_hash
    run = data["runs"][0]
    assert {"git_commit", "packages", "workers", "threads_per_worker", "date"} <= set(run)
    assert data["codec"]["settings"]["optimize"] is True
    low, high = data["points"]
    assert low["param"] == 30 and high["param"] == 80 and low["bpp"] < high["bpp"]
    for point in data["points"]:
        assert point["n_images"] == 2
        assert point["bpp"] == pytest.approx(np.mean([r["bpp"] for r in point["per_image"]]))
        small, large = point["per_image"]
        assert small["ms_ssim_rgb"] is None and 0 < large["ms_ssim_rgb"] < 1
        assert point["ms_ssim_rgb"] is None  # not defined for every image
    # The counted bytes are the bytes of the file Pillow writes for these settings.
    from PIL import Image

    for record in high["per_image"]:
        buf = io.BytesIO()
        Image.fromarray(load_rgb(image_folder / record["image"])).save(
            buf, "JPEG", quality=80, subsampling="4:2:0", optimize=True)
        assert record["bytes"] == len(buf.getvalue())
        h, w = load_rgb(image_folder / record["image"]).shape[:2]
        assert record["bpp"] == 8 * record["bytes"] / (h * w)


def test_resume_skips_points_already_measured(image_folder: Path, tmp_path: Path) -> None:
    dataset = load_dataset("mine", data_dir=image_folder)
    out = tmp_path / "out"
    run_sweep(["webp"], dataset, out, params={"webp": [40]})
    again = run_sweep(["webp"], dataset, out, params={"webp": [40, 70]})
    assert again.measured == 1 and again.skipped == 1
    data = load_result(out / "webp.json")
    assert [p["param"] for p in data["points"]] == [40, 70]
    assert [p["run"] for p in data["points"]] == [0, 1] and len(data["runs"]) == 2
    fresh = run_sweep(["webp"], dataset, out, params={"webp": [40]}, fresh=True)
    assert fresh.measured == 1 and len(load_result(out / "webp.json")["points"]) == 1


def test_resume_refuses_other_images_or_settings(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_sweep(["jpeg444"], load_dataset("mine", data_dir=image_folder), out,
              params={"jpeg444": [50]})
    with pytest.raises(ResultError, match="other images"):
        run_sweep(["jpeg444"], load_dataset("mine", data_dir=image_folder, images=1), out,
                  params={"jpeg444": [60]})
    path = out / "jpeg444.json"
    data = json.loads(path.read_text())
    data["codec"]["settings"]["optimize"] = False
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError, match="settings"):
        run_sweep(["jpeg444"], load_dataset("mine", data_dir=image_folder), out,
                  params={"jpeg444": [60]})


def test_process_pool_gives_the_same_sizes(image_folder: Path, tmp_path: Path) -> None:
    dataset = load_dataset("mine", data_dir=image_folder)
    serial = run_sweep(["jpeg2000", "hevc420"], dataset, tmp_path / "s",
                       params={"jpeg2000": [0.5], "hevc420": [35]})
    pooled = run_sweep(["jpeg2000", "hevc420"], dataset, tmp_path / "p", workers=2,
                       params={"jpeg2000": [0.5], "hevc420": [35]})
    assert serial.measured == pooled.measured == 2
    for name in ("jpeg2000", "hevc420"):
        a = load_result(tmp_path / "s" / f"{name}.json")["points"][0]
        b = load_result(tmp_path / "p" / f"{name}.json")["points"][0]
        assert [r["bytes"] for r in a["per_image"]] == [r["bytes"] for r in b["per_image"]]
        assert a["psnr_rgb"] == b["psnr_rgb"]


def test_failures_are_reported_not_recorded(image_folder: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from leechcodec.bench.codecs import get_codec

    codec = get_codec("webp")

    def broken(rgb, param, path):
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(codec, "encode", broken)
    report = run_sweep(["webp"], load_dataset("mine", data_dir=image_folder), tmp_path / "o",
                       params={"webp": [50]})
    assert report.measured == 0 and len(report.errors) == 2
    assert "encoder exploded" in report.errors[0]
    assert load_result(tmp_path / "o" / "webp.json")["points"] == []


def test_write_record_makes_the_folder_and_replaces_the_file(tmp_path: Path, capsys) -> None:
    import json
    import os

    import numpy as np

    from leechcodec.bench.results import write_record

    path = tmp_path / "a" / "b.json"
    write_record(path, {"x": np.float64(1.5), "n": np.int64(3)})
    assert json.loads(path.read_text()) == {"x": 1.5, "n": 3}
    assert f"wrote {path}" in capsys.readouterr().out
    write_record(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2} and os.listdir(path.parent) == ["b.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual permissions, like the result files
