"""The extended Golay code G24 and its octads (tables from leechcodec.kernels.golay)."""

from itertools import combinations

import numpy as np

from leechcodec.kernels import golay

POW2 = np.int64(1) << np.arange(24, dtype=np.int64)


def test_tables_consistent():
    assert golay.GOLAY_WORDS.shape == (4096, 24)
    assert golay.GOLAY_WORDS.dtype == np.uint8
    np.testing.assert_array_equal(golay.GOLAY_WORDS.astype(np.int64) @ POW2, golay.GOLAY_MASKS)
    np.testing.assert_array_equal(golay.golay_encode(np.arange(4096)), golay.GOLAY_WORDS)
    assert len(np.unique(golay.GOLAY_MASKS)) == 4096


def test_weight_distribution():
    weights = golay.GOLAY_WORDS.sum(axis=1)
    values, counts = np.unique(weights, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist())) == {0: 1, 8: 759, 12: 2576, 16: 759, 24: 1}


def test_linear_and_min_distance_8():
    masks = golay.GOLAY_MASKS
    # encoding is linear in the message bits ...
    m = np.arange(4096)
    xor_of_rows = np.zeros(4096, dtype=np.int64)
    for k in range(12):
        xor_of_rows ^= np.where((m >> k) & 1, masks[1 << k], 0)
    np.testing.assert_array_equal(xor_of_rows, masks)
    # ... so the set of words is closed under XOR, and for a linear code the minimum
    # distance is the minimum nonzero weight.
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4096, (2, 5000))
    assert np.isin(masks[a] ^ masks[b], masks).all()
    dist = (golay.GOLAY_WORDS[a] != golay.GOLAY_WORDS[b]).sum(axis=1)
    assert dist[a != b].min() >= 8
    assert golay.GOLAY_WORDS[1:].sum(axis=1).min() == 8


def test_self_dual():
    g = golay.GENERATOR.astype(np.int64)
    assert g.shape == (12, 24)
    assert not ((g @ g.T) % 2).any()


def test_octads():
    assert golay.OCTAD_MASKS.shape == (759,)
    assert (np.diff(golay.OCTAD_MASKS) > 0).all()  # sorted by mask, distinct
    assert np.isin(golay.OCTAD_MASKS, golay.GOLAY_MASKS).all()
    pos = golay.OCTAD_POSITIONS
    assert pos.shape == (759, 8)
    assert (np.diff(pos, axis=1) > 0).all()  # ascending positions
    np.testing.assert_array_equal((np.int64(1) << pos).sum(axis=1), golay.OCTAD_MASKS)
    np.testing.assert_array_equal(golay.OCTAD_INDICATOR.astype(np.int64) @ POW2, golay.OCTAD_MASKS)


def test_steiner_system_s_5_8_24():
    """Every 5-subset of the 24 positions lies in exactly one octad: the 759 * 56 5-subsets
    of the octads are all distinct and there are C(24, 5) = 42,504 of them."""
    sub5 = np.array(list(combinations(range(8), 5)))  # (56, 5)
    masks = (np.int64(1) << golay.OCTAD_POSITIONS[:, sub5]).sum(axis=2).ravel()
    assert masks.size == 42504
    assert np.unique(masks).size == 42504


def test_tables_read_only():
    for table in (golay.GOLAY_WORDS, golay.GOLAY_MASKS, golay.OCTAD_POSITIONS):
        assert not table.flags.writeable
