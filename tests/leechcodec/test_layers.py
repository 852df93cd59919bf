"""leechcodec.layers against CompressAI's GDN, EntropyBottleneck and GaussianConditional (the oracle)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from leechcodec import layers

compressai_layers = pytest.importorskip("compressai.layers")
compressai_em = pytest.importorskip("compressai.entropy_models")


def _pair(ours_cls, theirs_cls, *args, seed=0, **kwargs):
    torch.manual_seed(seed)
    ours = ours_cls(*args, **kwargs)
    torch.manual_seed(seed)
    theirs = theirs_cls(*args, **kwargs)
    return ours, theirs


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and sa[k].shape == sb[k].shape, k
        assert torch.equal(sa[k], sb[k]), k


def _perturb(module: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_compressai(inverse):
    ours, theirs = _pair(layers.GDN, compressai_layers.GDN, 6, inverse=inverse)
    _same_state(ours, theirs)
    _perturb(theirs)
    with torch.no_grad():
        theirs.beta.clamp_(min=0.0)  # some β at the bound, some above: both gradient branches
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    ours.double(), theirs.double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), theirs(xb)
    assert torch.equal(ya, yb)
    w = torch.randn_like(ya)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert torch.equal(xa.grad, xb.grad)
    for (na, pa), (nb, pb) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert na == nb and torch.equal(pa.grad, pb.grad), na


def test_entropy_bottleneck_matches_compressai():
    ours, theirs = _pair(layers.EntropyBottleneck, compressai_em.EntropyBottleneck, 5)
    _same_state(ours, theirs)  # same initialization from the same seed
    _perturb(theirs)
    ours.load_state_dict(theirs.state_dict())
    z = 3 * torch.randn(2, 5, 4, 3)
    for training in (True, False):
        za, zb = z.clone().requires_grad_(), z.clone().requires_grad_()
        torch.manual_seed(7)
        oa, la = ours(za, training=training)
        torch.manual_seed(7)
        ob, lb = theirs(zb, training=training)
        assert torch.equal(oa, ob) and torch.equal(la, lb)
        (-torch.log2(la)).sum().backward()
        (-torch.log2(lb)).sum().backward()
        assert torch.equal(za.grad, zb.grad)
    assert torch.equal(ours.loss(), theirs.loss())
    # likelihood() of rounded values is forward's in evaluation mode
    z_hat, lik = ours(z, training=False)
    assert torch.equal(ours.likelihood(z_hat), lik)
    # integer CDF tables built by update() are CompressAI's
    assert ours.update(force=True) and theirs.update(force=True)
    for name in ("_offset", "_quantized_cdf", "_cdf_length"):
        assert torch.equal(getattr(ours, name), getattr(theirs, name)), name


def test_gaussian_conditional_matches_compressai():
    ours = layers.GaussianConditional(None)
    theirs = compressai_em.GaussianConditional(None)
    _same_state(ours, theirs)
    y = 4 * torch.randn(2, 3, 5, 5)
    scales = torch.rand(2, 3, 5, 5) * 3 + 0.01  # some below the 0.11 floor
    means = torch.randn(2, 3, 5, 5)
    for training in (True, False):
        ya, yb = y.clone().requires_grad_(), y.clone().requires_grad_()
        sa, sb = scales.clone().requires_grad_(), scales.clone().requires_grad_()
        torch.manual_seed(3)
        oa, la = ours(ya, sa, means, training=training)
        torch.manual_seed(3)
        ob, lb = theirs(yb, sb, means, training=training)
        assert torch.equal(oa, ob) and torch.equal(la, lb)
        (-torch.log2(la)).sum().backward()
        (-torch.log2(lb)).sum().backward()
        assert torch.equal(ya.grad, yb.grad) and torch.equal(sa.grad, sb.grad)


def test_pmf_to_quantized_cdf_matches_compressai():
    from compressai._CXX import pmf_to_quantized_cdf as theirs

    g = torch.Generator().manual_seed(0)
    cases = []
    for n in (2, 3, 17, 200):
        cases.append(torch.rand(n, generator=g))
        spiky = torch.rand(n, generator=g) ** 12  # many symbols rounding to zero: the stealing path
        spiky[n // 2] = 1.0
        cases.append(spiky)
        cases.append(torch.full((n,), 1e-9).index_fill_(0, torch.tensor([0]), 1.0))
    for p in cases:
        p = p / p.sum()
        for precision in (16, 12):
            ours = layers.pmf_to_quantized_cdf(p.numpy(), precision)
            assert ours.tolist() == list(theirs(p.tolist(), precision))
            assert ours[0] == 0 and ours[-1] == 1 << precision and (np.diff(ours) > 0).all()


def test_codec_path_does_not_import_compressai(tmp_path):
    """Encoding and decoding load torch alone (CompressAI costs seconds of start-up)."""
    code = ("import sys, numpy as np\n"
            "from leechcodec.codec import compress, decompress\n"
            "from leechcodec.zoo import DEFAULT_MODEL, load_model\n"
            "entry, model = load_model(DEFAULT_MODEL)\n"
            "rgb = (np.arange(32 * 48 * 3) % 251).astype(np.uint8).reshape(32, 48, 3)\n"
            "out = decompress(compress(model, entry, rgb).data)\n"
            "assert out.shape == rgb.shape\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('compressai', 'torch_geometric') or m == 'scipy.stats')\n"
            "print(bad)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
