"""The checkerboard context model (leechcodec.models.CheckerboardContext): what it reads, how
it starts, that it trains, and its exact coding path (leechcodec.intprior, two passes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leechcodec.models import CheckerboardContext, LeechCodecModel, ModelConfig, anchor_mask, pad_to_multiple

from ..conftest import random_image

SMALL = dict(quantizer="leech24gs", tokens=2, channels=16, hyper_channels=16)


def _model(seed: int = 0, **kw) -> LeechCodecModel:
    """A small random model whose tokens are live: g_a's output scaled up so that the gains
    are mostly above 0 and every token codes a shape."""
    torch.manual_seed(seed)
    model = LeechCodecModel(ModelConfig(**{**SMALL, **kw})).eval()
    with torch.no_grad():
        model.g_a[-1].weight.mul_(30)
        model.g_a[-1].bias.mul_(30)
    return model


def test_config_keeps_older_identities_and_refuses_what_it_cannot_do():
    assert "context" not in ModelConfig(**SMALL).to_dict()  # hashed file identities of older models unchanged
    assert ModelConfig(**SMALL, context="checkerboard").to_dict()["context"] == "checkerboard"
    with pytest.raises(ValueError, match="unknown context"):
        ModelConfig(**SMALL, context="raster")
    for family in ("leech24", "bsq", "scalar"):
        with pytest.raises(ValueError, match="leech24gs family"):
            ModelConfig(quantizer=family, context="checkerboard")


def test_anchor_mask_is_the_even_checkerboard():
    m = anchor_mask(3, 4)[0, 0].numpy()
    assert m.shape == (3, 4)
    assert (m == ((np.arange(3)[:, None] + np.arange(4)[None]) % 2 == 0)).all()


def test_a_new_context_starts_as_the_hyperprior_model():
    """ep's output layer starts at zero: a hyperprior model's weights give the same rate and image."""
    base = _model(0)
    ctx = _model(1, context="checkerboard")
    missing, unexpected = ctx.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("context.") for k in missing)
    x = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = base(x), ctx(x)
    assert torch.equal(a.x_hat, b.x_hat) and torch.equal(a.hyper_bits, b.hyper_bits)
    assert a.token_bits.item() > 1000 and torch.equal(a.token_bits, b.token_bits)


def _params(model: LeechCodecModel, z_hat: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(model.prior_params(z_hat, y_hat), 1)


def test_the_context_reads_only_the_anchors_and_leaves_the_anchors_to_the_hyperprior():
    model = _model(3, context="checkerboard")
    torch.nn.init.normal_(model.context.ep[-1].weight, std=0.1)  # a trained context is not zero
    c = model.config.latent_channels
    g = torch.Generator().manual_seed(4)
    z_hat = torch.randn(1, model.config.hyper_channels, 2, 2, generator=g).round()
    y_hat = torch.randn(1, c, 8, 8, generator=g)
    anchors = anchor_mask(8, 8)
    p0 = _params(model, z_hat, y_hat)
    hyper = torch.cat(model.latent_codec.params(model, z_hat), 1)
    assert torch.equal(p0[..., anchors[0, 0]], hyper[..., anchors[0, 0]])  # anchors: the hyperprior alone
    assert not torch.equal(p0, hyper)

    noise = torch.randn(y_hat.shape, generator=g)
    p1 = _params(model, z_hat, y_hat + noise * ~anchors)  # other non-anchor values
    assert torch.equal(p0, p1)
    p2 = _params(model, z_hat, y_hat + noise * anchors)  # other anchor values
    changed = (p2 != p0).any(1)[0]
    assert changed.any() and not changed[anchors[0, 0]].any()


def test_a_context_model_needs_the_latent_for_its_parameters():
    model = _model(0, context="checkerboard")
    with pytest.raises(ValueError, match="y_hat"):
        model.prior_params(torch.zeros(1, 16, 1, 1))


def test_training_moves_the_context():
    model = _model(5, context="checkerboard").train()
    model.gain_noise = True
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(6))
    for _ in range(2):
        out = model(x)
        loss = (out.token_bits.sum() + out.hyper_bits.sum()) / x[:, 0].numel() + torch.mean((out.x_hat - x) ** 2)
        opt.zero_grad()
        loss.backward()
        assert model.context.ep[-1].weight.grad.abs().sum() > 0
        opt.step()
    assert model.context.ep[-1].weight.abs().sum() > 0


def _coded_model(seed: int = 7, ep_std: float = 0.05) -> LeechCodecModel:
    """A small context model with live tokens (gains of a few units, some 0) and a context
    that is not zero, so the second pass's parameters differ from the first's."""
    model = _model(seed, context="checkerboard")
    with torch.no_grad():
        for t, factor in enumerate((15.0, 5.0)):  # token 0 with gains around 0 and 1, token 1 larger
            model.g_a[-1].weight[24 * t : 24 * (t + 1)].div_(factor)
            model.g_a[-1].bias[24 * t : 24 * (t + 1)].div_(factor)
        m, k = model.config.latent_channels, model.config.tokens
        model.h_s[-1].bias[: 2 * m].normal_(0, 0.5)
        model.h_s[-1].bias[2 * m : 2 * m + k].fill_(2.0)
        model.h_s[-1].bias[2 * m + k :].fill_(1.5)
        torch.nn.init.normal_(model.context.ep[-1].weight, std=ep_std)
    model.entropy_bottleneck.update(force=True)  # the hyper-latent's CDF tables (api.compress builds them too)
    return model


def _reconstruction(model, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 16)
        y_hat = model.latent_codec.quantize(model, model.g_a(x), None, False).y_hat
        x_hat = model.g_s(y_hat)
    h, w = rgb.shape[:2]
    return (x_hat[0, :, :h, :w].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _inputs(model, seed: int, grid=(6, 10)):
    """An integer h_s output and anchor latents Ŷ = ĝ·v of random tokens (non-anchors 0)."""
    from leechcodec.leech_search import leech_codewords_torch

    rng = np.random.default_rng(seed)
    k, p = model.config.tokens, model.latent_codec.param_channels(model.config)
    raw = rng.integers(-(3 << 16), 3 << 16, size=(p, *grid))
    gains = rng.integers(0, 8, size=(k, *grid)) * anchor_mask(*grid)[0].numpy()
    codes = leech_codewords_torch(torch.from_numpy(rng.integers(0, 196560, size=k * grid[0] * grid[1]))).numpy()
    y_int = (codes.reshape(k, *grid, 24) * gains[..., None]).transpose(0, 3, 1, 2).reshape(24 * k, *grid)
    return raw, np.concatenate([y_int, gains]).astype(np.int64)


def test_the_integer_context_follows_the_float_context():
    """The exact correction (numpy spec) against the float layers on the same inputs; torch
    and tiles give the same integers as the spec."""
    from leechcodec import intprior

    model = _coded_model()
    raw, y_int = _inputs(model, 0)
    exact = intprior.context_correction(model, raw, y_int)
    with torch.no_grad():
        cm = model.context
        m = model.config.latent_channels
        y_hat = torch.from_numpy(y_int[:m]).float()[None] * model.latent_codec.gain_step / model.quantizer.scale
        gains = torch.from_numpy(y_int[m:]).float()[None] * model.latent_codec.gain_step
        r = torch.from_numpy(raw).double()[None] / 2**16
        c = cm.ctx(torch.cat([y_hat, gains], 1))
        float_delta = cm.ep(torch.cat([r.float().clamp(-128, 128), c], 1))[0].double().numpy()
    used = ~anchor_mask(*raw.shape[1:])[0, 0].numpy()  # the correction is used at the non-anchors
    assert np.abs(float_delta[:, used]).max() > 0.05
    np.testing.assert_allclose(exact[:, used] / 2**16, float_delta[:, used], atol=2e-3)
    assert np.array_equal(intprior.context_correction_torch(model, raw, y_int), exact)
    # only anchors are read: other values at the non-anchors change nothing
    noisy = y_int + np.where(used, 5, 0)[None]
    assert np.array_equal(intprior.context_correction(model, raw, noisy), exact)


def test_context_tiles_equal_the_whole(monkeypatch):
    from leechcodec import intprior

    model = _coded_model()
    raw, y_int = _inputs(model, 1, grid=(9, 13))
    whole = intprior.context_correction(model, raw, y_int)
    monkeypatch.setattr(intprior, "TILE_BYTES", 1)  # 1 × 1 tiles, each with its halo of 2
    assert np.array_equal(intprior.context_tiles(model, raw, y_int), whole)
    assert np.array_equal(intprior.context_tiles(model, raw, y_int, "cpu"), whole)


def test_round_trip_and_rate_of_a_context_model():
    """Files decode to the model's own reconstruction; the second pass uses other parameters
    than the first; the coder's bits follow the model's rate."""
    from leechcodec import api
    from leechcodec.bitstream import container

    model = _coded_model()
    for size in [(1, 1), (17, 33), (70, 129)]:
        rgb = random_image(*size, seed=size[0])
        assert np.array_equal(api.decompress(api.compress(rgb, model), model), _reconstruction(model, rgb)), size
    rgb = random_image(128, 192, seed=7)
    enc = model.compress(rgb)
    image, params = model.decompress(enc.chunks, enc.height, enc.width, enc.padded_height, enc.padded_width,
                                     container.PROFILE_DEFAULT)
    assert np.array_equal(image, _reconstruction(model, rgb))
    gains = params["gains"]
    assert len(np.unique(gains)) >= 3 and (gains == 0).any()
    with torch.no_grad():
        x = pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 64)
        out = model(x)
        base = _coded_model()
        base.context = None  # the same weights without the context
        out_base = base(x)
    model_bits = float(out.token_bits[0])
    # The coder's information under its float rows (its integer model caps a symbol at 24 bits,
    # which this random model's unlikely symbols reach) against the model's rate.
    from leechcodec import coding
    from leechcodec.bitstream import ans

    with torch.no_grad():
        y = model.g_a(pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 16))
        sym = coding._code_hyper(model, model.h_a(pad_to_multiple(y, 4)), ans.SymbolEncoder())
        tokens = ans.SymbolEncoder()
        model.latent_codec.encode(model, y, sym, container.PROFILE_DEFAULT, tuple(y.shape[2:]), tokens)
    assert tokens.ideal_bits == pytest.approx(enc.ideal_bits - enc.hyper_ideal_bits, rel=1e-12)
    assert tokens.float_ideal_bits == pytest.approx(model_bits, rel=0.02)
    assert float(out_base.token_bits[0]) != pytest.approx(model_bits, rel=1e-3)  # the context moved the rate


def test_a_zero_context_codes_what_the_hyperprior_codes():
    """With ep's output at zero the two passes use the hyperprior's parameters: the same
    information and the same image as the model without a context (bytes differ: order)."""
    from leechcodec import api

    model = _coded_model(ep_std=0.0)
    rgb = random_image(70, 129, seed=3)
    a = model.compress(rgb)
    base = LeechCodecModel(ModelConfig(**SMALL)).eval()
    base.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("context.")})
    b = base.compress(rgb)
    assert a.ideal_bits == pytest.approx(b.ideal_bits, rel=1e-12)
    assert np.array_equal(api.decompress(api.compress(rgb, model), model), api.decompress(api.compress(rgb, base), base))


_FRESH = """
import hashlib, sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[3]))
from leechcodec import api
from leechcodec.models import LeechCodecModel, ModelConfig
state = torch.load(sys.argv[2], weights_only=False)
model = LeechCodecModel(ModelConfig(**state["config"])).eval()
model.load_state_dict(state["weights"])
out = api.decompress(open(sys.argv[1], "rb").read(), model)
print(hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest())
"""


def test_fresh_processes_with_other_thread_counts_decode_a_context_model_the_same(tmp_path):
    import hashlib
    import os
    import subprocess
    import sys

    from leechcodec import api

    model = _coded_model()
    rgb = random_image(96, 80, seed=11)
    data = api.compress(rgb, model)
    (tmp_path / "x.lq").write_bytes(data)
    torch.save({"config": model.config.to_dict(), "weights": model.state_dict()}, tmp_path / "m.pt")
    here = hashlib.sha256(np.ascontiguousarray(api.decompress(data, model)).tobytes()).hexdigest() + "\n"
    outs = set()
    for threads in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        outs.add(subprocess.run([sys.executable, "-c", _FRESH, str(tmp_path / "x.lq"), str(tmp_path / "m.pt"),
                                 str(threads)], capture_output=True, text=True, check=True, env=env).stdout)
    assert outs == {here}


def test_context_module_shapes():
    ctx = CheckerboardContext(48, 2, 100, 96)
    out = ctx(torch.zeros(2, 100, 4, 6), torch.zeros(2, 48, 4, 6))
    assert out.shape == (2, 100, 4, 6)


def test_a_channels_last_context_model_checkpoints():
    """Training runs channels-last, where ep's 1 × 1 kernels count as contiguous with a last
    stride ≠ 1: the checkpoint hash (traincheckpoint.state_sha256) reads them in any layout."""
    from leechcodec.traincheckpoint import state_sha256

    model = _model(0, context="checkerboard")
    plain = state_sha256(model.state_dict())
    model.to(memory_format=torch.channels_last)
    assert model.context.ep[0].weight.stride(-1) != 1
    assert state_sha256(model.state_dict()) == plain
