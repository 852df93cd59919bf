"""Public numpy-level Λ24 API: leechcodec.lattice."""

import numpy as np
import pytest

from leechcodec import lattice
from leechcodec.kernels import leech


def test_constants_and_reexports():
    assert lattice.NUM_CODEWORDS == 196560
    assert lattice.SHAPE_OFFSETS == (0, 1104, 98256, 196560)
    assert lattice.split_index is leech.split_index
    assert lattice.join_index is leech.join_index


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_roundtrip(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 24)).astype(dtype)
    idx = lattice.leech_quantize(x)
    assert idx.shape == (2000,) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() < lattice.NUM_CODEWORDS
    np.testing.assert_array_equal(idx, leech.search_numpy(x))
    cw = lattice.leech_codewords(idx)
    assert cw.shape == (2000, 24) and cw.dtype == np.int8
    assert ((cw.astype(np.int64) ** 2).sum(axis=1) == 32).all()
    # quantizing a unit codeword returns its index; the codeword is at least as close
    np.testing.assert_array_equal(lattice.leech_quantize((cw / np.sqrt(32)).astype(dtype)), idx)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    ip = (u.astype(np.float64) * cw).sum(axis=1)
    other = lattice.leech_codewords(rng.integers(0, lattice.NUM_CODEWORDS, 2000))
    assert (ip >= (u.astype(np.float64) * other).sum(axis=1) - 1e-6).all()


def test_hierarchical_split():
    idx = np.array([0, 1103, 1104, 98255, 98256, 196559])
    shape, major, minor = lattice.split_index(idx)
    np.testing.assert_array_equal(shape, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(major, [0, 275, 0, 758, 0, 4095])
    np.testing.assert_array_equal(minor, [0, 3, 0, 127, 0, 23])
    np.testing.assert_array_equal(lattice.join_index(shape, major, minor), idx)


def test_zero_vector_gives_index_0():
    np.testing.assert_array_equal(lattice.leech_quantize(np.zeros((2, 24), np.float32)), [0, 0])


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(24, np.float32),
        np.zeros((3, 12), np.float32),
        np.zeros((3, 24), np.int32),
        np.zeros((3, 24), np.complex64),
        np.array([[np.nan] * 24]),
        np.array([[0.0] * 23 + [np.inf]], np.float32),
    ],
)
def test_quantize_rejects(bad):
    with pytest.raises(ValueError):
        lattice.leech_quantize(bad)


@pytest.mark.parametrize(
    "bad", [np.array([-1]), np.array([196560]), np.array([0.0]), np.zeros((2, 1), np.int64)]
)
def test_codewords_rejects(bad):
    with pytest.raises(ValueError):
        lattice.leech_codewords(bad)
