"""The gain–shape Λ24 family: gain prior (exact sums, coder rows), round trips, rates, gradients."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from leechcodec import coding
from leechcodec.bitstream import ans, container
from leechcodec.codec import compress, decompress
from leechcodec.latent_codecs import GAIN_LEVELS, GAIN_SCALE_MIN, gain_likelihood
from leechcodec.models import LeechCodecModel, ModelConfig, pad_to_multiple
from leechcodec.zoo import load_model

from ..conftest import GOLDEN_DIR, random_image

#: The coder's rows are float64 from math.erfc, the training likelihood float64 from
#: torch.special.ndtr: two implementations of Φ, agreeing to this relative error (1e-9
#: measured on tail probabilities near 1e-8, where the two erfc's last bits differ).
ROW_RTOL = 1e-7
#: Probabilities below this are bounded by the likelihood floor (1e-9) in training.
ROW_FLOOR = 1e-8
#: The coder's token bits against the model's eval-mode rate with the float prior: the
#: integer h_s, the 1/256 grid of (a, b), the 1/16 grid of μ and the scale table move it.
RATE_RTOL = 0.05


def _x(rgb: np.ndarray) -> torch.Tensor:
    return pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 16)


def _reconstruction(model, rgb: np.ndarray) -> np.ndarray:
    """g_s of the model's own quantized latent (what the decoder must rebuild)."""
    with torch.no_grad():
        y = model.g_a(_x(rgb))
        x_hat = model.g_s(model.latent_codec.quantize(model, y, None, False).y_hat)
    h, w = rgb.shape[:2]
    return (x_hat[0, :, :h, :w].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("mu", [-9.0, -0.4, 0.0, 0.3, 1.5, 7.25, 40.0, 62.6, 63.0, 80.0])
@pytest.mark.parametrize("sigma", [0.01, 0.11, 0.7, 3.0, 25.0, 300.0])
def test_gain_likelihood_sums_to_one(mu, sigma):
    n = torch.arange(GAIN_LEVELS, dtype=torch.float64)
    p = gain_likelihood(n, torch.tensor(mu, dtype=torch.float64), torch.tensor(sigma, dtype=torch.float64))
    floor_mass = float((p == 1e-9).sum()) * 1e-9  # the bound adds at most this
    assert abs(float(p.sum()) - 1.0) <= 1e-12 + floor_mass
    # For a narrow prior, its mode is the gain nearest the mean (wide ones pile up in the folds).
    assert sigma > 3 or int(p.argmax()) == min(max(round(mu), 0), GAIN_LEVELS - 1) or abs(mu - round(mu)) == 0.5


def test_gain_likelihood_matches_a_plain_normal_cdf():
    """An independent oracle: Φ differences from math.erf, where they are well conditioned."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        mu, sigma = rng.uniform(-2, 66), math.exp(rng.uniform(math.log(GAIN_SCALE_MIN), math.log(100)))
        phi = lambda x: 0.5 * (1 + math.erf((x - mu) / (sigma * math.sqrt(2))))  # noqa: E731
        n = int(rng.integers(0, GAIN_LEVELS))
        lo = 0.0 if n == 0 else phi(n - 0.5)
        hi = 1.0 if n == GAIN_LEVELS - 1 else phi(n + 0.5)
        if hi - lo > 1e-3:
            got = float(gain_likelihood(torch.tensor(float(n), dtype=torch.float64), torch.tensor(mu, dtype=torch.float64),
                                        torch.tensor(sigma, dtype=torch.float64)))
            assert got == pytest.approx(hi - lo, rel=1e-10)


@pytest.mark.parametrize("mean_index", [-128, -3, 0, 5, 16, 24, 100, 1007, 1008, 1100, 1152])
@pytest.mark.parametrize("j", [0, 1, 17, 40, 63])
@pytest.mark.parametrize("portable", [False, True])
def test_coder_rows_equal_the_training_likelihood(mean_index, j, portable):
    row = coding._gain_row(mean_index, j, portable)
    assert row.shape == (GAIN_LEVELS,) and (row >= 0).all()
    assert abs(row.sum() - 1.0) < 1e-12
    n = torch.arange(GAIN_LEVELS, dtype=torch.float64)
    ref = gain_likelihood(n, torch.tensor(mean_index / 16, dtype=torch.float64),
                          torch.tensor(float(coding.SCALE_TABLE[j]), dtype=torch.float64)).numpy()
    big = ref > ROW_FLOOR
    np.testing.assert_allclose(row[big], ref[big], rtol=ROW_RTOL)
    assert (row[~big] <= ROW_FLOOR).all()


def test_round_trip_equals_model_reconstruction(tiny_zoo):
    entry, model = load_model("tiny-gainshape", 1)
    for size in [(1, 1), (17, 33), (64, 64), (70, 129)]:
        rgb = random_image(*size, seed=size[0])
        res = compress(model, entry, rgb)
        assert np.array_equal(decompress(res.data), _reconstruction(model, rgb)), size


def test_gains_and_skipped_shapes(tiny_zoo):
    """The fixture has tokens with ĝ = 0, 1 and 2; only the tokens with ĝ > 0 code a shape,
    and the token chunk's information is exactly gains plus those shapes."""
    entry, model = load_model("tiny-gainshape", 1)
    rgb = random_image(128, 192, seed=7)
    with torch.no_grad():
        y = model.g_a(_x(rgb))
    gains = coding._token_gains(model, y)
    assert set(np.unique(gains)) == {0, 1, 2}
    enc = model.compress(rgb)
    _, params = model.decompress(enc.chunks, enc.height, enc.width, enc.padded_height, enc.padded_width,
                                 container.PROFILE_DEFAULT)
    assert np.array_equal(params["gains"], gains)
    assert (params["symbols"][gains == 0] == 0).all()
    # Information content, symbol by symbol, against the coder's own accounting.
    gain_rows = coding._gain_tables(params["gain_mean_index"], params["scale_index"], container.PROFILE_DEFAULT)
    freq = ans.quantized_frequencies(gain_rows)[np.arange(len(gains)), gains]  # the coder's integer model
    gain_bits = float(np.sum(ans.PRECISION - np.log2(freq)))
    shapes = ans.SymbolEncoder()
    coded = gains > 0
    coding._code_leech(params["symbols"][coded], params["A"][coded], params["B"][coded], shapes,
                       container.PROFILE_EXACT_ANS32_P24)
    assert enc.ideal_bits - enc.hyper_ideal_bits == pytest.approx(gain_bits + shapes.ideal_bits, rel=1e-12)
    # Fewer tokens coded than a spherical model would: the zero gains saved their shapes.
    assert coded.sum() < len(gains)


def test_coder_rate_follows_the_model_rate(tiny_zoo):
    entry, model = load_model("tiny-gainshape", 1)
    rgb = random_image(128, 192, seed=7)
    enc = model.compress(rgb)
    with torch.no_grad():
        model.eval()
        x = _x(rgb)
        y = model.g_a(x)
        z = model.h_a(pad_to_multiple(y, 4))
        z_hat, _ = model.entropy_bottleneck(z)
        params = model.prior_params(z_hat)
        q = model.latent_codec.quantize(model, y, params, False)
        model_bits = float(model.latent_codec.bits(model, q.rate_input, params)[0])
    assert enc.ideal_bits - enc.hyper_ideal_bits == pytest.approx(model_bits, rel=RATE_RTOL)
    assert 8 * len(compress(model, entry, rgb).data) >= enc.ideal_bits


def test_rate_counts_shapes_only_where_the_gain_is_positive():
    torch.manual_seed(0)
    model = LeechCodecModel(ModelConfig(quantizer="leech24gs", tokens=3, channels=8, hyper_channels=8))
    lc = model.latent_codec
    y = torch.randn(2, 72, 4, 8) * torch.tensor([0.2, 1.0, 3.0]).repeat_interleave(24)[None, :, None, None]
    z_hat = torch.randn(2, 8, 1, 2)
    params = lc.params(model, z_hat)
    q = lc.quantize(model, y, params, training=True)
    n = q.indices[:, 3:].double()
    assert torch.equal(n, torch.round(y.reshape(2, 3, 24, 4, 8).norm(dim=2)).clamp(0, GAIN_LEVELS - 1).double())
    a, b, mu, sigma = params
    shape_bits = -model.token_log_prob(a, b, q.rate_input[:, :72]) / math.log(2)
    expected = (shape_bits * (n > 0).flatten(1)).sum(1) - torch.log2(gain_likelihood(n.float(), mu, sigma)).flatten(1).sum(1)
    torch.testing.assert_close(lc.bits(model, q.rate_input, params), expected.float())
    # ŷ: ĝ times the unit Λ24 codeword, zero where ĝ = 0.
    unit = model.quantizer(y).y_hat.reshape(2, 3, 24, 4, 8)
    torch.testing.assert_close(q.y_hat.reshape(2, 3, 24, 4, 8), unit * n[:, :, None].float())
    assert (q.y_hat.reshape(2, 3, 24, 4, 8)[:, 0] == 0).any()


def test_training_gradients_are_finite_at_zero_tokens():
    torch.manual_seed(0)
    model = LeechCodecModel(ModelConfig(quantizer="leech24gs", tokens=2, channels=8, hyper_channels=8))
    with torch.no_grad():
        model.g_a[-1].weight[:24].zero_()  # token 0 is exactly zero everywhere (bias only)
        model.g_a[-1].bias[:24].zero_()
    model.train()
    x = torch.rand(2, 3, 64, 64)
    out = model(x)
    loss = (out.token_bits + out.hyper_bits).sum() / x[0, 0].numel() + 100 * ((out.x_hat - x) ** 2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # The indicator's surrogate gradient: a token of norm below ½ (ĝ = 0) still feels what its
    # shape would cost, through clamp(‖t‖, 0, 1).
    y = torch.full((1, 48, 4, 4), 0.1, requires_grad=True)  # all tokens: ‖t‖ = 0.49
    lc = model.latent_codec
    params = lc.params(model, torch.zeros(1, 8, 1, 1))
    q = lc.quantize(model, y, params, training=True)
    assert (q.indices[0, 2:] == 0).all()
    gain_bits = -torch.log2(gain_likelihood(q.rate_input[:, 48:50], params[2], params[3])).sum()
    shape_part = lc.bits(model, q.rate_input, params).sum() - gain_bits
    assert float(shape_part.detach()) == pytest.approx(0.0, abs=1e-3)  # no shape bits are paid ...
    (grad,) = torch.autograd.grad(shape_part, y)
    assert float((grad * y).detach().sum()) > 0  # ... but their gradient pushes the norms down


def test_profile_1_is_refused(tiny_zoo):
    entry, model = load_model("tiny-gainshape", 1)
    with pytest.raises(ValueError, match="exact prior only"):
        compress(model, entry, random_image(16, 16), profile=container.PROFILE_ANS32_P24)


_FRESH = """
import hashlib, os, sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from leechcodec.codec import decompress
print(hashlib.sha256(np.ascontiguousarray(decompress(open(sys.argv[1], 'rb').read())).tobytes()).hexdigest())
"""


def test_fresh_processes_with_other_thread_counts_decode_the_same(tiny_zoo, tmp_path):
    entry, model = load_model("tiny-gainshape", 1)
    rgb = random_image(96, 80, seed=11)
    data = compress(model, entry, rgb).data
    path = tmp_path / "x.lq"
    path.write_bytes(data)
    here = hashlib.sha256(np.ascontiguousarray(decompress(data)).tobytes()).hexdigest() + "\n"
    outs = set()
    for threads in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        outs.add(subprocess.run([sys.executable, "-c", _FRESH, str(path), str(threads)], capture_output=True,
                                text=True, check=True, env=env).stdout)
    assert outs == {here}


def test_a_finer_gain_step_scales_levels_and_reconstruction():
    """gain_frac_bits = 2: the coded level is round(4‖t‖) and ŷ is level/4 times the shape."""
    torch.manual_seed(0)
    model = LeechCodecModel(ModelConfig(quantizer="leech24gs", tokens=3, channels=8, hyper_channels=8,
                                        gain_frac_bits=2))
    y = torch.randn(2, 72, 4, 8) * torch.tensor([0.02, 0.1, 2.0]).repeat_interleave(24)[None, :, None, None]
    q = model.latent_codec.quantize(model, y, None, training=False)
    n = q.indices[:, 3:]
    expected = torch.round(4 * y.reshape(2, 3, 24, 4, 8).norm(dim=2)).clamp(0, GAIN_LEVELS - 1)
    assert torch.equal(n.double(), expected.double())
    assert set(n.unique().tolist()) >= {0, 1, 2}  # levels an integer gain step would round to 0
    unit = model.quantizer(y).y_hat.reshape(2, 3, 24, 4, 8)
    torch.testing.assert_close(q.y_hat.reshape(2, 3, 24, 4, 8), unit * n[:, :, None].float() / 4)


def test_a_finer_gain_step_round_trips_through_a_file():
    from leechcodec import api

    torch.manual_seed(3)
    model = LeechCodecModel(ModelConfig(quantizer="leech24gs", tokens=2, channels=8, hyper_channels=8,
                                        gain_frac_bits=3)).eval()
    with torch.no_grad():
        model.g_a[-1].weight[24:].mul_(6.0)  # token 1 about 6× the norm of token 0
    rgb = random_image(40, 72, seed=5)
    data = api.compress(rgb, model)
    gains = coding._token_gains(model, model.g_a(_x(rgb)).detach())
    assert len(np.unique(gains)) >= 6
    assert np.array_equal(api.decompress(data, model), _reconstruction(model, rgb))
    # The configuration says it, and an integer-gain model of the same weights is another model.
    assert model.config.to_dict()["gain_frac_bits"] == 3
    assert "gain_frac_bits" not in ModelConfig(quantizer="leech24gs").to_dict()


def test_gain_step_is_only_for_the_gain_shape_family():
    with pytest.raises(ValueError, match="gain_frac_bits"):
        ModelConfig(quantizer="leech24", gain_frac_bits=1)
    with pytest.raises(ValueError, match="gain_frac_bits"):
        ModelConfig(quantizer="leech24gs", gain_frac_bits=5)


def test_gain_noise_changes_only_the_training_rate():
    """--gain-noise: in training the gain's rate sees ‖t‖ + U(−½, ½); ŷ, the indices and the
    evaluation rate are those of the rounded gain."""
    torch.manual_seed(0)
    model = LeechCodecModel(ModelConfig(quantizer="leech24gs", tokens=3, channels=8, hyper_channels=8))
    lc = model.latent_codec
    y = torch.randn(2, 72, 4, 8) * 2
    plain = lc.quantize(model, y, None, training=True)
    lc.gain_noise = True
    noisy = lc.quantize(model, y, None, training=True)
    evaluated = lc.quantize(model, y, None, training=False)
    g = lc.gains(y)
    assert torch.equal(noisy.y_hat, plain.y_hat) and torch.equal(noisy.indices, plain.indices)
    assert torch.equal(evaluated.rate_input, plain.rate_input)
    offset = noisy.rate_input[:, 72:75] - g
    assert float(offset.abs().max()) <= 0.5 and float(offset.std()) > 0.2  # uniform on (−½, ½), std 0.29
    assert torch.equal(plain.rate_input[:, 72:75], torch.round(g).clamp(0, GAIN_LEVELS - 1))


def test_train_refuses_gain_options_for_other_families(tmp_path):
    from leechcodec import train

    data = tmp_path / "d"
    data.mkdir()
    from PIL import Image

    Image.fromarray(random_image(64, 64, seed=1)).save(data / "a.png")
    base = ["--data", str(data), "--out", str(tmp_path / "r"), "--steps", "1", "--crop", "32", "--batch", "1",
            "--channels", "8", "--hyper-channels", "8", "--tokens", "1", "--quantizer", "leech24"]
    assert train.main([*base, "--gain-noise"]) == 1
    assert train.main([*base, "--gain-frac-bits", "2"]) == 1


def test_gain_prior_bounds_let_sigma_and_the_likelihood_recover():
    """σ below GAIN_SCALE_MIN and likelihoods below 1e-9 take the bounds' values, and the
    gradient that would raise them still passes (a plain clamp would give zero): a token whose
    σ sits at the bound and whose gain is far from μ learns to widen σ."""
    n = torch.tensor([5.0, 0.0])
    mu = torch.tensor([0.0, 0.0])
    sigma = torch.tensor([0.01, 0.01], requires_grad=True)  # both below the bound
    p = gain_likelihood(n, mu, sigma)
    assert float(p[0].detach()) == pytest.approx(1e-9, rel=1e-6)  # far outside: the floor
    (grad,) = torch.autograd.grad(-torch.log2(p).sum(), sigma)
    assert float(grad[0]) == 0.0  # so far out Φ is flat: no direction for σ here ...
    n2 = torch.tensor([2.0])
    sigma2 = torch.tensor([0.05], requires_grad=True)
    p2 = gain_likelihood(n2, torch.tensor([1.0]), sigma2)  # 1.5σ_min from the mean at the bound
    assert float(p2.detach()) == pytest.approx(float(gain_likelihood(n2, torch.tensor([1.0]), torch.tensor([GAIN_SCALE_MIN]))))
    (g2,) = torch.autograd.grad(-torch.log2(p2).sum(), sigma2)
    assert float(g2) < 0  # ... but here the bits fall as σ grows, and the gradient says so
    # A gain at the mean prefers a smaller σ: that gradient is held at the bound.
    sigma3 = torch.tensor([0.05], requires_grad=True)
    (g3,) = torch.autograd.grad(-torch.log2(gain_likelihood(n2, n2, sigma3)).sum(), sigma3)
    assert float(g3) == 0.0
