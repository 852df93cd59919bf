"""The checkerboard context model (leechcodec.models.CheckerboardContext): what it reads, how
it starts, that it trains, and that the coder refuses it until its exact path exists."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leechcodec.models import CheckerboardContext, LeechCodecModel, ModelConfig, anchor_mask

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


def test_the_coder_refuses_a_context_model():
    from leechcodec import coding

    model = _model(0, context="checkerboard")
    rgb = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(NotImplementedError, match="no coder yet"):
        coding.encode(model, rgb)
    with pytest.raises(NotImplementedError, match="no coder yet"):
        coding.decode(model, [b"", b""], 64, 64, 64, 64, 3)


def test_context_module_shapes():
    ctx = CheckerboardContext(48, 100, 96)
    out = ctx(torch.zeros(2, 100, 4, 6), torch.zeros(2, 48, 4, 6))
    assert out.shape == (2, 100, 4, 6)
