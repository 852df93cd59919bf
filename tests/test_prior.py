"""The torch prior against brute force over all 196,560 codewords and the numba kernels."""

import math

import numpy as np
import pytest
import torch

from leechcodec.kernels import leech, leech_prior
from leechcodec.prior import _GolayTerm, bsq_log_prob, leech_log_partition, leech_log_prob

from .conftest import TOL_F32, TOL_F64


@pytest.fixture(scope="module")
def codebook() -> torch.Tensor:
    return torch.from_numpy(leech.all_codewords().astype(np.float64))


@pytest.mark.parametrize("scale", [0.01, 0.3, 2.0, 20.0])
def test_log_partition_equals_brute_force(codebook, scale):
    gen = torch.Generator().manual_seed(int(scale * 100))
    a = torch.randn(6, 24, dtype=torch.float64, generator=gen) * scale
    b = torch.randn(6, 24, dtype=torch.float64, generator=gen) * scale
    brute = torch.logsumexp(a @ codebook.T - b @ (codebook**2).T, dim=1)
    assert torch.allclose(leech_log_partition(a, b), brute, rtol=TOL_F64, atol=TOL_F64)
    lp32 = leech_log_partition(a.float(), b.float()).double()
    assert torch.allclose(lp32, brute, rtol=TOL_F32, atol=TOL_F32 * max(1.0, scale))


def test_probabilities_sum_to_one(codebook):
    a = torch.randn(3, 24, dtype=torch.float64)
    b = torch.randn(3, 24, dtype=torch.float64)
    for n in range(3):
        lp = leech_log_prob(a[n : n + 1].expand(len(codebook), 24), b[n : n + 1].expand(len(codebook), 24), codebook)
        assert math.isclose(torch.logsumexp(lp, 0).item(), 0.0, abs_tol=1e-9)


def test_golay_term_gradient():
    a = torch.randn(4, 24, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 24, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_GolayTerm.apply, (a, b))


def test_torch_rate_equals_coder_kernel():
    """The rate the training loss uses is the rate the coder's kernel assigns."""
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1.5, (50, 24))
    b = rng.normal(0, 0.5, (50, 24))
    idx = rng.integers(0, leech.NUM_CODEWORDS, 50)
    v = np.arange(-4, 5)
    f = a[:, :, None] * v - b[:, :, None] * v * v
    kernel = leech_prior.log_prob(np.ascontiguousarray(f), idx)
    codes = torch.from_numpy(leech.index_to_codeword(idx).astype(np.float64))
    ours = leech_log_prob(torch.from_numpy(a), torch.from_numpy(b), codes).numpy()
    np.testing.assert_allclose(ours, kernel, rtol=TOL_F64, atol=TOL_F64)


def test_bsq_log_prob_normalized():
    dim = 6
    a = torch.randn(1, dim, dtype=torch.float64)
    bits = (torch.arange(2**dim)[:, None] >> torch.arange(dim)) & 1
    codes = (1 - 2 * bits).double()
    total = torch.logsumexp(bsq_log_prob(a.expand(2**dim, dim), codes), 0)
    assert abs(total.item()) < 1e-12
