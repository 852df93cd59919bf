"""leechcodec.kernels.leech_prior: numba kernels vs numpy twins vs brute force over all codewords."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from leechcodec.kernels import leech_prior as lp
from leechcodec.kernels import prior_kernels
from leechcodec.kernels.golay import GOLAY_WORDS, OCTAD_POSITIONS

# Float tolerances, all in one place.
RTOL_LOGZ = 1e-10  # log Z and log p vs the brute-force log-sum-exp over 196,560 codewords
RTOL_TWIN = 1e-12  # numba vs numpy twin, moderate logits
RTOL_TWIN_LARGE = 1e-9  # numba vs numpy twin, logits of hundreds (rounding of ~1e4-sized sums)
ATOL_PROB = 1e-15  # absolute slack on probabilities
ROW_SUM = 1e-12  # |Σ row − 1|
FLUSH = 1e-30  # shape-2 major entries below this (relative to the row) may be flushed to 0
RTOL_JOINT = 1e-10  # P(shape)·P(major|shape)·P(minor|·) vs the brute-force softmax

V_GRID = np.arange(-4, 5)


# ----------------------------------------------------------------------------- oracle


def _enumerate_codewords() -> np.ndarray:
    """All codewords in index order (the fixed layout), built independently of the kernel."""
    out = np.zeros((lp.N_CODEWORDS, 24), np.int8)
    n = 0
    for i in range(24):
        for j in range(i + 1, 24):
            for b in range(4):
                out[n, i] = -4 if b & 1 else 4
                out[n, j] = -4 if b & 2 else 4
                n += 1
    for pos in OCTAD_POSITIONS:
        for b in range(128):
            bits = [(b >> k) & 1 for k in range(7)]
            bits.append(sum(bits) % 2)
            out[n, pos] = [-2 if x else 2 for x in bits]
            n += 1
    for c in GOLAY_WORDS:
        for j in range(24):
            s = np.where(c == 1, -1, 1)
            v = s.copy()
            v[j] *= -3
            out[n] = v
            n += 1
    assert n == lp.N_CODEWORDS
    return out


@pytest.fixture(scope="module")
def codewords() -> np.ndarray:
    return _enumerate_codewords()


def brute_logits(f: np.ndarray, v: np.ndarray) -> np.ndarray:
    """ℓ of every codeword: (N, 196560)."""
    cols = (v + 4).astype(np.int64)
    out = np.zeros((f.shape[0], v.shape[0]))
    for i in range(24):
        out += f[:, i, :][:, cols[:, i]]
    return out


def brute_lse(x: np.ndarray) -> np.ndarray:
    mx = x.max(axis=1)
    return mx + np.log(np.exp(x - mx[:, None]).sum(axis=1))


# ----------------------------------------------------------------------------- logit families


def uniform_f(rng, n: int, scale: float) -> np.ndarray:
    return rng.uniform(-scale, scale, size=(n, 24, 9))


def gaussian_f(rng, n: int, s_lo: float, s_hi: float) -> np.ndarray:
    """f_i(v) = −(v − m_i)² / (2 s_i²), the smooth family of DESIGN §3."""
    m = rng.normal(0.0, 1.5, size=(n, 24, 1))
    s = rng.uniform(s_lo, s_hi, size=(n, 24, 1))
    return -((V_GRID - m) ** 2) / (2 * s**2)


def vmf_f(rng, n: int, kappa: float) -> np.ndarray:
    """Isotropic von Mises–Fisher: f_i(v) = κ μ_i v / √32."""
    mu = rng.normal(size=(n, 24))
    mu /= np.linalg.norm(mu, axis=1, keepdims=True)
    return kappa * mu[:, :, None] * V_GRID / np.sqrt(32)


def families(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "uniform_0.01": uniform_f(rng, 3, 0.01),
        "uniform_1": uniform_f(rng, 3, 1.0),
        "uniform_30": uniform_f(rng, 3, 30.0),
        "uniform_500": uniform_f(rng, 4, 500.0),
        "uniform_1000": uniform_f(rng, 3, 1000.0),
        "gauss_wide": gaussian_f(rng, 3, 0.5, 3.0),
        "gauss_sharp": gaussian_f(rng, 4, 0.05, 0.2),
        "vmf_10": vmf_f(rng, 2, 10.0),
        "vmf_300": vmf_f(rng, 2, 300.0),
    }


FAMILIES = families()


def _far_word_f(penalty: float) -> np.ndarray:
    """A sign pattern at distance 3 from the Golay code, preferred by ``penalty`` per sign:
    the best Golay word sits 3·penalty nats below the unconstrained optimum."""
    u = np.zeros(24, bool)
    u[[0, 5, 17]] = True
    assert np.min(np.sum(GOLAY_WORDS.astype(bool) != u, axis=1)) == 3
    f = np.full((1, 24, 9), -10.0)
    f[0, :, 4] = 0.0
    f[0, :, 5] = np.where(u, -penalty, 0.0)
    f[0, :, 3] = np.where(u, 0.0, -penalty)
    return f


def _spike_f() -> np.ndarray:
    """Coordinate 0 wants −3 (+700) but its +1 is penalized (−800): the d's span 1500 nats."""
    f = np.zeros((1, 24, 9))
    f[0, 0, 1] = 700.0
    f[0, 0, 5] = -800.0
    return f


def _two_refs_f() -> np.ndarray:
    """d_0(+1) = 1500 while the other d's are 0, and words of both kinds weigh alike."""
    f = np.zeros((1, 24, 9))
    f[0, 0, 5] = -1500.0
    return f


def _octad_slow_f() -> np.ndarray:
    """Every ±2 gap is 400 nats: each odd-parity octad has w_* < 1e-150."""
    rng = np.random.default_rng(7)
    f = np.full((1, 24, 9), -50.0)
    f[0, :, 4] = 0.0
    sign = rng.choice([-1.0, 1.0], size=24)
    f[0, :, 6] = 200.0 * sign
    f[0, :, 2] = -200.0 * sign
    return f


SPECIAL = {
    "far_word_100": _far_word_f(100.0),
    "far_word_300": _far_word_f(300.0),
    "spike": _spike_f(),
    "two_refs": _two_refs_f(),
    "octad_slow": _octad_slow_f(),
}
ALL_F = {**FAMILIES, **SPECIAL}
LARGE = {"uniform_500", "uniform_1000", "gauss_sharp", "vmf_300", *SPECIAL}


def _twin_rtol(name: str) -> float:
    return RTOL_TWIN_LARGE if name in LARGE else RTOL_TWIN


# ----------------------------------------------------------------------------- oracle checks


def test_import_resolves_to_this_project():
    assert Path(lp.__file__).resolve().parent.name == "kernels"
    assert (Path(lp.__file__).resolve().parent / "golay.py").exists()


def test_oracle_layout(codewords):
    v = codewords.astype(np.int64)
    assert np.all((v**2).sum(axis=1) == 32)
    assert len(np.unique(v, axis=0)) == lp.N_CODEWORDS
    sizes = np.diff([*lp.SHAPE_OFFSETS, lp.N_CODEWORDS])
    assert list(sizes) == [a * b for a, b in zip(lp.MAJOR_SIZES, lp.MINOR_SIZES)]


def test_oracle_matches_leech_module(codewords):
    leech = pytest.importorskip("leechcodec.kernels.leech")
    if not hasattr(leech, "all_codewords"):
        pytest.skip("leech.all_codewords not available yet")
    np.testing.assert_array_equal(leech.all_codewords(), codewords)


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("name", list(ALL_F))
def test_log_partition_matches_brute_force(name, codewords):
    f = ALL_F[name]
    ref = brute_lse(brute_logits(f, codewords))
    np.testing.assert_allclose(lp.log_partition(f), ref, rtol=RTOL_LOGZ, atol=RTOL_LOGZ)
    np.testing.assert_allclose(lp.log_partition_numpy(f), ref, rtol=RTOL_LOGZ, atol=RTOL_LOGZ)


@pytest.mark.parametrize("portable", [True, False])
def test_special_cases_reach_their_paths(portable):
    def tier(f):
        return prior_kernels._shape2(f[0], np.empty(4096), np.empty(4096), portable)[2]

    assert tier(FAMILIES["gauss_wide"]) == 0
    assert tier(SPECIAL["far_word_100"]) == 1  # product tier referenced at the best word
    for name in ("far_word_300", "spike", "two_refs"):
        assert tier(SPECIAL[name]) == 2, name
    f = SPECIAL["two_refs"][0]
    d = np.concatenate([f[:, 1] - f[:, 5], f[:, 7] - f[:, 3]])
    assert np.ptp(d) > prior_kernels._RSPAN  # the exact path needs two exp references
    # octad_slow: some odd-parity octad has all 8 gaps above 345 nats (w_* < 1e-150).
    f = SPECIAL["octad_slow"][0]
    gap = np.abs(f[:, 6] - f[:, 2])
    neg = f[:, 2] > f[:, 6]
    odd = neg[OCTAD_POSITIONS].sum(axis=1) % 2 == 1
    assert odd.any() and np.all(gap > 345)


@pytest.mark.parametrize("name", ["uniform_1", "uniform_500", "gauss_sharp", "vmf_10", "spike", "two_refs"])
def test_log_prob_matches_brute_force(name, codewords):
    f = ALL_F[name]
    rng = np.random.default_rng(1)
    idx = np.concatenate([[0, 1103, 1104, 98255, 98256, lp.N_CODEWORDS - 1], rng.integers(0, lp.N_CODEWORDS, 10)])
    ft = np.repeat(f[:1], len(idx), axis=0)
    ell = brute_logits(f[:1], codewords)
    ref = ell[0, idx] - brute_lse(ell)[0]
    np.testing.assert_allclose(lp.log_prob(ft, idx), ref, rtol=RTOL_LOGZ, atol=RTOL_LOGZ * abs(ref).max())
    np.testing.assert_allclose(lp.log_prob_numpy(ft, idx), ref, rtol=RTOL_LOGZ, atol=RTOL_LOGZ * abs(ref).max())


def _joint_from_tables(f1: np.ndarray) -> np.ndarray:
    """Full distribution over the 196,560 indices of one token from the hierarchical tables."""
    slp = lp.shape_log_probs(f1)[0]
    parts = []
    for s in range(3):
        k = lp.MAJOR_SIZES[s]
        maj = lp.major_probs(f1, s)[0]
        mnr = lp.minor_probs(np.repeat(f1, k, axis=0), s, np.arange(k))
        parts.append((np.exp(slp[s]) * maj[:, None] * mnr).ravel())
    return np.concatenate(parts)


@pytest.mark.parametrize("name", ["uniform_1", "gauss_wide", "vmf_10", "uniform_30"])
def test_hierarchy_is_the_exact_joint(name, codewords):
    f1 = ALL_F[name][:1]
    joint = _joint_from_tables(f1)
    ell = brute_logits(f1, codewords)[0]
    ref = np.exp(ell - brute_lse(ell[None])[0])
    assert abs(joint.sum() - 1) < ROW_SUM
    assert np.all(joint[ref > FLUSH] > 0)
    np.testing.assert_allclose(joint, ref, rtol=RTOL_JOINT, atol=FLUSH)


@pytest.mark.parametrize("name", list(ALL_F))
def test_hierarchy_multiplies_to_log_prob(name):
    f = ALL_F[name]
    rng = np.random.default_rng(2)
    idx = rng.integers(0, lp.N_CODEWORDS, len(f))
    idx[0] = lp.SHAPE_OFFSETS[2] + 17  # at least one shape-2 token
    t = lp.coding_tables(f, idx)
    lp_ref = lp.log_prob(f, idx)
    for n in range(len(f)):
        s = t.shape[n]
        r = int(np.flatnonzero(t.positions[s] == n)[0])
        pm = t.major_probs[s][r, t.major[n]]
        pn = t.minor_probs[s][r, t.minor[n]]
        if pm > 1e-290 and pn > 1e-290:
            total = t.shape_logp[n, s] + np.log(pm) + np.log(pn)
            assert abs(total - lp_ref[n]) <= RTOL_LOGZ * max(1.0, abs(lp_ref[n]))


@pytest.mark.parametrize("name", list(ALL_F))
def test_rows_are_distributions(name):
    f = ALL_F[name]
    slp = lp.shape_log_probs(f)
    assert np.all(np.isfinite(slp)) and np.all(slp <= 0)
    assert np.all(np.abs(np.exp(slp).sum(axis=1) - 1) < ROW_SUM)
    for s in range(3):
        maj = lp.major_probs(f, s)
        assert np.all(np.isfinite(maj)) and np.all(maj >= 0)
        assert np.all(np.abs(maj.sum(axis=1) - 1) < ROW_SUM)
        mnr = lp.minor_probs(f, s, maj.argmax(axis=1))
        assert np.all(np.isfinite(mnr)) and np.all(mnr >= 0)
        assert np.all(np.abs(mnr.sum(axis=1) - 1) < ROW_SUM)
        # strictly positive wherever the true probability is not negligible
        assert np.all(maj[lp.major_probs_numpy(f, s) > FLUSH] > 0)
        assert np.all(mnr[lp.minor_probs_numpy(f, s, maj.argmax(axis=1)) > 1e-300] > 0)


def test_uniform_prior_is_counting():
    f = np.zeros((2, 24, 9))
    np.testing.assert_allclose(lp.log_partition(f), np.log(lp.N_CODEWORDS), rtol=1e-15)
    sizes = np.array([a * b for a, b in zip(lp.MAJOR_SIZES, lp.MINOR_SIZES)])
    np.testing.assert_allclose(np.exp(lp.shape_log_probs(f)), np.tile(sizes / lp.N_CODEWORDS, (2, 1)), rtol=1e-14)
    for s in range(3):
        np.testing.assert_allclose(lp.major_probs(f, s), 1 / lp.MAJOR_SIZES[s], rtol=1e-13)
        np.testing.assert_allclose(lp.minor_probs(f, s, np.array([0, 5])), 1 / lp.MINOR_SIZES[s], rtol=1e-13)


def test_vmf_special_case(codewords):
    """Isotropic vMF: p(v) ∝ exp(κ⟨μ, v⟩/√32), checked against the direct inner products."""
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(2, 24))
    mu /= np.linalg.norm(mu, axis=1, keepdims=True)
    for kappa in (0.5, 40.0, 400.0):
        f = kappa * mu[:, :, None] * V_GRID / np.sqrt(32)
        ell = kappa * (mu @ codewords.T.astype(np.float64)) / np.sqrt(32)  # (2, 196560)
        logz = brute_lse(ell)
        np.testing.assert_allclose(lp.log_partition(f), logz, rtol=RTOL_LOGZ)
        # antipodal symmetry of the codebook: Z(κ, μ) = Z(κ, −μ)
        np.testing.assert_allclose(lp.log_partition(-f), logz, rtol=RTOL_LOGZ)
        best = ell.argmax(axis=1)
        np.testing.assert_allclose(lp.log_prob(f, best), ell[[0, 1], best] - logz, rtol=RTOL_LOGZ, atol=RTOL_LOGZ)


# ----------------------------------------------------------------------------- twins, determinism


@pytest.mark.parametrize("name", list(ALL_F))
def test_numba_matches_numpy_twin(name):
    f = ALL_F[name]
    rtol = _twin_rtol(name)
    scale = max(1.0, np.abs(lp.log_partition_numpy(f)).max())
    np.testing.assert_allclose(lp.log_partition(f), lp.log_partition_numpy(f), rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(lp.shape_log_probs(f), lp.shape_log_probs_numpy(f), rtol=rtol, atol=rtol * scale)
    rng = np.random.default_rng(4)
    for s in range(3):
        np.testing.assert_allclose(lp.major_probs(f, s), lp.major_probs_numpy(f, s), rtol=rtol, atol=ATOL_PROB)
        major = rng.integers(0, lp.MAJOR_SIZES[s], len(f))
        np.testing.assert_allclose(
            lp.minor_probs(f, s, major), lp.minor_probs_numpy(f, s, major), rtol=rtol, atol=ATOL_PROB
        )
    idx = rng.integers(0, lp.N_CODEWORDS, len(f))
    np.testing.assert_allclose(lp.log_prob(f, idx), lp.log_prob_numpy(f, idx), rtol=rtol, atol=rtol * scale)


def _all_outputs(f: np.ndarray, idx: np.ndarray) -> list[np.ndarray]:
    t = lp.coding_tables(f, idx)
    out = [lp.log_partition(f), lp.shape_log_probs(f), lp.log_prob(f, idx), t.shape_logp]
    for s in range(3):
        major = np.arange(len(f)) % lp.MAJOR_SIZES[s]
        out += [lp.major_probs(f, s), lp.minor_probs(f, s, major), t.major_probs[s], t.minor_probs[s]]
    return out


@pytest.fixture(scope="module")
def mixed_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    f = np.concatenate([gaussian_f(rng, 40, 0.2, 2.0), uniform_f(rng, 16, 400.0), *SPECIAL.values()])
    idx = rng.integers(0, lp.N_CODEWORDS, len(f))
    return np.ascontiguousarray(f), idx


def test_bitwise_deterministic_across_threads_and_calls(mixed_batch):
    f, idx = mixed_batch
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _all_outputs(f, idx)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _all_outputs(f, idx)
        again = _all_outputs(f, idx)
    finally:
        numba.set_num_threads(before)
    for a, b, c in zip(one, two, again):
        assert a.tobytes() == b.tobytes() == c.tobytes()


def test_coding_tables_bitwise_equal_decoder_calls(mixed_batch):
    f, idx = mixed_batch
    t = lp.coding_tables(f, idx)
    assert t.shape_logp.tobytes() == lp.shape_log_probs(f).tobytes()
    for s in range(3):
        pos = t.positions[s]
        assert np.all(t.shape[pos] == s)
        assert t.major_probs[s].tobytes() == lp.major_probs(f[pos], s).tobytes()
        assert t.minor_probs[s].tobytes() == lp.minor_probs(f[pos], s, t.major[pos]).tobytes()
    np.testing.assert_array_equal(
        np.asarray(lp.SHAPE_OFFSETS)[t.shape] + t.major * np.asarray(lp.MINOR_SIZES)[t.shape] + t.minor, idx
    )


def test_coding_tables_match_twin(mixed_batch):
    f, idx = mixed_batch
    f, idx = f[:40], idx[:40]  # the moderate (Gaussian) part
    a, b = lp.coding_tables(f, idx), lp.coding_tables_numpy(f, idx)
    np.testing.assert_allclose(a.shape_logp, b.shape_logp, rtol=RTOL_TWIN, atol=RTOL_TWIN)
    for s in range(3):
        np.testing.assert_array_equal(a.positions[s], b.positions[s])
        np.testing.assert_allclose(a.major_probs[s], b.major_probs[s], rtol=RTOL_TWIN, atol=ATOL_PROB)
        np.testing.assert_allclose(a.minor_probs[s], b.minor_probs[s], rtol=RTOL_TWIN, atol=ATOL_PROB)


def test_empty_batch():
    f = np.zeros((0, 24, 9))
    assert lp.log_partition(f).shape == (0,)
    assert lp.shape_log_probs(f).shape == (0, 3)
    assert lp.major_probs(f, 2).shape == (0, 4096)
    assert lp.minor_probs(f, 1, np.zeros(0, np.int64)).shape == (0, 128)
    assert lp.log_prob(f, np.zeros(0, np.int64)).shape == (0,)
    t = lp.coding_tables(f, np.zeros(0, np.int64))
    assert t.major_probs[2].shape == (0, 4096)


def test_no_jit_matches_twin(tmp_path):
    """The kernels run as plain Python (NUMBA_DISABLE_JIT=1) and still agree with the twins,
    through all three shape-2 tiers and the octad fallback."""
    rows = [FAMILIES["uniform_1"][:1], SPECIAL["far_word_100"], SPECIAL["two_refs"], SPECIAL["octad_slow"]]
    f = np.concatenate(rows)
    np.save(tmp_path / "f.npy", f)
    code = f"""
import numpy as np
from leechcodec.kernels import leech_prior as lp
f = np.load({str(tmp_path / "f.npy")!r})
idx = np.array([5, 150000, 2000, 120000])
m1, m2 = np.array([3, 700, 0, 9]), np.array([1, 4095, 77, 2])
np.testing.assert_allclose(lp.log_partition(f), lp.log_partition_numpy(f), rtol={RTOL_TWIN_LARGE})
for s in range(3):
    a, b = lp.major_probs(f, s), lp.major_probs_numpy(f, s)
    np.testing.assert_allclose(a, b, rtol={RTOL_TWIN_LARGE}, atol={ATOL_PROB})
np.testing.assert_allclose(lp.minor_probs(f, 1, m1), lp.minor_probs_numpy(f, 1, m1), rtol={RTOL_TWIN_LARGE})
np.testing.assert_allclose(lp.minor_probs(f, 2, m2), lp.minor_probs_numpy(f, 2, m2), rtol={RTOL_TWIN_LARGE})
np.testing.assert_allclose(lp.log_prob(f, idx), lp.log_prob_numpy(f, idx), rtol={RTOL_TWIN_LARGE})
t = lp.coding_tables(f, idx)
assert t.major_probs[2].tobytes() == lp.major_probs(f[t.positions[2]], 2).tobytes()
"""
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def test_portable_tables_are_the_same_bits_compiled_and_interpreted(tmp_path):
    """Coder profile 3's promise: with ``portable=True`` the kernels use no libm, so plain
    Python (``NUMBA_DISABLE_JIT=1``, IEEE doubles in the source's order) reproduces numba's
    tables bit for bit, through every shape-2 tier and the octad fallback."""
    rows = [FAMILIES["gauss_wide"][:2], FAMILIES["uniform_30"][:1], SPECIAL["far_word_100"],
            SPECIAL["far_word_300"], SPECIAL["two_refs"], SPECIAL["octad_slow"]]
    f = np.concatenate(rows)
    idx = np.array([5, 150000, 2000, 120000, 196559, 300, 99999])
    t = lp.coding_tables(f, idx, portable=True)
    parts = [lp.shape_log_probs(f, portable=True), lp.exp_rows(t.shape_logp, portable=True),
             lp.log_prob(f, idx, portable=True), *t.major_probs, *t.minor_probs]
    np.savez(tmp_path / "ref.npz", f=f, idx=idx, *parts)
    code = f"""
import numpy as np
from leechcodec.kernels import leech_prior as lp
ref = np.load({str(tmp_path / "ref.npz")!r})
f, idx = ref["f"], ref["idx"]
t = lp.coding_tables(f, idx, portable=True)
parts = [lp.shape_log_probs(f, portable=True), lp.exp_rows(t.shape_logp, portable=True),
         lp.log_prob(f, idx, portable=True), *t.major_probs, *t.minor_probs]
for k, got in enumerate(parts):
    assert got.tobytes() == ref[f"arr_{{k}}"].tobytes(), k
print("ok", len(parts))
"""
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.startswith("ok 9"), res.stderr
    # ... and the libm path really is another computation: some bits differ on these rows
    libm = lp.coding_tables(f, idx, portable=False)
    assert any(a.tobytes() != b.tobytes() for a, b in zip(libm.major_probs, t.major_probs))


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 24, 8)),
        np.zeros((24, 9)),
        np.zeros((2, 9, 24)),
        np.full((1, 24, 9), np.nan),
        np.full((1, 24, 9), np.inf),
        np.full((1, 24, 9), 2e6),
        np.zeros((1, 24, 9), dtype=complex),
        np.array([["a"] * 9] * 24)[None],
    ],
)
def test_bad_f_raises(bad):
    with pytest.raises(ValueError):
        lp.log_partition(bad)
    with pytest.raises(ValueError):
        lp.log_partition_numpy(bad)
    with pytest.raises(ValueError):
        lp.major_probs(bad, 0)


def test_bad_symbols_raise():
    f = np.zeros((2, 24, 9))
    for shape in (3, -1, 1.0, True, "0"):
        with pytest.raises(ValueError):
            lp.major_probs(f, shape)
    for major in (np.array([0, 276]), np.array([0]), np.array([0.0, 1.0]), np.array([-1, 0])):
        with pytest.raises(ValueError):
            lp.minor_probs(f, 0, major)
    for idx in (np.array([0, lp.N_CODEWORDS]), np.array([-1, 0]), np.array([0, 1, 2]), np.array([0.5, 1.0])):
        with pytest.raises(ValueError):
            lp.log_prob(f, idx)
        with pytest.raises(ValueError):
            lp.coding_tables(f, idx)


def test_float32_and_strided_input_accepted():
    f = FAMILIES["gauss_wide"]
    f32 = f.astype(np.float32)
    assert lp.log_partition(f32).tobytes() == lp.log_partition(f32.astype(np.float64)).tobytes()
    strided = np.asfortranarray(f)
    assert lp.log_partition(strided).tobytes() == lp.log_partition(f).tobytes()


# ----------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_log_prob_sums_to_one_over_all_indices(codewords):
    f1 = FAMILIES["gauss_wide"][:1]
    idx = np.arange(lp.N_CODEWORDS)
    logp = lp.log_prob(np.repeat(f1, lp.N_CODEWORDS, axis=0), idx)
    assert abs(np.exp(logp).sum() - 1) < ROW_SUM
    ell = brute_logits(f1, codewords)[0]
    np.testing.assert_allclose(logp, ell - brute_lse(ell[None])[0], rtol=RTOL_LOGZ, atol=1e-9)
