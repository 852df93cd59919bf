"""leechcodec.kernels.xmath: accuracy against mpmath, the same bits compiled and interpreted,
and no libm call or fused multiply-add in the compiled code."""

from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import pytest

from leechcodec.kernels import xmath

mpmath.mp.prec = 160

# Largest error in ulps (of the correctly rounded result) allowed per function.
ULPS = {"exp": 1.0, "log": 1.0, "log1p": 2.5, "erfc": 2.5, "erf": 1.0}
REFERENCE = {"exp": mpmath.exp, "log": mpmath.log, "log1p": mpmath.log1p, "erfc": mpmath.erfc, "erf": mpmath.erf}


def _inputs(name: str, n: int, seed: int = 0) -> np.ndarray:
    """Arguments over each function's working range, with the branch boundaries dense."""
    rng = np.random.default_rng(seed)
    if name == "exp":
        parts = [rng.uniform(-745, 709.78, n), rng.uniform(-1.1, 1.1, n), rng.uniform(-1e-8, 1e-8, n // 10),
                 rng.uniform(-745.13, -707, n // 10), rng.uniform(709.0, 709.78, n // 10)]
    elif name == "log":
        parts = [np.exp(rng.uniform(-700, 700, n)), rng.uniform(0.6, 1.5, n), 1 + rng.uniform(-1e-6, 1e-6, n // 10)]
    elif name == "log1p":
        parts = [rng.uniform(0, 1, n), np.exp(rng.uniform(-700, 0, n)), rng.uniform(-0.999, 0, n // 10)]
    else:  # erf, erfc: all five fdlibm intervals, both signs
        parts = [rng.uniform(-7, 27.5, n), rng.uniform(-1.3, 1.3, n), rng.uniform(-1e-7, 1e-7, n // 10)]
    return np.concatenate(parts)


def _ulps(got: float, exact) -> float:
    """|got − exact| in units of the last place of ``exact`` rounded to float64."""
    rounded = float(exact)
    if rounded == 0.0:
        return 0.0 if got == 0.0 else math.inf
    return float(abs(mpmath.mpf(got) - exact) / mpmath.mpf(math.ulp(rounded)))


def test_constants_are_fdlibms():
    """The bit patterns in xmath equal fdlibm's decimal constants (a typo in either shows)."""
    decimals = {
        "_LN2_HI": "6.93147180369123816490e-01", "_LN2_LO": "1.90821492927058770002e-10",
        "_INV_LN2": "1.44269504088896338700e+00",
        "_P1": "1.66666666666666019037e-01", "_P2": "-2.77777777770155933842e-03",
        "_P3": "6.61375632143793436117e-05", "_P4": "-1.65339022054652515390e-06",
        "_P5": "4.13813679705723846039e-08",
        "_LG1": "6.666666666666735130e-01", "_LG2": "3.999999999940941908e-01", "_LG3": "2.857142874366239149e-01",
        "_LG4": "2.222219843214978396e-01", "_LG5": "1.818357216161805012e-01", "_LG6": "1.531383769920937332e-01",
        "_LG7": "1.479819860511658591e-01",
        "_ERX": "8.45062911510467529297e-01", "_EFX": "1.28379167095512586316e-01",
        "_PP0": "1.28379167095512558561e-01", "_PP4": "-2.37630166566501626084e-05",
        "_QQ1": "3.97917223959155352819e-01", "_QQ5": "-3.96022827877536812320e-06",
        "_PA0": "-2.36211856075265944077e-03", "_PA6": "-2.16637559486879084300e-03",
        "_QA1": "1.06420880400844228286e-01", "_QA6": "1.19844998467991074170e-02",
        "_RA0": "-9.86494403484714822705e-03", "_RA7": "-9.81432934416914548592e+00",
        "_SA1": "1.96512716674392571292e+01", "_SA8": "-6.04244152148580987438e-02",
        "_RB0": "-9.86494292470009928597e-03", "_RB6": "-4.83519191608651397019e+02",
        "_SB1": "3.03380607434824582924e+01", "_SB7": "-2.24409524465858183362e+01",
    }
    for name, text in decimals.items():
        assert getattr(xmath, name) == float(text), name
    assert xmath._SQRT_HALF == math.sqrt(0.5)


@pytest.mark.parametrize("name", sorted(ULPS))
def test_accuracy_against_mpmath(name):
    f, ref = getattr(xmath, name), REFERENCE[name]
    worst = max(_ulps(f(float(x)), ref(mpmath.mpf(float(x)))) for x in _inputs(name, 4000))
    assert worst <= ULPS[name], f"{name}: {worst:.3f} ulp"


def test_special_values():
    assert xmath.exp(0.0) == 1.0 and xmath.exp(-746.0) == 0.0 and xmath.exp(710.0) == math.inf
    assert abs(xmath.exp(1.0) - math.e) <= math.ulp(math.e)  # < 1 ulp, not always correctly rounded
    assert xmath.log(1.0) == 0.0 and xmath.log(2.0) == math.log(2.0) and abs(xmath.log(math.e) - 1.0) <= 2**-52
    assert xmath.log(5e-324) == pytest.approx(-744.44007192138126, rel=1e-15)  # subnormal input
    assert xmath.log1p(0.0) == 0.0 and xmath.log1p(1e-300) == 1e-300
    assert xmath.erfc(0.0) == 1.0 and xmath.erfc(30.0) == 0.0 and xmath.erfc(-30.0) == 2.0
    assert xmath.erf(0.0) == 0.0 and xmath.erf(7.0) == 1.0 and xmath.erf(-7.0) == -1.0
    for x in (0.1, 0.5, 0.9, 1.1, 2.0, 3.5, 5.0):
        assert xmath.erf(-x) == -xmath.erf(x)
        assert xmath.erfc(-x) == pytest.approx(2.0 - xmath.erfc(x), rel=1e-15)


@pytest.mark.parametrize("name", sorted(ULPS))
def test_compiled_and_interpreted_give_the_same_bits(name):
    """numba's machine code and CPython running the same source (IEEE doubles, no libm) agree
    bit for bit: numba fused no multiply-add and called no libm function."""
    f = getattr(xmath, name)
    xs = _inputs(name, 20000, seed=1)
    compiled = np.array([f(float(x)) for x in xs])
    interpreted = np.array([f.py_func(float(x)) for x in xs])
    assert compiled.tobytes() == interpreted.tobytes()


@pytest.mark.parametrize("name", sorted(ULPS) + ["_erfc_tail", "_erf_small", "_erf_mid"])
def test_machine_code_calls_no_libm_and_fuses_nothing(name):
    """Compiled afresh (cached code cannot be inspected): the only calls are to xmath itself,
    numba's exact ``frexp``/``ldexp`` helpers, ``floor``/``fabs`` and the Python wrapper's
    plumbing, and the machine code has no fused multiply-add."""
    import numba

    f = numba.njit(getattr(xmath, name).py_func)
    f(1.5)
    ir = "\n".join(f.inspect_llvm().values())
    assert "fdiv" in ir or "fmul" in ir  # the real function body is there
    calls = set(re.findall(r"call [^@]*@([\w.$]+)", ir))
    allowed = re.compile(r"^(Py\w+|NRT_\w+|numba_(gil_\w+|do_raise|runtime_\w+|unpickle|frexp|ldexp)"
                         r"|llvm\.(floor|fabs)\.f64|_ZN10leechcodec7kernels5xmath\w+)$")
    assert {c for c in calls if not allowed.match(c)} == set()
    assert "fmuladd" not in ir and "llvm.fma" not in ir and " contract " not in ir and " fast " not in ir
    asm = "\n".join(f.inspect_asm().values())
    assert not re.search(r"\bv?f(n)?m(add|sub)\d", asm)
