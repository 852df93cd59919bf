"""The sync-free torch Λ24 search and codeword lookup (``leechcodec.leech_search``) against the
numba kernel (the same index for every token, ties included) and brute force."""

from pathlib import Path

import numpy as np
import pytest
import torch

from leechcodec import quantizers
from leechcodec.kernels.search_reference import adversarial_tokens
from leechcodec.kernels import leech
from leechcodec.leech_search import leech_codewords_torch, leech_search_torch

SAMPLE = Path(__file__).resolve().parents[2] / "leechcodec" / "data" / "sample.png"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: many small ops, which two threads on a busy 2-core machine slow down
    (numba's OpenMP layer sets the process's thread count too, so it gets one as well)."""
    import numba

    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before[1])
    torch.set_num_threads(before[0])


def search(x: np.ndarray, **kw) -> np.ndarray:
    return leech_search_torch(torch.from_numpy(x), **kw).numpy()


def unit_gaussian(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 24)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_equals_kernel(dtype):
    x = np.concatenate([unit_gaussian(4000, 1), 3 * unit_gaussian(2000, 2)]).astype(dtype)
    np.testing.assert_array_equal(search(x), leech.search_numba(x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adversarial_equals_kernel(dtype):
    """Scaled codewords, midpoints and sums of codewords, small integers, dyadic values,
    repeated magnitudes, zeros and negative zeros: exact ties everywhere."""
    x = adversarial_tokens(20000, 3 if dtype == np.float64 else 4).astype(dtype)
    np.testing.assert_array_equal(search(x), leech.search_numba(x))


@pytest.mark.parametrize("scale", [2.0**-1060, 1e-310, 1e-30, 1e30, 1e307, 2.0**1023, 1.7e308 / 4])
def test_extreme_norms_equal_kernel(scale):
    with np.errstate(over="ignore"):
        x = adversarial_tokens(1000, 5) * scale
    x = x[np.isfinite(x).all(axis=1)]
    np.testing.assert_array_equal(search(x), leech.search_numba(x))


def test_equals_bruteforce():
    x = np.concatenate([adversarial_tokens(300, 5), unit_gaussian(100, 6)])
    np.testing.assert_array_equal(search(x), leech.search_bruteforce(x))


def test_zero_rows_empty_input_and_chunks():
    x = np.zeros((3, 24))
    x[1] = -0.0
    np.testing.assert_array_equal(search(x), [0, 0, 0])
    out = leech_search_torch(torch.zeros(0, 24, dtype=torch.float32))
    assert out.shape == (0,) and out.dtype == torch.int64
    y = adversarial_tokens(100, 7)
    np.testing.assert_array_equal(search(y, chunk=7), leech.search_numba(y))  # last chunk of 2
    with pytest.raises(ValueError):
        leech_search_torch(torch.zeros(3, 25))


def test_real_latents_equal_kernel():
    """Normalized latents of the shipped default model on the sample image, in float32 as
    the quantizer sees them."""
    from leechcodec.imageio import load_image
    from leechcodec.zoo import load_model

    model = load_model()[1]
    im = torch.from_numpy(load_image(SAMPLE)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = model.g_a(im)
    tokens = torch.nn.functional.normalize(model.tokens_of(y).reshape(-1, 24), dim=1)
    assert tokens.shape[0] >= 1000
    np.testing.assert_array_equal(leech_search_torch(tokens).numpy(), leech.search_numba(tokens.numpy()))


def test_no_data_dependent_shapes():
    """On the meta device nothing can be read back: both functions run there, so neither
    syncs with the device nor shapes anything by the data."""
    out = leech_search_torch(torch.empty(100, 24, device="meta"), chunk=64)
    assert out.shape == (100,) and out.device.type == "meta"
    cw = leech_codewords_torch(torch.empty(100, dtype=torch.int64, device="meta"))
    assert cw.shape == (100, 24)


def test_codewords_equal_kernel_on_a_shuffled_batch():
    idx = np.random.default_rng(8).permutation(leech.NUM_CODEWORDS)[:5000]
    np.testing.assert_array_equal(leech_codewords_torch(torch.from_numpy(idx)).numpy(),
                                  leech.index_to_codeword(idx).astype(np.float32))


def test_previous_search_kept_as_reference():
    x = unit_gaussian(300, 9)
    np.testing.assert_array_equal(quantizers._leech_search_torch_reference(torch.from_numpy(x)).numpy(),
                                  leech.search_numba(x))


@pytest.mark.slow
def test_compiled_equals_eager():
    x = torch.from_numpy(adversarial_tokens(3000, 10))
    compiled = torch.compile(leech_search_torch, dynamic=False)
    np.testing.assert_array_equal(compiled(x, chunk=1000).numpy(), leech.search_numba(x.numpy()))


@pytest.mark.gpu
def test_cuda_equals_kernel_without_syncs():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = np.concatenate([adversarial_tokens(20000, 11), unit_gaussian(20000, 12)])
    xc = torch.from_numpy(x).cuda()
    leech_search_torch(xc[:10])
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = leech_search_torch(xc)
        cw = leech_codewords_torch(got)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    np.testing.assert_array_equal(got.cpu().numpy(), leech.search_numba(x))
    np.testing.assert_array_equal(cw.cpu().numpy(), leech.index_to_codeword(got.cpu().numpy()).astype(np.float32))
