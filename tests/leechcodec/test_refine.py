"""Encoder-side latent refinement: its cost is the coder's cost, it never raises it, and
refined files decode with the unchanged decoder (in this process and in a fresh one)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from leechcodec import codec
from leechcodec.bitstream import ans, container
from leechcodec.cli import main
from leechcodec.codec import compress, decompress
from leechcodec.models import pad_to_multiple
from leechcodec.refine import MAX_REFINE_PIXELS, rd_cost, refine_latents
from leechcodec.zoo import load_model

from ..conftest import random_image

MODELS = ["tiny-leech", "tiny-bsq", "tiny-scalar", "tiny-gainshape"]


def _padded(model, rgb: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    return pad_to_multiple(x, model.stride)


@pytest.mark.parametrize("name", MODELS)
def test_cost_is_the_training_objective(tiny_zoo, name):
    """At the unrefined latents the cost is the model's own loss in eval mode."""
    entry, model = load_model(name, 1)
    rgb = random_image(70, 100, seed=3)
    x = _padded(model, rgb)
    with torch.no_grad():
        y = model.g_a(x)
        r = rd_cost(model, x, y, model.h_a(y), entry.lmbda, 70, 100)
        out = model(x)
    assert float(r.latent_bits) == pytest.approx(float(out.token_bits.sum()), rel=1e-5)
    assert float(r.hyper_bits) == pytest.approx(float(out.hyper_bits.sum()), rel=1e-5)
    mse = torch.mean((out.x_hat[..., :70, :100] - x[..., :70, :100]) ** 2)
    assert float(r.mse) == pytest.approx(float(mse), rel=1e-5)
    bpp = float(r.latent_bits + r.hyper_bits) / (70 * 100)
    assert float(r.cost) == pytest.approx(entry.lmbda * 255**2 * float(r.mse) + bpp, rel=1e-6)


@pytest.mark.parametrize("name", ["tiny-leech", "tiny-bsq"])
def test_cost_rate_is_the_coders_rate(tiny_zoo, name):
    """The token rate refinement minimizes (torch prior) is the information content of the
    symbols the coder writes under its float64 tables (numba kernel / numpy)."""
    entry, model = load_model(name, 1)
    x = _padded(model, random_image(70, 100, seed=3))
    with torch.no_grad():
        y = model.g_a(x)
        z = model.h_a(y)
        r = rd_cost(model, x, y, z, entry.lmbda, 70, 100)
        sym = codec._code_hyper(model, z, ans.SymbolEncoder())
        idx = model.quantizer(y).indices[0].reshape(-1).numpy().astype(np.int64)
        profile = container.PROFILE_EXACT_ANS32_P24
        ai, bi = codec._token_params(model, sym, profile, tuple(y.shape[2:]))
    enc = ans.SymbolEncoder()
    if name == "tiny-leech":
        codec._code_leech(idx, ai, bi, enc, profile)
    else:
        enc.add(codec._bsq_bits(idx, model.config.bsq_dim), codec._bsq_probs(ai, profile))
    # Only the coder's integer prior (h_s in fixed point, PARAM_STEP grid) separates the two.
    assert float(r.latent_bits) == pytest.approx(enc.float_ideal_bits, rel=1e-3)


@pytest.mark.parametrize("name", MODELS)
def test_refinement_lowers_the_cost_and_reports_it(tiny_zoo, name):
    entry, model = load_model(name, 1)
    rgb = random_image(64, 96, seed=4)
    x = _padded(model, rgb)
    seen: list[tuple[int, float]] = []
    r = refine_latents(model, x, 64, 96, entry.lmbda, steps=12, progress=lambda s, c: seen.append((s, c)))
    assert [s for s, _ in seen] == list(range(13))
    assert seen[0][1] == pytest.approx(r.cost_start)
    assert r.cost == min(c for _, c in seen) and r.cost <= r.cost_start
    assert r.cost < r.cost_start and r.best_step > 0  # twelve Adam steps find something better
    with torch.no_grad():
        again = rd_cost(model, x, r.y, r.z, entry.lmbda, 64, 96).cost
    assert float(again) == pytest.approx(r.cost, rel=1e-5)
    assert all(not p.requires_grad for p in model.parameters()) or all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_refined_file_decodes_to_the_refined_latents(tiny_zoo, name):
    entry, model = load_model(name, 1)
    rgb = random_image(40, 72, seed=5)
    res = compress(model, entry, rgb, refine=6)
    assert res.data != compress(model, entry, rgb).data
    assert compress(model, entry, rgb, refine=6).data == res.data  # deterministic in-process
    out = decompress(res.data)
    r = refine_latents(model, _padded(model, rgb), 40, 72, entry.lmbda, steps=6)
    with torch.no_grad():
        if model.config.quantizer == "scalar":
            sym = codec._code_hyper(model, r.z, ans.SymbolEncoder())  # the coder's means (exact prior)
            means, _ = codec._gaussian_params(model, sym, container.PROFILE_EXACT_ANS32_P24, tuple(r.y.shape[2:]))
            y_hat = torch.round(r.y - means) + means
        else:  # Λ24, BSQ, gain–shape Λ24: the quantized latent does not depend on the prior
            y_hat = model.latent_codec.quantize(model, r.y, None, False).y_hat
        x_hat = model.g_s(y_hat)
    expect = (x_hat[0, :, :40, :72].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(out, expect)


_FRESH = """
import hashlib, sys, numpy as np
from leechcodec.codec import decompress
print(hashlib.sha256(np.ascontiguousarray(decompress(open(sys.argv[1], 'rb').read())).tobytes()).hexdigest())
"""


def test_refined_file_decodes_in_a_fresh_process(tiny_zoo, tmp_path):
    entry, model = load_model("tiny-leech", 1)
    data = compress(model, entry, random_image(48, 48, seed=6), refine=4).data
    path = tmp_path / "r.lq"
    path.write_bytes(data)
    here = hashlib.sha256(np.ascontiguousarray(decompress(data)).tobytes()).hexdigest()
    out = subprocess.run([sys.executable, "-c", _FRESH, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == here


def test_refinement_refuses_bad_arguments(tiny_zoo):
    entry, model = load_model("tiny-leech", 1)
    with pytest.raises(ValueError, match=">= 0"):
        refine_latents(model, torch.zeros(1, 3, 64, 64), 64, 64, 0.01, steps=-1)
    side = 64 * (int(MAX_REFINE_PIXELS**0.5) // 64 + 1)
    with pytest.raises(ValueError, match="limited"):
        refine_latents(model, torch.zeros(1, 3, side, side), side, side, 0.01, steps=1)


def test_cli_encode_refine(tiny_zoo, tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(random_image(30, 50, seed=8)).save(src)
    out = tmp_path / "out.lq"
    assert main(["encode", str(src), str(out), "--model", "tiny-leech", "--refine", "3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["refine"] == 3 and out.stat().st_size == record["bytes"]
    assert main(["encode", str(src), str(tmp_path / "bad.lq"), "--model", "tiny-leech", "--refine", "-1"]) == 1
    err = capsys.readouterr().err
    assert "--refine" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.lq").exists()
