import numpy as np
import pytest
import torch

from leechcodec.kernels import leech
from leechcodec.quantizers import (
    BinarySphericalQuantizer,
    ScalarQuantizer,
    SphericalLeechQuantizer,
    leech_codewords_torch,
    leech_search_torch,
)


def test_torch_codewords_equal_kernel_bijection_for_every_index():
    idx = np.arange(leech.NUM_CODEWORDS)
    ours = leech_codewords_torch(torch.from_numpy(idx)).numpy()
    assert np.array_equal(ours, leech.index_to_codeword(idx).astype(np.float32))


def test_torch_structured_search_equals_kernel():
    x = np.random.default_rng(1).standard_normal((3000, 24))
    ours = leech_search_torch(torch.from_numpy(x)).numpy()
    assert np.array_equal(ours, leech.search_numba(x))


def test_module_equals_kernel_and_dequantize_inverts():
    torch.manual_seed(0)
    y = torch.randn(2, 24 * 3, 5, 7)
    q = SphericalLeechQuantizer()
    out = q(y)
    assert out.indices.shape == (2, 3, 5, 7)
    tokens = y.reshape(2, 3, 24, 5, 7).permute(0, 1, 3, 4, 2).reshape(-1, 24).double().numpy()
    assert np.array_equal(out.indices.reshape(-1).numpy(), leech.search_numba(tokens))
    assert torch.equal(q.dequantize(out.indices), out.y_hat.detach())
    norms = out.y_hat.detach().reshape(2, 3, 24, 5, 7).norm(dim=2)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-6)
    codes = out.codes.detach()
    assert torch.equal(codes, codes.round()) and set(codes.unique().tolist()) <= set(range(-4, 5))


def test_leech_ste_passes_gradient():
    y = torch.randn(1, 48, 3, 3, requires_grad=True)
    out = SphericalLeechQuantizer()(y)
    (out.y_hat * torch.randn_like(out.y_hat)).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_quantizer_rejects_bad_channel_count():
    with pytest.raises(ValueError):
        SphericalLeechQuantizer()(torch.randn(1, 25, 2, 2))


def test_bsq_round_trip_and_index_bits():
    torch.manual_seed(0)
    q = BinarySphericalQuantizer(18)
    y = torch.randn(2, 36, 4, 3, requires_grad=True)
    out = q(y)
    assert torch.equal(q.dequantize(out.indices), out.y_hat.detach())
    tokens = y.detach().reshape(2, 2, 18, 4, 3).permute(0, 1, 3, 4, 2).reshape(-1, 18)
    expected = ((tokens < 0).long() << torch.arange(18)).sum(1)
    assert torch.equal(out.indices.reshape(-1), expected)
    assert torch.equal(out.codes.detach().abs(), torch.ones_like(out.codes))
    out.y_hat.sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_scalar_quantizer_rounds_with_straight_through_gradient():
    y = torch.tensor([[-2.5, -1.49, -0.5, 0.3, 0.5, 1.5, 7.7]]).reshape(1, 7, 1, 1).requires_grad_()
    out = ScalarQuantizer()(y)
    assert out.indices.tolist() == [[[[-2]], [[-1]], [[0]], [[0]], [[0]], [[2]], [[8]]]]  # ties to even
    assert torch.equal(out.y_hat.detach(), out.indices.float()) and torch.equal(out.codes, out.y_hat)
    assert torch.equal(ScalarQuantizer().dequantize(out.indices), out.y_hat.detach())
    out.y_hat.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))
