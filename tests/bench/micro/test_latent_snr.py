"""The latent SNR: a gain–shape token's quantization found again by brute force over all
196,560 minimal vectors, and the scalar family's error bounded by its rounding."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from leechcodec.bench.micro import latent_snr
from leechcodec.lattice import leech_codewords
from leechcodec.models import pad_to_multiple
from leechcodec.zoo import load_model

from ...conftest import random_image


def _latent(model, rgb):
    with torch.no_grad():
        return model.g_a(pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 64))


def test_gain_shape_tokens_by_brute_force(tiny_zoo):
    _, model = load_model("tiny-gainshape", 1)
    images = [random_image(64, 128, seed=3), random_image(70, 64, seed=4)]
    r = latent_snr.model_snr(model, images, 0.01)
    words = leech_codewords(np.arange(196560)).astype(np.float64) / math.sqrt(32)  # unit codewords
    step = model.latent_codec.gain_step
    signal = noise = 0.0
    cos = []
    for rgb in images:
        t = model.tokens_of(_latent(model, rgb))[0].double().numpy()
        unit = words[np.argmax(t @ words.T, axis=1)]
        gain = np.rint(np.linalg.norm(t, axis=1) / step)
        t_hat = unit * (gain * step)[:, None]
        signal += (t**2).sum()
        noise += ((t - t_hat) ** 2).sum()
        cos += list(((t * unit).sum(1) / np.linalg.norm(t, axis=1))[gain > 0])
    assert r["latent_snr_db"] == pytest.approx(10 * math.log10(signal / noise), abs=1e-3)
    assert r["mean_cos"] == pytest.approx(np.mean(cos), abs=1e-4)
    assert 0 < r["coded_share"] <= 1 and r["mean_gain"] >= 1


def test_scalar_error_is_the_rounding_and_the_record(tiny_zoo, tmp_path, monkeypatch):
    _, model = load_model("tiny-scalar", 1)
    rgb = random_image(64, 128, seed=5)
    r = latent_snr.model_snr(model, [rgb], 0.01)
    y = _latent(model, rgb)
    snr_floor = 10 * math.log10(float(y.square().sum()) / (0.25 * y.numel()))  # |y − ŷ| ≤ ½ everywhere
    assert r["latent_snr_db"] >= snr_floor - 1e-6 and "mean_cos" not in r

    data = tmp_path / "data"
    (data / "kodak").mkdir(parents=True)
    from PIL import Image

    for i in range(5):
        Image.fromarray(random_image(64, 64, seed=i)).save(data / "kodak" / f"kodim{i + 1:02d}.png")
    out = tmp_path / "snr.json"
    assert latent_snr.main(["tiny-scalar.q1", "tiny-gainshape.q1", "--data", str(data), "--images", "2",
                            "--out", str(out), "--stages"]) == 0
    record = json.loads(out.read_text())
    assert record["images"] == ["kodim01.png", "kodim05.png"]
    assert set(record["models"]) == {"tiny-scalar.q1", "tiny-gainshape.q1"}
    assert record["models"]["tiny-gainshape.q1"]["quantizer"] == "leech24gs"
    assert "two_stage" in record["models"]["tiny-gainshape.q1"]["stages"]
    assert "stages" not in record["models"]["tiny-scalar.q1"]


def test_stage_oracle_by_brute_force(tiny_zoo):
    _, model = load_model("tiny-gainshape", 1)
    images = [random_image(64, 128, seed=3)]
    s = latent_snr.stage_oracle(model, images)
    words = leech_codewords(np.arange(196560)).astype(np.float64) / math.sqrt(32)
    step = model.latent_codec.gain_step

    def stage(t):
        gain = np.clip(np.rint(np.linalg.norm(t, axis=1) / step), 0, 63)
        return words[np.argmax(t @ words.T, axis=1)] * (gain * step)[:, None], gain

    t = model.tokens_of(_latent(model, images[0]))[0].double().numpy()
    one, _ = stage(t)
    two, g2 = stage(t - one)
    exact = t / np.linalg.norm(t, axis=1, keepdims=True) * np.clip(np.rint(np.linalg.norm(t, axis=1) / step), 0, 63)[:, None] * step
    for key, t_hat in (("coded", one), ("exact_shape", exact), ("two_stage", one + two)):
        snr = 10 * math.log10((t**2).sum() / ((t - t_hat) ** 2).sum())
        assert s[key]["latent_snr_db"] == pytest.approx(snr, abs=1e-3)
    assert s["coded"]["latent_snr_db"] == pytest.approx(latent_snr.model_snr(model, images, 0.01)["latent_snr_db"], abs=1e-3)
    assert s["stage2_coded_share"] == pytest.approx((g2 > 0).mean())
    assert s["stage2_shape_bpp_max"] == pytest.approx((g2 > 0).sum() * math.log2(196560) / (64 * 128))
    assert s["two_stage"]["latent_snr_db"] > s["coded"]["latent_snr_db"]
    with pytest.raises(ValueError, match="gain–shape"):
        latent_snr.stage_oracle(load_model("tiny-scalar", 1)[1], images)
