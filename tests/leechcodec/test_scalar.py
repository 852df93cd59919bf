"""The scalar-quantization family: coding tables, round trips across processes, rate bounds."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from leechcodec import codec
from leechcodec.bitstream import ans, container
from leechcodec.imageio import load_image
from leechcodec.models import LeechCodecModel, ModelConfig, pad_to_multiple
from leechcodec.zoo import export_weights, load_model

from ..conftest import GOLDEN_DIR, TINY_BUDGET, random_image

#: The latent stream costs at most this much over the model's rate with table scales
#: (24-bit probability quantization; no escapes in a trained model).
TABLE_RATE_TOL = 1e-3
#: ... and within this much of the model's rate with the exact scales (the table's
#: quantization of σ; measured 0.2 % here, 0.06–0.08 % for a 300-step model on Kodak).
EXACT_RATE_TOL = 0.01


def _coded_reconstruction(model, rgb: np.ndarray) -> np.ndarray:
    """What the decoder must give: ``g_s(round(y − μ) + μ)`` with the coder's exact means μ
    (the integer h_s of coder profile 2)."""
    x = pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 16)
    with torch.no_grad():
        y = model.g_a(x)
        sym = codec._code_hyper(model, model.h_a(pad_to_multiple(y, 4)), ans.SymbolEncoder())
        means, _ = codec._gaussian_params(model, sym, container.PROFILE_EXACT_ANS32_P24, tuple(y.shape[2:]))
        x_hat = model.g_s(torch.round(y - means) + means)
    h, w = rgb.shape[:2]
    return (x_hat[0, :, :h, :w].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


_FRESH = """
import hashlib, sys, numpy as np
sys.path.insert(0, sys.argv[1])
from conftest import random_image
from leechcodec.codec import compress, decompress
from leechcodec.zoo import load_model
entry, model = load_model('tiny-scalar', 1)
print(hashlib.sha256(compress(model, entry, random_image(17, 33, seed=17)).data).hexdigest())
for path in sys.argv[2:]:
    print(hashlib.sha256(np.ascontiguousarray(decompress(open(path, 'rb').read())).tobytes()).hexdigest())
"""


def test_round_trip_in_a_fresh_process(tiny_zoo, tmp_path):
    """Odd sizes and a grayscale file: a fresh process decodes the encoder's reconstruction
    exactly, and encodes the same bytes."""
    entry, model = load_model("tiny-scalar", 1)
    gray_png = tmp_path / "gray.png"
    Image.fromarray(random_image(29, 23, seed=4)[:, :, 1]).save(gray_png)
    images = {"1x1": random_image(1, 1, seed=1), "17x33": random_image(17, 33, seed=17), "gray": load_image(gray_png)}
    paths, expected, data = [], [], {}
    for name, rgb in images.items():
        res = codec.compress(model, entry, rgb)
        data[name] = res.data
        reconstruction = _coded_reconstruction(model, rgb)
        if name == "gray":  # a grey file decodes to the mean of the decoded channels
            mean = ((reconstruction.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
            reconstruction = np.repeat(mean[:, :, None], 3, axis=2)
        out = codec.decompress(res.data)
        assert out.shape == rgb.shape and np.array_equal(out, reconstruction), name
        assert container.peek_header(res.data).model_key == "tiny-scalar.q1"
        paths.append(tmp_path / f"{name}.lq")
        paths[-1].write_bytes(res.data)
        expected.append(_digest(reconstruction))
    run = subprocess.run([sys.executable, "-c", _FRESH, str(GOLDEN_DIR.parent)] + [str(p) for p in paths],
                         capture_output=True, text=True, check=True)
    lines = run.stdout.split()
    assert lines[0] == hashlib.sha256(data["17x33"]).hexdigest()
    assert lines[1:] == expected


def test_file_size_close_to_information_content(tiny_zoo):
    entry, model = load_model("tiny-scalar", 1)
    res = codec.compress(model, entry, random_image(128, 192, seed=5))
    bits = 8 * len(res.data)
    assert bits >= res.ideal_bits
    assert bits <= 1.01 * res.ideal_bits + 8 * 64 + 2 * 56  # header ≤ 64 B; end markers of 2 streams


def test_scale_index_is_the_nearest_table_entry_in_log_scale():
    table = codec.SCALE_TABLE
    assert len(table) == 64 and table[0] == pytest.approx(0.11) and table[-1] == pytest.approx(256)
    sigma = np.exp(np.random.default_rng(0).uniform(math.log(0.01), math.log(1000), 20000))
    idx = codec._scale_indices(torch.from_numpy(sigma).float()[None, :, None, None])
    s32 = torch.from_numpy(sigma).float().double().numpy()
    nearest = np.argmin(np.abs(np.log(s32)[:, None] - np.log(table)[None]), axis=1)
    assert np.array_equal(idx, nearest)
    exact = codec._scale_indices(torch.from_numpy(table.copy()).float()[None, :, None, None])
    assert np.array_equal(exact, np.arange(64))
    extremes = torch.tensor([-5.0, 0.0, 0.05, 1e6, math.inf]).reshape(1, 5, 1, 1)
    assert codec._scale_indices(extremes).tolist() == [0, 0, 0, 63, 63]


def test_frozen_scale_table_is_the_formula():
    """The bit patterns in coding.py are CompressAI's scale table and its geometric midpoints."""
    import mpmath

    lo, hi = mpmath.log(mpmath.mpf("0.11")), mpmath.log(256)
    exact = [float(mpmath.exp(lo + (hi - lo) * i / 63)) for i in range(64)]
    mids = [float(mpmath.exp(lo + (hi - lo) * (i + mpmath.mpf(0.5)) / 63)) for i in range(63)]
    np.testing.assert_allclose(codec.SCALE_TABLE, exact, rtol=1e-14, atol=0)  # a few ulps: libm's rounding
    np.testing.assert_allclose(codec._SCALE_BOUNDS, mids, rtol=1e-14, atol=0)
    assert not codec.SCALE_TABLE.flags.writeable and not codec._SCALE_BOUNDS.flags.writeable


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("j", [0, 1, 20, 40, 63])
def test_gaussian_rows(j, portable):
    half_width, row = codec._gaussian_row(j, portable)
    sigma = codec.SCALE_TABLE[j]
    assert half_width == math.ceil(6.11 * sigma) and row.shape == (2 * half_width + 2,)
    assert row.min() >= 0 and abs(row.sum() - 1) < 1e-9
    assert np.array_equal(row[: half_width], row[half_width + 1 : -1][::-1])  # symmetric about q = 0
    assert 0 < row[-1] < 2e-9  # escape: the two tails beyond ±(L + ½)
    assert row[half_width] == pytest.approx(math.erf(0.5 / (sigma * math.sqrt(2))), rel=1e-12)
    # libm (profiles 1, 2) and the portable arithmetic (3) agree to rounding
    np.testing.assert_allclose(row, codec._gaussian_row(j, not portable)[1], rtol=1e-12, atol=1e-300)


def test_escapes_and_extremes_are_lossless():
    """Every integer |q| ≤ 2**31 − 1 codes, at every scale, inside and outside the supports."""
    rng = np.random.default_rng(3)
    scale_idx = np.repeat(np.arange(64), 12)
    half = np.array([codec._gaussian_row(j, True)[0] for j in scale_idx])
    q = np.stack([np.zeros_like(half), half, -half, half + 1, -half - 1, 3 * half + 7,
                  rng.integers(-half, half + 1), np.full_like(half, 2**31 - 1), np.full_like(half, -(2**31) + 1),
                  rng.integers(-(2**31) + 1, 2**31, len(half)), rng.integers(-2, 3, len(half)),
                  rng.integers(-2, 3, len(half))], axis=1).ravel()
    idx = np.repeat(scale_idx, 12)
    enc = ans.SymbolEncoder()
    codec._code_scalar(q, idx, enc, container.PROFILE_DEFAULT)
    data = enc.finish()
    dec = ans.SymbolDecoder(data)
    assert np.array_equal(codec._decode_scalar(idx, dec, container.PROFILE_DEFAULT), q)
    dec.finish()
    assert 8 * len(data) >= enc.ideal_bits


def test_encoder_refuses_latents_it_cannot_code():
    model = LeechCodecModel(ModelConfig(quantizer="scalar", tokens=1, channels=8, hyper_channels=8))
    mu = torch.zeros(1, 24, 1, 1)
    for bad in (math.nan, math.inf, 2.0**31):
        y = torch.zeros(1, 24, 1, 1)
        y[0, 5] = bad
        with pytest.raises(ValueError, match="scalar latents"):
            codec._scalar_integers(model, y, mu)


def test_forward_contract():
    """Same ModelOutput as the other families: STE-rounded latent for g_s, rate through
    GaussianConditional (noise in training, rounding in eval), integers round(y − μ)."""
    torch.manual_seed(0)
    cfg = ModelConfig(quantizer="scalar", tokens=2, channels=8, hyper_channels=8)
    assert cfg.latent_channels == 48 and cfg.token_dim == 24
    model = LeechCodecModel(cfg)
    x = torch.rand(2, 3, 64, 64)
    out = model(x, quant_mix=0.5)
    assert out.x_hat.shape == x.shape and out.token_bits.shape == out.hyper_bits.shape == (2,)
    assert out.indices.shape == (2, 48, 4, 4) and out.indices.dtype == torch.int64
    (out.token_bits.sum() + out.hyper_bits.sum() + out.x_hat.square().sum()).backward()
    assert model.g_a[0].weight.grad.abs().sum() > 0 and model.h_s[-1].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        ev = model(x)
        y = model.g_a(x)
        means, scales = model.gaussian_params(model.entropy_bottleneck(model.h_a(y))[0])
        assert torch.equal(ev.indices, torch.round(y - means).long())
        assert torch.equal(ev.x_hat, model.g_s(torch.round(y - means) + means))
    with pytest.raises(ValueError, match="unknown quantizer"):
        ModelConfig(quantizer="vq")


@pytest.fixture(scope="module")
def trained_scalar_zoo(tmp_path_factory):
    """A tiny scalar model after a few real training steps through ``leechcodec.train``."""
    from leechcodec import train

    root = tmp_path_factory.mktemp("scalar")
    (root / "imgs").mkdir()
    for k in range(3):
        Image.fromarray(random_image(96, 112, seed=k)).save(root / "imgs" / f"im{k}.png")
    cfg = train.TrainConfig(data=str(root / "imgs"), out=str(root / "run"), steps=60, batch=2, crop=64, lr=2e-3,
                            ckpt_every=60)
    mcfg = ModelConfig(quantizer="scalar", tokens=1, channels=8, hyper_channels=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        state = torch.load(train.train(cfg, mcfg), weights_only=False)
    finally:
        torch.set_num_threads(threads)
    model = LeechCodecModel(mcfg)
    model.load_state_dict(state["model"])
    export_weights(model, root / "zoo", "trained-scalar", 1, "scalar", cfg.lmbda, TINY_BUDGET, {"note": "test"})
    return root / "zoo"


def test_coder_pays_the_training_rate(trained_scalar_zoo, monkeypatch):
    """The latent stream's information content equals the model's eval-mode rate with σ on
    the coder's table (up to 24-bit probabilities), and the exact-σ rate up to the table."""
    monkeypatch.setenv("LEECHCODEC_ZOO", str(trained_scalar_zoo))
    entry, model = load_model("trained-scalar", 1)
    for seed in (20, 21):
        rgb = random_image(128, 192, seed=seed)
        x = pad_to_multiple(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, model.stride)
        with torch.no_grad():
            exact_bits = float(model(x).token_bits.sum())
            y = model.g_a(x)
            sym = codec._code_hyper(model, model.h_a(y), ans.SymbolEncoder())
            means, idx = codec._gaussian_params(model, sym, container.PROFILE_EXACT_ANS32_P24, tuple(y.shape[2:]))
            table_scales = torch.from_numpy(codec.SCALE_TABLE[idx]).float().reshape(means.shape)
            table_bits = float(-torch.log2(model.gaussian_conditional(y, table_scales, means)[1]).sum())
        latents = ans.SymbolEncoder()
        codec._code_scalar(codec._scalar_integers(model, y, means), idx, latents,
                           container.PROFILE_EXACT_ANS32_P24)
        assert abs(latents.ideal_bits - table_bits) <= TABLE_RATE_TOL * table_bits
        assert abs(latents.ideal_bits - exact_bits) <= EXACT_RATE_TOL * exact_bits
        res = codec.compress(model, entry, rgb)
        assert 8 * len(res.data) >= res.ideal_bits >= latents.ideal_bits


def test_portable_rows_are_the_same_bits_compiled_and_interpreted(tmp_path):
    """Profile 3's Gaussian rows (scalar family) and gain rows (gain–shape family) come from
    xmath's erf/erfc: plain Python (``NUMBA_DISABLE_JIT=1``) gives the same bits as numba."""
    import os

    from leechcodec import coding

    keys = [(m, j) for m in (-128, -3, 0, 7, 100, 1000, 1152) for j in (0, 9, 31, 63)]
    gauss = np.concatenate([coding._gaussian_row(j, True)[1] for j in range(64)])
    gain = np.concatenate([coding._gain_row(m, j, True) for m, j in keys])
    np.save(tmp_path / "gauss.npy", gauss)
    np.save(tmp_path / "gain.npy", gain)
    code = f"""
import numpy as np
from leechcodec import coding
gauss = np.concatenate([coding._gaussian_row(j, True)[1] for j in range(64)])
gain = np.concatenate([coding._gain_row(m, j, True) for m, j in {keys!r}])
assert gauss.tobytes() == np.load({str(tmp_path / "gauss.npy")!r}).tobytes()
assert gain.tobytes() == np.load({str(tmp_path / "gain.npy")!r}).tobytes()
print("ok")
"""
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
