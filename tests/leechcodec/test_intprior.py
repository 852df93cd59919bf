"""The exact prior path: numpy and torch agree bit for bit, strips equal the whole, and the
integer h_s stays close to the float one the model was trained with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leechcodec import intprior
from leechcodec.zoo import load_model

from ..tolerances import TOL_F32

FAMILIES = ["tiny-leech", "tiny-bsq", "tiny-scalar", "tiny-gainshape"]


def _symbols(model, h: int, w: int, seed: int, extreme: bool = False) -> np.ndarray:
    """Random hyper symbols within each channel's table (``extreme``: only the table ends)."""
    rng = np.random.default_rng(seed)
    n_sym = model.entropy_bottleneck._cdf_length.numpy().astype(np.int64) - 2
    c = len(n_sym)
    if extreme:
        return np.where(rng.random((c, h, w)) < 0.5, 0, (n_sym - 1)[:, None, None])
    return np.minimum(rng.geometric(0.3, (c, h, w)) + (n_sym // 2)[:, None, None] - 2, (n_sym - 1)[:, None, None])


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("extreme", [False, True])
def test_torch_equals_numpy(tiny_zoo, name, extreme):
    _, model = load_model(name, 1)
    z = intprior.z_integers(model, _symbols(model, 5, 7, seed=3, extreme=extreme))
    ref = intprior.hyper_synthesis(model, z)
    assert ref.shape == (model.latent_codec.param_channels(model.config), 20, 28) and ref.dtype == np.int64
    assert np.array_equal(intprior.hyper_synthesis_torch(model, z), ref)


def test_thread_counts_give_the_same_integers(tiny_zoo):
    _, model = load_model("tiny-leech", 1)
    z = intprior.z_integers(model, _symbols(model, 6, 9, seed=1))
    before = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append(intprior.hyper_synthesis_torch(model, z))
    finally:
        torch.set_num_threads(before)
    assert all(np.array_equal(o, outs[0]) for o in outs)


@pytest.mark.parametrize("name", FAMILIES)
def test_tiles_equal_the_whole(tiny_zoo, name, monkeypatch):
    _, model = load_model(name, 1)
    z = intprior.z_integers(model, _symbols(model, 11, 9, seed=5))
    whole = intprior.hyper_synthesis(model, z)
    for budget in (1, 1 << 20):  # one ẑ position per tile, then a few
        monkeypatch.setattr(intprior, "TILE_BYTES", budget)
        covered = np.zeros(whole.shape[1:], dtype=int)
        parts = list(intprior.hyper_synthesis_tiles(model, z))
        assert len(parts) > 1
        for r0, r1, c0, c1, out in parts:
            assert np.array_equal(out, whole[:, r0:r1, c0:c1])
            covered[r0:r1, c0:c1] += 1
        assert (covered == 1).all()


def test_halo_covers_the_receptive_field(tiny_zoo):
    """h_s's transposed 5×5 convolutions at stride 2 and its 3×3 convolution reach
    1 + 1/2 + 1/4 ẑ rows: a halo of 2, plus 1."""
    _, model = load_model("tiny-leech", 1)
    assert intprior._halo(intprior.integer_hyper_synthesis(model)) == 3


@pytest.mark.parametrize("name", FAMILIES)
def test_integer_h_s_is_close_to_the_float_one(tiny_zoo, name):
    _, model = load_model(name, 1)
    sym = _symbols(model, 4, 6, seed=2)
    z = intprior.z_integers(model, sym)
    exact = np.ldexp(intprior.hyper_synthesis(model, z).astype(np.float64), -intprior.OUT_BITS[model.config.quantizer])
    with torch.no_grad():
        ref = model.h_s(torch.from_numpy(np.ldexp(z.astype(np.float64), -intprior.Z_BITS)).float()[None])[0]
    # Weight and activation rounding only: far below the 1/256 coding grid on average.
    err = np.abs(exact - ref.double().numpy())
    assert err.mean() < 1e-3 and err.max() < 0.02
    assert np.abs(ref.numpy()).max() > 100 * TOL_F32  # a real comparison, not of zeros


def test_crafted_extreme_inputs_stay_exact_and_bounded(tiny_zoo):
    """Inputs far outside the tables are clamped: results are the table-edge results."""
    _, model = load_model("tiny-leech", 1)
    net = intprior.integer_hyper_synthesis(model)
    bound = net.layers[0].in_bound
    huge = np.full((model.config.hyper_channels, 2, 3), 1 << 50, dtype=np.int64)
    assert np.array_equal(intprior.hyper_synthesis(model, huge),
                          intprior.hyper_synthesis(model, np.full_like(huge, bound)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", FAMILIES)
def test_cuda_equals_numpy(tiny_zoo, name):
    _, model = load_model(name, 1)
    z = intprior.z_integers(model, _symbols(model, 8, 8, seed=4))
    assert np.array_equal(intprior.hyper_synthesis_torch(model, z, "cuda"), intprior.hyper_synthesis(model, z))
