"""The training-curve tool: a point is what the real codec gives on the images, one per step,
compared with reference codecs only on the same images."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from leechcodec import api
from leechcodec.bench.results import SCHEMA, SCHEMA_VERSION
from leechcodec.bench.runner import load_rgb
from leechcodec.bench.training import curve
from leechcodec.models import LeechCodecModel, ModelConfig

CFG = ModelConfig(quantizer="leech24gs", tokens=1, channels=8, hyper_channels=8)


def _checkpoint(path, step: int, seed: int = 0, cfg: ModelConfig = CFG):
    torch.manual_seed(seed)
    model = LeechCodecModel(cfg)
    torch.save({"model_config": cfg.to_dict(), "model": model.state_dict(), "step": step, "crops_seen": 4 * step,
                "elapsed_s": 2.5 * step, "train_config": {"lmbda": 0.01, "batch": 4, "crop": 64, "steps": 100}}, path)
    return path


def _model_of(ckpt, cfg: ModelConfig) -> LeechCodecModel:
    model = LeechCodecModel(cfg)
    model.load_state_dict(torch.load(ckpt, weights_only=False)["model"])
    return model.eval()


def _reference(path, images: list[str], bpp: list[float], psnr: list[float]):
    points = [{"bpp": b, "psnr_rgb": p, "ms_ssim_rgb": None} for b, p in zip(bpp, psnr)]
    path.write_text(json.dumps({"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
                                "codec": {"name": path.stem, "label": path.stem},
                                "dataset": {"name": "custom", "n_images": len(images), "images": images},
                                "points": points}))


def test_a_point_is_the_real_codec_on_every_image(image_folder, tmp_path):
    ckpt = _checkpoint(tmp_path / "c.pt", step=10)
    refs = tmp_path / "refs"
    refs.mkdir()
    _reference(refs / "webp.json", ["a.png", "b.png"], [0.01, 100.0], [10.0, 30.0])
    _reference(refs / "jpeg420.json", ["a.png"], [0.01, 100.0], [10.0, 30.0])  # other images: not compared
    out = tmp_path / "curve.json"
    point = curve.add_point(ckpt, image_folder, out, refs)

    model = _model_of(ckpt, CFG)
    bpp, psnr = [], []
    for name in ("a.png", "b.png"):
        rgb = load_rgb(image_folder / name)
        data = api.compress(rgb, model, name="other")
        err = (api.decompress(data, model).astype(float) - rgb) ** 2
        bpp.append(8 * len(data) / rgb.shape[0] / rgb.shape[1])
        psnr.append(10 * math.log10(255**2 / err.mean()))
    assert point["bpp"] == pytest.approx(np.mean(bpp), abs=1e-5)
    assert point["psnr"] == pytest.approx(np.mean(psnr), abs=1e-5)
    assert (point["step"], point["pixels_seen"]) == (10, 40 * 64 * 64)
    expected = np.mean(psnr) - np.interp(np.log(np.mean(bpp)), np.log([0.01, 100.0]), [10.0, 30.0])
    assert set(point["psnr_minus"]) == {"webp"}
    assert point["psnr_minus"]["webp"] == pytest.approx(expected, abs=2e-3)


def test_points_are_one_per_step_of_one_model(image_folder, tmp_path):
    out = tmp_path / "curve.json"
    first = curve.add_point(_checkpoint(tmp_path / "a.pt", step=20), image_folder, out)
    curve.add_point(_checkpoint(tmp_path / "b.pt", step=10), image_folder, out)
    again = curve.add_point(_checkpoint(tmp_path / "c.pt", step=20, seed=1), image_folder, out)
    record = json.loads(out.read_text())
    assert [p["step"] for p in record["points"]] == [10, 20]
    assert record["points"][1]["weights_sha256"] == again["weights_sha256"] != first["weights_sha256"]
    with pytest.raises(ValueError, match="another model"):
        other = ModelConfig(quantizer="leech24gs", tokens=1, channels=8, hyper_channels=16)
        curve.add_point(_checkpoint(tmp_path / "d.pt", step=30, cfg=other), image_folder, out)
    with pytest.raises(ValueError, match="other images"):
        curve.add_point(_checkpoint(tmp_path / "e.pt", step=30), image_folder, out, images=1)
    assert "label" not in record
    curve.add_point(_checkpoint(tmp_path / "f.pt", step=30), image_folder, out, label="cool-down on 256² crops")
    curve.add_point(_checkpoint(tmp_path / "g.pt", step=40), image_folder, out)  # the label stays
    record = json.loads(out.read_text())
    assert record["label"] == "cool-down on 256² crops" and [p["step"] for p in record["points"]] == [10, 20, 30, 40]
    assert curve.main(["plot", str(out), "-o", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    branch = tmp_path / "branch.json"  # a branch at another λ: one more line in the same figure
    branch.write_text(json.dumps({**record, "lmbda": 0.5}))
    assert curve.main(["plot", str(out), str(branch), "-o", str(tmp_path / "two.png")]) == 0
    assert (tmp_path / "two.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_against_other_curves_without_coding_again(image_folder, tmp_path, capsys):
    out = tmp_path / "curve.json"
    point = curve.add_point(_checkpoint(tmp_path / "a.pt", step=5), image_folder, out)
    refs = tmp_path / "refs"
    refs.mkdir()
    _reference(refs / "zoo.json", ["a.png", "b.png"], [0.01, 100.0], [10.0, 30.0])
    _reference(refs / "far.json", ["a.png", "b.png"], [200.0, 300.0], [40.0, 41.0])
    assert curve.main(["against", str(out), "--refs", str(refs), "--names", "zoo,far"]) == 0
    expected = point["psnr"] - np.interp(np.log(point["bpp"]), np.log([0.01, 100.0]), [10.0, 30.0])
    line = capsys.readouterr().out.strip()
    assert line.startswith("step 5: ") and line.endswith(f"{expected:+.2f} dB vs zoo") and "far" not in line


def test_an_estimated_point_is_the_float_models_rate_and_image(image_folder, tmp_path):
    """``--estimate`` measures what the float model says: the prior's bits and the rounded
    reconstruction, close to the real file; kinds never mix."""
    cfg = ModelConfig(quantizer="leech24gs", tokens=1, channels=8, hyper_channels=8, context="checkerboard")
    ckpt = _checkpoint(tmp_path / "c.pt", step=10, cfg=cfg)
    out = tmp_path / "est.json"
    assert curve.main(["add", str(ckpt), "--data-dir", str(image_folder), "--out", str(out), "--estimate"]) == 0
    record = json.loads(out.read_text())
    assert record["estimated"] is True and record["model_config"]["context"] == "checkerboard"

    model = _model_of(ckpt, cfg)
    bpp, psnr = [], []
    for name in ("a.png", "b.png"):
        rgb = load_rgb(image_folder / name)
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            o = model(torch.nn.functional.pad(x, (0, (-x.shape[3]) % 64, 0, (-x.shape[2]) % 64), mode="replicate"))
        img = (o.x_hat[0, :, : rgb.shape[0], : rgb.shape[1]].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
        bpp.append(float(o.token_bits.sum() + o.hyper_bits.sum()) / rgb.shape[0] / rgb.shape[1])
        psnr.append(10 * math.log10(255**2 / ((img - rgb) ** 2).mean()))
    point = record["points"][0]
    assert point["bpp"] == pytest.approx(np.mean(bpp), abs=1e-5)
    assert point["psnr"] == pytest.approx(np.mean(psnr), abs=1e-5)

    # a coded model's estimate is close to its real files, and the two kinds stay in their own files
    real = curve.add_point(_checkpoint(tmp_path / "r.pt", step=10), image_folder, tmp_path / "real.json")
    est = curve.add_point(tmp_path / "r.pt", image_folder, tmp_path / "real-est.json", estimated=True)
    assert est["psnr"] == pytest.approx(real["psnr"], abs=0.05)
    with pytest.raises(ValueError, match="real-file points"):
        curve.add_point(tmp_path / "r.pt", image_folder, tmp_path / "real.json", estimated=True)
    with pytest.raises(ValueError, match="estimated points"):
        curve.add_point(tmp_path / "r.pt", image_folder, out)
    assert curve.main(["plot", str(tmp_path / "real.json"), str(out), "-o", str(tmp_path / "both.png")]) == 0


def test_the_title_names_every_model_drawn():
    def rec(quantizer, estimated=False):
        return {"model_config": {"quantizer": quantizer, "channels": 128, "tokens": 8}, "estimated": estimated,
                "images": ["a.png", "b.png"], "data_dir": "/data/kodak"}

    assert curve.plot_title([rec("leech24gs"), rec("leech24gs")]) == \
        "leech24gs, 128 channels, k = 8: real files, 2 images of kodak"
    assert curve.plot_title([rec("leech24gs"), rec("scalar", True)]) == \
        "leech24gs, 128 channels, k = 8; scalar, 128 channels, k = 8: real files, estimated dashed, 2 images of kodak"
