"""Leech lattice minimal vectors: codebook facts, the index bijection, exact search.

Oracles: the index formulas re-implemented from the module docstring (``spec_codeword``);
for search, ``search_bruteforce`` (float64 matmul over all 196,560 codewords) and, for
integer-valued inputs, ``exact_oracle`` (float32 matmul that is exact there, see below).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from leechcodec.kernels import golay, leech

N = leech.NUM_CODEWORDS
SEARCHES = {
    "numba": leech.search_numba,
    "numpy": leech.search_numpy,
    "bruteforce": leech.search_bruteforce,
}


@pytest.fixture(scope="module")
def cb() -> np.ndarray:
    return leech.all_codewords()


@pytest.fixture(scope="module")
def cb32_t(cb) -> np.ndarray:
    return np.ascontiguousarray(cb.T, dtype=np.float32)


def exact_oracle(x: np.ndarray, cb32_t: np.ndarray) -> np.ndarray:
    """Smallest index among the exact maximizers of <v, x>, for integer-valued ``x`` with
    |x_i| <= 64: every product and partial sum is an integer below 2**24 in magnitude, so
    float32 matmul is exact in any summation order."""
    assert np.array_equal(x, np.round(x)) and np.abs(x).max() <= 64
    out = np.empty(len(x), dtype=np.int64)
    for s in range(0, len(x), 256):
        scores = x[s : s + 256].astype(np.float32) @ cb32_t
        best = scores.max(axis=1, keepdims=True)
        out[s : s + 256] = np.argmax(scores == best, axis=1)  # first maximizer
    return out


def spec_codeword(idx: int) -> np.ndarray:
    """The bijection exactly as written in the module docstring (plain Python)."""
    v = np.zeros(24, dtype=np.int64)
    if idx < 1104:
        r, b = divmod(idx, 4)
        pairs = [(i, j) for i in range(24) for j in range(i + 1, 24)]
        i, j = pairs[r]
        v[i] = -4 if b & 1 else 4
        v[j] = -4 if b & 2 else 4
    elif idx < 98256:
        o, b = divmod(idx - 1104, 128)
        p = golay.OCTAD_POSITIONS[o]
        for k in range(7):
            v[p[k]] = -2 if (b >> k) & 1 else 2
        v[p[7]] = -2 if bin(b).count("1") % 2 else 2
    else:
        m, j = divmod(idx - 98256, 24)
        c = golay.GOLAY_WORDS[m]
        for i in range(24):
            v[i] = (-1) ** int(c[i]) * (-3 if i == j else 1)
    return v


# ------------------------------------------------------------------------ codebook facts


def test_constants():
    assert N == 196560
    assert leech.SHAPE_OFFSETS == (0, 1104, 98256, 196560)
    sizes = [a * b for a, b in leech.SHAPE_SIZES]
    assert sizes == [1104, 97152, 98304]
    assert list(np.diff(leech.SHAPE_OFFSETS)) == sizes


def test_codebook_norms_shapes_distinct(cb):
    assert cb.shape == (N, 24) and cb.dtype == np.int8
    assert not cb.flags.writeable
    assert ((cb.astype(np.int64) ** 2).sum(axis=1) == 32).all()
    assert np.unique(cb, axis=0).shape[0] == N
    nz = (cb != 0).sum(axis=1)
    a = np.abs(cb)
    off = leech.SHAPE_OFFSETS
    assert ((nz[: off[1]] == 2) & (a[: off[1]].max(axis=1) == 4)).all()
    assert ((nz[off[1] : off[2]] == 8) & (a[off[1] : off[2]].max(axis=1) == 2)).all()
    assert ((nz[off[2] :] == 24) & ((a[off[2] :] == 3).sum(axis=1) == 1)).all()
    assert leech.all_codewords() is cb  # cached


def test_codebook_closed_under_negation(cb):
    neg = leech.codeword_to_index(-cb.astype(np.int64))
    np.testing.assert_array_equal(np.sort(neg), np.arange(N))


@pytest.mark.parametrize("idx", [0, 777, 1104, 50000, 98255, 98256, 150001, 196559])
def test_inner_product_distribution(cb, idx):
    ip = cb.astype(np.int32) @ cb[idx].astype(np.int32)
    values, counts = np.unique(ip, return_counts=True)
    expected = {32: 1, 16: 4600, 8: 47104, 0: 93150, -8: 47104, -16: 4600, -32: 1}
    assert dict(zip(values.tolist(), counts.tolist())) == expected


# ---------------------------------------------------------------------------- bijection


def test_bijection_matches_spec():
    rng = np.random.default_rng(0)
    idx = np.concatenate(
        [np.arange(8), [1100, 1103, 1104, 1105, 1231, 1232, 98254, 98255, 98256, 98257, N - 1],
         rng.integers(0, N, 2000)]
    )
    expected = np.array([spec_codeword(int(i)) for i in idx])
    np.testing.assert_array_equal(leech.index_to_codeword(idx), expected)
    np.testing.assert_array_equal(leech.index_to_codeword_numpy(idx), expected)


def test_bijection_roundtrip_all(cb):
    idx = np.arange(N)
    np.testing.assert_array_equal(leech.index_to_codeword_numpy(idx), cb)
    np.testing.assert_array_equal(leech.codeword_to_index(cb), idx)
    np.testing.assert_array_equal(leech.codeword_to_index_numpy(cb), idx)
    # other integer dtypes are fine
    np.testing.assert_array_equal(leech.codeword_to_index(cb[::97].astype(np.int16)), idx[::97])
    np.testing.assert_array_equal(leech.index_to_codeword(idx[::97].astype(np.uint32)), cb[::97])


def test_split_join_roundtrip():
    idx = np.arange(N)
    shape, major, minor = leech.split_index(idx)
    np.testing.assert_array_equal(np.bincount(shape), [1104, 97152, 98304])
    for s, (n_major, n_minor) in enumerate(leech.SHAPE_SIZES):
        sel = shape == s
        assert major[sel].min() == 0 and major[sel].max() == n_major - 1
        assert minor[sel].min() == 0 and minor[sel].max() == n_minor - 1
    np.testing.assert_array_equal(leech.join_index(shape, major, minor), idx)
    # the split follows the bijection: e.g. shape 2 major is the Golay message
    assert [int(v[0]) for v in leech.split_index(np.array([98256 + 5 * 24 + 7]))] == [2, 5, 7]


@pytest.mark.parametrize(
    "args", [(3, 0, 0), (-1, 0, 0), (0, 276, 0), (0, 0, 4), (1, 759, 0), (1, 0, 128), (2, 4096, 0),
             (2, 0, 24), (2, 0, -1)]
)
def test_join_rejects_out_of_range(args):
    with pytest.raises(ValueError):
        leech.join_index(*(np.array([a]) for a in args))


@pytest.mark.parametrize("bad", [np.array([-1]), np.array([N]), np.array([1.0]), np.zeros((2, 2), int)])
def test_indices_rejected(bad):
    for fn in (leech.split_index, leech.index_to_codeword, leech.index_to_codeword_numpy):
        with pytest.raises(ValueError):
            fn(bad)


def _bad_codewords() -> list[np.ndarray]:
    rows = []
    z = np.zeros(24, dtype=np.int64)
    rows.append(z.copy())  # zero
    v = z.copy(); v[[0, 1, 2]] = 4; rows.append(v)  # three 4s
    v = z.copy(); v[[0, 1]] = [4, 2]; rows.append(v)
    v = z.copy(); v[:8] = 2; rows.append(v)  # positions 0..7 are not an octad
    assert not np.isin((1 << np.arange(8)).sum(), golay.OCTAD_MASKS)
    v = z.copy(); v[golay.OCTAD_POSITIONS[3]] = 2; v[golay.OCTAD_POSITIONS[3][0]] = -2
    rows.append(v)  # odd number of minus signs
    v = np.ones(24, dtype=np.int64); v[5] = -3; v[0] = -1; rows.append(v)  # not a Golay word
    v = np.ones(24, dtype=np.int64); v[[5, 6]] = -3; rows.append(v)  # two 3s
    v = np.ones(24, dtype=np.int64); v[5] = 5; rows.append(v)
    v = z.copy(); v[[0, 1]] = 4; v[2] = 1; rows.append(v)
    v = spec_codeword(98256 + 24 * 77 + 3); v[3] *= 3; rows.append(v)  # an entry of size 9
    return rows


@pytest.mark.parametrize("fn", [leech.codeword_to_index, leech.codeword_to_index_numpy])
def test_codeword_to_index_rejects(fn, cb):
    for row in _bad_codewords():
        with pytest.raises(ValueError):
            fn(row[None, :])
        batch = np.concatenate([cb[:3].astype(np.int64), row[None, :]])
        with pytest.raises(ValueError):
            fn(batch)
    with pytest.raises(ValueError):
        fn(cb[:2].astype(np.float64))
    with pytest.raises(ValueError):
        fn(cb[0])
    with pytest.raises(ValueError):
        fn(cb[:2, :23])


# ------------------------------------------------------------------------------- search


def _gaussian(n: int, seed: int, dtype) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 24)).astype(dtype)


@pytest.mark.parametrize("dtype,n,seed", [(np.float64, 60000, 1), (np.float32, 40000, 2)])
def test_numba_equals_numpy_random(dtype, n, seed):
    x = _gaussian(n, seed, dtype)
    np.testing.assert_array_equal(leech.search_numba(x), leech.search_numpy(x))


@pytest.mark.parametrize("dtype,n,seed", [(np.float64, 1200, 3), (np.float32, 600, 4)])
def test_search_equals_bruteforce_random(dtype, n, seed):
    x = _gaussian(n, seed, dtype)
    np.testing.assert_array_equal(leech.search_numba(x), leech.search_bruteforce(x))


@pytest.mark.slow
@pytest.mark.parametrize("dtype,seed", [(np.float64, 5), (np.float32, 6)])
def test_search_equals_bruteforce_random_100k(dtype, seed):
    x = _gaussian(100000, seed, dtype)
    got = leech.search_numba(x)
    np.testing.assert_array_equal(got, leech.search_bruteforce(x))
    np.testing.assert_array_equal(got, leech.search_numpy(x))


def test_search_exact_codewords_all(cb):
    idx = np.arange(N)
    np.testing.assert_array_equal(leech.search_numba(cb.astype(np.float64)), idx)
    np.testing.assert_array_equal(leech.search_numba(cb.astype(np.float32) * 1e-30), idx)


@pytest.mark.parametrize("scale", [1.0, 2.0**-1060, 1e-310, 1e-30, 1e30, 1e307, 1.7e308 / 4])
def test_search_exact_codewords_scaled(cb, scale):
    rng = np.random.default_rng(7)
    idx = np.concatenate([np.arange(0, N, 997), rng.integers(0, N, 300)])
    x = cb[idx] * scale
    assert np.isfinite(x).all()
    for name in ("numba", "numpy"):
        np.testing.assert_array_equal(SEARCHES[name](x), idx, err_msg=name)
    if 1e-30 <= scale <= 1e30:
        np.testing.assert_array_equal(leech.search_bruteforce(x), idx)


def _midpoint_pairs(cb, n_centres: int, per_centre: int, seed: int):
    """Pairs (i, j) of codewords at inner product 1/2 (16 in integer coordinates)."""
    rng = np.random.default_rng(seed)
    centres = np.concatenate([[0, 1103, 1104, 98255, 98256, N - 1], rng.integers(0, N, n_centres)])
    ii, jj = [], []
    c32 = cb.astype(np.int32)
    for i in centres:
        nb = np.flatnonzero(c32 @ c32[i] == 16)
        assert nb.size == 4600
        ii.append(np.full(per_centre, i))
        jj.append(rng.choice(nb, per_centre, replace=False))
    return np.concatenate(ii), np.concatenate(jj)


def test_search_midpoints_tie_rule(cb, cb32_t):
    """x = v_i + v_j with <v_i, v_j> = 16: exactly two maximizers (score 48); the smaller
    index wins, in float64 and float32, for every implementation."""
    i, j = _midpoint_pairs(cb, 14, 25, seed=8)
    x = cb[i].astype(np.float64) + cb[j]
    expected = np.minimum(i, j)
    np.testing.assert_array_equal(exact_oracle(x, cb32_t), expected)
    for name, fn in SEARCHES.items():
        np.testing.assert_array_equal(fn(x), expected, err_msg=name)
        np.testing.assert_array_equal(fn(x.astype(np.float32) * 2.0**-40), expected, err_msg=name)


def test_search_perturbed_midpoints_and_codewords(cb):
    """Tiny perturbations break the ties; all implementations agree with brute force."""
    i, j = _midpoint_pairs(cb, 6, 30, seed=9)
    rng = np.random.default_rng(10)
    mid = cb[i].astype(np.float64) + cb[j]
    x = np.concatenate([mid + 1e-6 * rng.standard_normal(mid.shape), cb[i] + 1e-3 * rng.standard_normal(mid.shape)])
    expected = leech.search_bruteforce(x)
    assert np.isin(expected[: len(i)], np.stack([i, j])).all()
    np.testing.assert_array_equal(expected[len(i) :], i)
    for name in ("numba", "numpy"):
        np.testing.assert_array_equal(SEARCHES[name](x), expected, err_msg=name)


def test_search_ties_small_integers(cb32_t):
    """Small-integer and sparse inputs: many exact ties, incl. zeros inside octads and
    equal magnitudes; float64 arithmetic is exact there, so the smallest maximizer wins."""
    rng = np.random.default_rng(11)
    parts = [
        rng.integers(-2, 3, (150, 24)),
        rng.integers(-1, 2, (150, 24)),
        rng.choice([-1, 1], (100, 24)),
        rng.integers(-3, 4, (150, 24)) * (rng.random((150, 24)) < 0.3),
        rng.integers(-2, 3, (150, 24)) * (rng.random((150, 24)) < 0.1),
    ]
    x = np.concatenate(parts).astype(np.float64)
    x = x[np.abs(x).sum(axis=1) > 0]
    expected = exact_oracle(x, cb32_t)
    for name, fn in SEARCHES.items():
        np.testing.assert_array_equal(fn(x), expected, err_msg=name)
        np.testing.assert_array_equal(fn(x * 0.5), expected, err_msg=name)  # halves
    for name in ("numba", "numpy"):
        np.testing.assert_array_equal(SEARCHES[name](x * 2.0**-1000), expected, err_msg=name)


def _octad_input(o: int, values) -> np.ndarray:
    x = np.zeros(24)
    x[golay.OCTAD_POSITIONS[o]] = values
    return x


def test_search_handcrafted_ties(cb32_t):
    e0 = np.eye(24)[0]
    cases = [
        # pairs (0, j) with v_0 = +4 all score 4: pair rank 0, signs ++
        (e0, 0),
        # pairs (i, 5) and (5, j) with v_5 = -4: smallest is pair (0, 5), rank 4, b = 2
        (-np.eye(24)[5], 4 * 4 + 2),
        # Golay word 0 (all +), every position ties for the -3: j = 0
        (np.ones(24), 98256),
        # octad 10, one minus sign: the odd count is fixed by flipping a zero coordinate;
        # p_7 is zero, flipping it keeps b smallest
        (_octad_input(10, [-1, 1, 1, 1, 1, 1, 1, 0]), 1104 + 10 * 128 + 0b1),
        # zeros at p_2 and p_7: p_7 still wins
        (_octad_input(10, [-1, 1, 0, 1, 1, 1, 1, 0]), 1104 + 10 * 128 + 0b1),
        # zeros at p_2 and p_5 only: minus goes to the lowest, p_2
        (_octad_input(10, [-1, 1, 0, 1, 1, 0, 1, 1]), 1104 + 10 * 128 + 0b101),
        # negatives at p_0, p_3, p_4; smallest |x| tie between p_0 and p_3 (both negative):
        # flipping p_3 back to + gives the smaller b
        (_octad_input(10, [-0.5, 1, 1, -0.5, -1, 1, 1, 1]), 1104 + 10 * 128 + 0b10001),
    ]
    x = np.array([c[0] for c in cases])
    expected = [c[1] for c in cases]
    np.testing.assert_array_equal(exact_oracle(2 * x, cb32_t), expected)
    for name, fn in SEARCHES.items():
        np.testing.assert_array_equal(fn(x), expected, err_msg=name)


def test_search_zero_vector_and_empty():
    for name, fn in SEARCHES.items():
        np.testing.assert_array_equal(fn(np.zeros((3, 24))), [0, 0, 0], err_msg=name)
        np.testing.assert_array_equal(fn(-np.zeros((1, 24))), [0], err_msg=name)
        out = fn(np.zeros((0, 24), dtype=np.float32))
        assert out.shape == (0,) and out.dtype == np.int64


def test_search_layouts_and_dtypes():
    x = _gaussian(300, 12, np.float64)
    expected = leech.search_numba(x)
    np.testing.assert_array_equal(leech.search_numba(np.asfortranarray(x)), expected)
    wide = np.zeros((300, 48))
    wide[:, ::2] = x
    np.testing.assert_array_equal(leech.search_numba(wide[:, ::2]), expected)
    h = x.astype(np.float16)
    np.testing.assert_array_equal(leech.search_numba(h), leech.search_numba(h.astype(np.float64)))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(24),
        np.zeros((2, 23)),
        np.zeros((2, 24, 1)),
        np.zeros((2, 24), dtype=np.int64),
        np.zeros((2, 24), dtype=bool),
        np.zeros((2, 24), dtype=np.complex128),
        np.zeros((2, 24), dtype=object),
        np.full((2, 24), np.nan),
        np.full((2, 24), np.inf),
        np.array([[-np.inf] + [0.0] * 23]),
    ],
)
def test_search_rejects(bad):
    for name, fn in SEARCHES.items():
        with pytest.raises(ValueError):
            fn(bad)


def test_kernels_without_jit():
    """The numba kernels also run as plain Python (NUMBA_DISABLE_JIT=1), same results."""
    rng = np.random.default_rng(13)
    x = np.concatenate(
        [rng.standard_normal((3, 24)), rng.integers(-2, 3, (3, 24)), np.zeros((1, 24)), np.ones((1, 24))]
    )
    idx = np.array([0, 3, 1104, 5000, 98256, N - 1])
    code = (
        "import json, sys, numpy as np\n"
        "from leechcodec.kernels import leech\n"
        "assert type(leech._search_kernel).__name__ == 'function'\n"
        "x = np.array(json.loads(sys.argv[1]))\n"
        "idx = np.array(json.loads(sys.argv[2]))\n"
        "cw = leech.index_to_codeword(idx)\n"
        "print(json.dumps([leech.search_numba(x).tolist(), cw.tolist(),"
        " leech.codeword_to_index(cw).tolist()]))\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    res = subprocess.run(
        [sys.executable, "-c", code, json.dumps(x.tolist()), json.dumps(idx.tolist())],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    search, cw, back = json.loads(res.stdout)
    np.testing.assert_array_equal(search, leech.search_numba(x))
    np.testing.assert_array_equal(cw, leech.index_to_codeword(idx))
    np.testing.assert_array_equal(back, idx)
