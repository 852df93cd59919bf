"""The context oracle: its sweep starts from the model's own rate and only reads anchors."""

from __future__ import annotations

import json
import math

import pytest
import torch

from leechcodec.bench.micro import context_oracle
from leechcodec.models import anchor_mask, pad_to_multiple
from leechcodec.zoo import load_model

from ...conftest import random_image


def test_kappa_zero_is_the_models_non_anchor_shape_rate(tiny_zoo):
    _, model = load_model("tiny-gainshape", 1)
    rgb = random_image(128, 192, seed=7)
    r = context_oracle.measure(model, rgb)
    with torch.no_grad():
        out = model(pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 64))
    assert r["shape_bits"] + r["gain_bits"] == pytest.approx(float(out.token_bits[0]), rel=1e-5)
    # the non-anchor share, counted again from the model's per-token rate
    with torch.no_grad():
        y = model.g_a(pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 64))
        z_hat, _ = model.entropy_bottleneck(model.h_a(y))
        q, (a, b, _, _) = model.quantize_latent(y, z_hat, False)
        m, k = model.config.latent_channels, model.config.tokens
        codes, _, mask = q.rate_input.split([m, k, k], 1)
        bits = -model.token_log_prob(a, b, codes) / math.log(2) * mask.flatten(1)
        others = (~anchor_mask(*y.shape[-2:])).flatten().repeat(k)[None]
    assert r["sweep"][0.0] == pytest.approx(float((bits * others).sum()), rel=1e-6)
    assert r["sweep"][0.5] != pytest.approx(r["sweep"][0.0], rel=1e-6)


def test_the_record(tiny_zoo, image_folder, tmp_path):
    out = tmp_path / "oracle.json"
    assert context_oracle.main(["--model", "tiny-gainshape", "--quality", "1", "--data-dir", str(image_folder),
                                "--images", "2", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    s = record["shape_context_sweep"]
    assert s["best_saving"] >= 0 and min(s["non_anchor_shape_bits"]) == s["non_anchor_shape_bits"][
        s["kappa"].index(s["best_kappa"])]
    g = record["gain_residual_variance"]
    assert g["mu_and_neighbours"] <= g["hyperprior_mu"] + 1e-9  # least squares with μ's own coefficient free
    assert 0 < record["gain_share_of_token_bits"] < 1
