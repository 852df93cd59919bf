"""The torch prior against brute force over all 196,560 codewords, the previous
implementation and the numba kernels."""

import math

import numpy as np
import pytest
import torch

from leechcodec import prior
from leechcodec.kernels import golay, leech, leech_prior
from leechcodec.models import A_MAX, B_MAX, B_MIN
from leechcodec.prior import bsq_log_prob, leech_log_partition, leech_log_prob

from ..tolerances import TOL_F32, TOL_F64

reference = prior._leech_log_partition_reference


@pytest.fixture(scope="module")
def codebook() -> torch.Tensor:
    return torch.from_numpy(leech.all_codewords().astype(np.float64))


def brute_force(codebook: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(a @ codebook.T - b @ (codebook**2).T, dim=1)


def adversarial(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Parameters at and inside the model's clamp range (|a| ≤ A_MAX, B_MIN ≤ b ≤ B_MAX):
    saturated signs, random magnitudes, one sharp octad of random parity, b at its limits."""
    gen = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, (n, 24), generator=gen).double() * 2 - 1
    mag = torch.rand(n, 24, generator=gen, dtype=torch.float64) * A_MAX
    kind = torch.arange(n)[:, None] % 5
    a = torch.where(kind == 0, sign * A_MAX, sign * mag)
    a = torch.where(kind == 2, a * (torch.rand(n, 24, generator=gen) < 0.5), a)
    octads = torch.from_numpy(golay.OCTAD_INDICATOR[torch.randint(0, 759, (n,), generator=gen).numpy()]).bool()
    a = torch.where((kind == 3) & ~octads, torch.zeros_like(a), a)
    a = torch.where(kind == 4, sign * mag[:, :1], a)
    b = torch.rand(n, 24, generator=gen, dtype=torch.float64) * (B_MAX - B_MIN) + B_MIN
    limit = torch.where(torch.rand(n, 24, generator=gen) < 0.5, B_MIN, B_MAX).double()
    b = torch.where(torch.arange(n)[:, None] % 4 == 1, limit, b)
    b = torch.where(torch.arange(n)[:, None] % 4 == 2, torch.full_like(b, B_MIN), b)
    return a, b


@pytest.mark.parametrize("scale", [0.01, 0.3, 2.0, 20.0])
def test_log_partition_equals_brute_force(codebook, scale):
    gen = torch.Generator().manual_seed(int(scale * 100))
    a = torch.randn(6, 24, dtype=torch.float64, generator=gen) * scale
    b = torch.randn(6, 24, dtype=torch.float64, generator=gen) * scale
    brute = brute_force(codebook, a, b)
    assert torch.allclose(leech_log_partition(a, b), brute, rtol=TOL_F64, atol=TOL_F64)
    lp32 = leech_log_partition(a.float(), b.float()).double()
    assert torch.allclose(lp32, brute, rtol=TOL_F32, atol=TOL_F32 * max(1.0, scale))


def test_log_partition_adversarial_equals_brute_force(codebook):
    a, b = adversarial(200, 1)
    brute = brute_force(codebook, a, b)
    ours = leech_log_partition(a, b)
    assert torch.allclose(ours, brute, rtol=TOL_F64, atol=0)
    ours32 = leech_log_partition(a.float(), b.float())
    assert ours32.dtype == torch.float32 and torch.isfinite(ours32).all()
    assert torch.allclose(ours32.double(), brute, rtol=TOL_F32, atol=0)


def test_new_equals_reference_implementation(codebook):
    """1e-9 relative to the previous implementation: on random parameters everywhere, on
    adversarial ones wherever the reference itself is that close to brute force (it loses
    odd-parity octads, see below); ours is always at brute force."""
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(300, 24, dtype=torch.float64, generator=gen) * 3
    b = torch.rand(300, 24, dtype=torch.float64, generator=gen) * (B_MAX - B_MIN) + B_MIN
    ours, ref = leech_log_partition(a, b), reference(a, b)
    assert torch.allclose(ours, ref, rtol=1e-9, atol=0)
    a, b = adversarial(300, 2)
    ours, ref, brute = leech_log_partition(a, b), reference(a, b), brute_force(codebook, a, b)
    assert torch.allclose(ours, brute, rtol=TOL_F64, atol=0)
    ref_exact = (ref - brute).abs() <= 1e-9 * brute.abs()
    assert ref_exact.float().mean() > 0.9
    assert torch.allclose(ours[ref_exact], ref[ref_exact], rtol=1e-9, atol=0)


def test_odd_parity_octad_is_exact_where_the_reference_cancels(codebook):
    """An octad with sharp coordinates and an odd number of negative signs dominates Z;
    the reference's ½(1 + Π tanh) rounds to 0 and is off by nats, ours is exact."""
    a = torch.zeros(4, 24, dtype=torch.float64)
    signs = torch.ones(8, dtype=torch.float64)
    signs[3] = -1
    for k, size in enumerate((16.0, 10.0, 5.0, 2.0)):
        a[k, golay.OCTAD_POSITIONS[5].tolist()] = size * signs
    b = torch.zeros_like(a)
    brute = brute_force(codebook, a, b)
    assert (reference(a, b) - brute)[:2].abs().min() > 1.0
    assert torch.allclose(leech_log_partition(a, b), brute, rtol=TOL_F64, atol=0)
    assert torch.allclose(leech_log_partition(a.float(), b.float()).double(), brute, rtol=TOL_F32, atol=0)


def test_far_out_of_range_tokens_equal_brute_force(codebook):
    """Parameters far outside the model's clamps: |a|, |b| ≈ 30, and |a| ≈ 90 at a deep hole
    of the code, where the best Golay word is 720 nats below the unconstrained sign optimum
    (the previous implementation needed a float32 → float64 rerun and a log-domain fallback)."""
    gen = torch.Generator().manual_seed(7)
    a = torch.randn(8, 24, dtype=torch.float64, generator=gen) * 30
    b = torch.randn(8, 24, dtype=torch.float64, generator=gen) * 30
    deep = torch.ones(24, dtype=torch.float64)
    deep[torch.tensor([0, 1, 2, 3])] = -1  # distance 4 from the all-ones word and (checked) from the code
    assert (golay.GOLAY_WORDS.astype(np.int64) ^ (deep < 0).numpy()).sum(1).min() == 4
    a = torch.cat([a, 90 * deep[None], 60 * deep[None]])
    b = torch.cat([b, torch.full((2, 24), -8.0, dtype=torch.float64)])
    brute = brute_force(codebook, a, b)
    assert torch.allclose(leech_log_partition(a, b), brute, rtol=TOL_F64, atol=0)
    assert torch.allclose(leech_log_partition(a.float(), b.float()).double(), brute, rtol=TOL_F32, atol=0)


def test_deep_holes_in_range_are_exact_in_float32(codebook):
    """Sharp tokens at deep holes of the code inside the model's clamps: the best Golay word
    is 8·4·16 nats below the sign optimum, and the marks span e^{±64}. float32 computes them
    without any rerun, to float32 rounding."""
    gen = torch.Generator().manual_seed(12)
    deep = torch.ones(24, dtype=torch.float64)
    deep[torch.tensor([0, 1, 2, 3])] = -1
    scale = torch.tensor([A_MAX, A_MAX, 12.0, 8.0], dtype=torch.float64)[:, None]
    a = torch.cat([scale * deep, A_MAX * deep * (torch.rand(4, 24, generator=gen, dtype=torch.float64) + 0.5).clamp(max=1)])
    b = torch.where(torch.rand(8, 24, generator=gen) < 0.5, B_MIN, B_MAX).double()
    b[0] = B_MIN
    brute = brute_force(codebook, a, b)
    assert torch.allclose(leech_log_partition(a, b), brute, rtol=TOL_F64, atol=0)
    a32, b32 = a.float().requires_grad_(), b.float().requires_grad_()
    assert torch.allclose(leech_log_partition(a32, b32).double(), brute, rtol=TOL_F32, atol=0)
    ours = torch.autograd.grad(leech_log_partition(a32, b32).sum(), (a32, b32))
    ref = torch.autograd.grad(brute_force(codebook, a.requires_grad_(), b.requires_grad_()).sum(), (a, b))
    for g, r in zip(ours, ref):
        assert torch.allclose(g.double(), r, rtol=TOL_F32, atol=TOL_F32)


def test_no_data_dependent_shapes_or_syncs():
    """On the meta device nothing can be read back: value and gradient run there, so no step
    branches on the data or shapes anything by it (float32 inputs off the CPU run in float64)."""
    a = torch.empty(700, 24, device="meta", requires_grad=True)
    b = torch.empty(700, 24, device="meta")
    value = leech_log_partition(a, b)
    assert value.shape == (700,) and value.dtype == torch.float32
    value.sum().backward()
    assert a.grad.shape == (700, 24)


@pytest.mark.gpu
def test_cuda_equals_cpu_without_syncs():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    a, b = (t.float().double() for t in adversarial(3000, 14))  # float32 values, in float64
    a.requires_grad_()
    expected = leech_log_partition(a, b)
    (expected_grad,) = torch.autograd.grad(expected.sum(), a)
    ac, bc = a.detach().float().cuda().requires_grad_(), b.float().cuda()
    leech_log_partition(ac[:8], bc[:8])
    torch.cuda.set_sync_debug_mode("error")
    try:
        value = leech_log_partition(ac, bc)
        (grad,) = torch.autograd.grad(value.sum(), ac)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.allclose(value.double().cpu(), expected.detach(), rtol=TOL_F32, atol=0)
    assert torch.allclose(grad.double().cpu(), expected_grad, rtol=TOL_F32, atol=TOL_F32)


@pytest.mark.slow
def test_compiled_equals_eager():
    gen = torch.Generator().manual_seed(13)
    a = torch.randn(300, 24, dtype=torch.float64, generator=gen) * 4
    b = torch.rand(300, 24, dtype=torch.float64, generator=gen) * 4
    eager = prior._log_partition(a, b, True)
    compiled = torch.compile(prior._log_partition, dynamic=False, fullgraph=True)(a, b, True)
    for x, y in zip(eager, compiled):  # the compiled kernels sum in their own order
        assert torch.allclose(x, y, rtol=TOL_F64, atol=TOL_F64)


def test_probabilities_sum_to_one(codebook):
    a = torch.randn(3, 24, dtype=torch.float64)
    b = torch.randn(3, 24, dtype=torch.float64)
    rows = torch.arange(0, len(codebook), 997)
    for n in range(3):
        lp = prior.factorized_logits(a[n : n + 1], b[n : n + 1], codebook) - leech_log_partition(a[n : n + 1], b[n : n + 1])
        assert math.isclose(torch.logsumexp(lp, 0).item(), 0.0, abs_tol=1e-9)
        ours = leech_log_prob(a[n : n + 1].expand(len(rows), 24), b[n : n + 1].expand(len(rows), 24), codebook[rows])
        assert torch.allclose(ours, lp[rows], rtol=0, atol=1e-9)


def test_gradcheck():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(4, 24, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(4, 24, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(leech_log_partition, (a, b))
    a_adv, b_adv = adversarial(5, 4)
    assert torch.autograd.gradcheck(leech_log_partition, (a_adv.requires_grad_(), b_adv.requires_grad_()))


def test_reference_golay_term_gradcheck():
    a = torch.randn(4, 24, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 24, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(prior._ReferenceGolayTerm.apply, (a, b))


def test_gradient_equals_reference_and_brute_force(codebook):
    gen = torch.Generator().manual_seed(6)
    a = (torch.randn(40, 24, dtype=torch.float64, generator=gen) * 2).requires_grad_()
    b = torch.randn(40, 24, dtype=torch.float64, generator=gen).requires_grad_()
    w = torch.randn(40, dtype=torch.float64, generator=gen)
    ours = torch.autograd.grad((leech_log_partition(a, b) * w).sum(), (a, b))
    ref = torch.autograd.grad((reference(a, b) * w).sum(), (a, b))
    for g, r in zip(ours, ref):
        assert torch.allclose(g, r, rtol=1e-9, atol=1e-9 * r.abs().max().item())
    a_adv, b_adv = (t.requires_grad_() for t in adversarial(60, 8))
    ours = torch.autograd.grad(leech_log_partition(a_adv, b_adv).sum(), (a_adv, b_adv))
    brute = torch.autograd.grad(brute_force(codebook, a_adv, b_adv).sum(), (a_adv, b_adv))
    for g, r in zip(ours, brute):
        assert torch.allclose(g, r, rtol=TOL_F64, atol=TOL_F64)
    a32, b32 = (t.detach().float().requires_grad_() for t in (a_adv, b_adv))
    ours32 = torch.autograd.grad(leech_log_partition(a32, b32).sum(), (a32, b32))
    for g, r in zip(ours32, brute):
        assert torch.allclose(g.double(), r, rtol=TOL_F32, atol=TOL_F32)


def test_value_and_gradient_paths_agree_and_keep_the_float_mode():
    """Grad and no-grad calls give the same values, chunking does not matter, empty and
    non-contiguous inputs work, and the caller's subnormal mode is restored."""
    gen = torch.Generator().manual_seed(9)
    a = torch.randn(1300, 24, generator=gen) * 2
    b = torch.rand(1300, 24, generator=gen)
    before = (torch.tensor([1e-30]) * 1e-10).item()
    with torch.no_grad():
        plain = leech_log_partition(a, b)
    graded = leech_log_partition(a.clone().requires_grad_(), b)
    assert torch.equal(plain, graded.detach())
    assert torch.allclose(leech_log_partition(a[:7], b[:7]), plain[:7], rtol=1e-6, atol=0)
    assert (torch.tensor([1e-30]) * 1e-10).item() == before
    at = a.T.contiguous().T  # same values, column-major
    assert torch.equal(leech_log_partition(at, b), plain)
    empty = torch.zeros(0, 24, requires_grad=True)
    out = leech_log_partition(empty, torch.zeros(0, 24))
    assert out.shape == (0,)
    out.sum().backward()
    assert empty.grad.shape == (0, 24)


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
