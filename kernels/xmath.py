"""``exp``, ``log``, ``log1p`` and ``erfc`` from IEEE arithmetic alone: the same bits on
every machine.

The platform's libm decides the last bit of ``exp``/``log``/``erfc`` its own way: glibc,
macOS, MSVC and musl disagree on some inputs, and glibc itself picks an FMA or a non-FMA
``exp`` by CPU. A probability that decides an ANS frequency must not depend on that. These
functions use only ``+ − × ÷``, comparisons, ``floor``, products with powers of two and
the exact operations ``frexp`` and ``ldexp`` (exact for normal numbers, and correctly rounded
otherwise), each rounded once to float64 in the order the source gives. numba compiles them without
fastmath, so it contracts no ``a·b + c`` into an FMA; the same source run by CPython
(``NUMBA_DISABLE_JIT=1``, or ``.py_func``) gives the same bits, which the tests check.

The algorithms and coefficients are fdlibm's (Sun Microsystems, 1993; ``e_exp.c``,
``e_log.c``, ``s_erf.c``, the code FreeBSD's and musl's libm still carry), rewritten without
bit access: fdlibm reads the high word of a double where these call ``frexp``. Errors are
below 1 ulp for ``exp`` and ``log``, 2 ulp for ``log1p`` and ``erfc`` (measured against
mpmath in ``tests/kernels/test_xmath.py``); nothing here needs more, since only the
determinism matters to the coder.

Domain: finite arguments. ``exp(x)`` is 0 below −745.2 and overflows (inf) above 709.78;
``log(x)`` needs ``x > 0``; ``log1p(x)`` needs ``x > −1``.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from leechcodec.kernels._jit import njit

__all__ = ["exp", "log", "log1p", "erfc", "erf"]


def _bits(word: int) -> float:
    """The float64 whose IEEE bit pattern is ``word`` (fdlibm gives its constants so)."""
    return struct.unpack("<d", struct.pack("<Q", word))[0]


# exp: x = k·ln2 + r, |r| ≤ ½ln2; exp(r) = 1 + 2r/(2 − c), c = r − r²·P(r²) (Remez, 2^-59).
_LN2_HI = _bits(0x3FE62E42FEE00000)  # ln 2 with 32 trailing zero bits: k·_LN2_HI is exact
_LN2_LO = _bits(0x3DEA39EF35793C76)
_INV_LN2 = _bits(0x3FF71547652B82FE)
_P1 = _bits(0x3FC555555555553E)
_P2 = _bits(0xBF66C16C16BEBD93)
_P3 = _bits(0x3F11566AAF25DE2C)
_P4 = _bits(0xBEBBBD41C5D26BF1)
_P5 = _bits(0x3E66376972BEA4D0)
_EXP_HI = 709.782712893383973096  # above: inf
_EXP_LO = -745.13321910194110842  # below: 0
#: 2^j for j = −1022..1023 (every normal power of two; exact): exp scales by a product, which
#: numba inlines, where ``ldexp`` would be a call into its C helpers.
_POW2 = np.ldexp(1.0, np.arange(-1022, 1024))
_POW2.setflags(write=False)
_TWO_M1000 = math.ldexp(1.0, -1000)

# log: x = 2^k·m, √½ ≤ m < √2, f = m − 1, s = f/(2 + f); log m = 2s + s·R(s²) (Remez, 2^-58.45).
_LG1 = _bits(0x3FE5555555555593)
_LG2 = _bits(0x3FD999999997FA04)
_LG3 = _bits(0x3FD2492494229359)
_LG4 = _bits(0x3FCC71C51D8E78AF)
_LG5 = _bits(0x3FC7466496CB03DE)
_LG6 = _bits(0x3FC39A09D078C69F)
_LG7 = _bits(0x3FC2F112DF3E5244)
_SQRT_HALF = _bits(0x3FE6A09E667F3BCD)  # √½ rounded down

# erf / erfc on [0, 0.84375): x + x·pp(x²)/qq(x²)
_ERX = _bits(0x3FEB0AC160000000)  # erf(1) rounded to 24 bits
_EFX = _bits(0x3FC06EBA8214DB69)
_PP = tuple(_bits(w) for w in (0x3FC06EBA8214DB68, 0xBFD4CD7D691CB913, 0xBF9D2A51DBD7194F,
                               0xBF77A291236668E4, 0xBEF8EAD6120016AC))
_QQ = tuple(_bits(w) for w in (0x3FD97779CDDADC09, 0x3FB0A54C5536CEBA, 0x3F74D022C4D36B0F,
                               0x3F215DC9221C1A10, 0xBED09C4342A26120))
# [0.84375, 1.25): erx + pa(s)/qa(s), s = x − 1
_PA = tuple(_bits(w) for w in (0xBF6359B8BEF77538, 0x3FDA8D00AD92B34D, 0xBFD7D240FBB8C3F1, 0x3FD45FCA805120E4,
                               0xBFBC63983D3E28EC, 0x3FA22A36599795EB, 0xBF61BF380A96073F))
_QA = tuple(_bits(w) for w in (0x3FBB3E6618EEE323, 0x3FE14AF092EB6F33, 0x3FB2635CD99FE9A7, 0x3FC02660E763351F,
                               0x3F8BEDC26B51DD1C, 0x3F888B545735151D))
# [1.25, 1/0.35): erfc = exp(−x² − 0.5625 + ra(z)/sa(z))/x, z = 1/x²
_RA = tuple(_bits(w) for w in (0xBF843412600D6435, 0xBFE63416E4BA7360, 0xC0251E0441B0E726, 0xC04F300AE4CBA38D,
                               0xC0644CB184282266, 0xC067135CEBCCABB2, 0xC054526557E4D2F2, 0xC023A0EFC69AC25C))
_SA = tuple(_bits(w) for w in (0x4033A6B9BD707687, 0x4061350C526AE721, 0x407B290DD58A1A71, 0x40842B1921EC2868,
                               0x407AD02157700314, 0x405B28A3EE48AE2C, 0x401A47EF8E484A93, 0xBFAEEFF2EE749A62))
# [1/0.35, 28): the same with rb/sb
_RB = tuple(_bits(w) for w in (0xBF84341239E86F4A, 0xBFE993BA70C285DE, 0xC031C209555F995A, 0xC064145D43C5ED98,
                               0xC083EC881375F228, 0xC09004616A2E5992, 0xC07E384E9BDC383F))
_SB = tuple(_bits(w) for w in (0x403E568B261D5190, 0x40745CAE221B9F0A, 0x409802EB189D5118, 0x40A8FFB7688C246A,
                               0x40A3F219CEDF3BE6, 0x407DA874E79FE763, 0xC03670E242712D62))
_PP0, _PP1, _PP2, _PP3, _PP4 = _PP
_QQ1, _QQ2, _QQ3, _QQ4, _QQ5 = _QQ
_PA0, _PA1, _PA2, _PA3, _PA4, _PA5, _PA6 = _PA
_QA1, _QA2, _QA3, _QA4, _QA5, _QA6 = _QA
_RA0, _RA1, _RA2, _RA3, _RA4, _RA5, _RA6, _RA7 = _RA
_SA1, _SA2, _SA3, _SA4, _SA5, _SA6, _SA7, _SA8 = _SA
_RB0, _RB1, _RB2, _RB3, _RB4, _RB5, _RB6 = _RB
_SB1, _SB2, _SB3, _SB4, _SB5, _SB6, _SB7 = _SB


@njit(cache=True)
def exp(x):
    """e^x (fdlibm ``e_exp.c``; error < 1 ulp)."""
    if x > _EXP_HI:
        return math.inf
    if x < _EXP_LO:
        return 0.0
    ax = abs(x)
    if ax < 3.725290298461914e-09:  # 2^-28: exp(x) rounds to 1 + x
        return 1.0 + x
    k = 0
    hi = x
    lo = 0.0
    if ax > 0.34657359027997264:  # ½ln2
        if ax < 1.0397207708399179:  # 1.5·ln2
            k = 1 if x > 0 else -1
        else:
            k = int(_INV_LN2 * x + (0.5 if x > 0 else -0.5))  # truncation toward 0, as C's cast
        hi = x - k * _LN2_HI
        lo = k * _LN2_LO
        x = hi - lo
    t = x * x
    c = x - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    if k == 0:
        return 1.0 - ((x * c) / (c - 2.0) - x)
    y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi)
    if k > 1023:  # k = 1024, y < 1 (x near the overflow threshold)
        return (y * 2.0) * _POW2[2045]
    if k >= -1021:  # y·2^k: exact unless the result is subnormal (then rounded once)
        return y * _POW2[k + 1022]
    return (y * _POW2[k + 2022]) * _TWO_M1000  # fdlibm's way for x < −708.4


@njit(cache=True)
def log(x):
    """ln x for x > 0 (fdlibm ``e_log.c``, its ``hfsq`` branch for every f; error < 1 ulp)."""
    m, e = math.frexp(x)  # x = m·2^e, ½ ≤ m < 1
    if m < _SQRT_HALF:
        m = m * 2.0
        e -= 1
    f = m - 1.0  # exact (Sterbenz)
    dk = float(e)
    if abs(f) < 9.5367431640625e-07:  # 2^-20
        if f == 0.0:
            return dk * _LN2_HI + dk * _LN2_LO
        r = f * f * (0.5 - 0.33333333333333333 * f)
        return f - r if e == 0 else dk * _LN2_HI - ((r - dk * _LN2_LO) - f)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    hfsq = 0.5 * f * f
    if e == 0:
        return f - (hfsq - s * (hfsq + r))
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)


@njit(cache=True)
def log1p(x):
    """ln(1 + x) for x > −1: ``log(u)·x/(u − 1)`` with ``u = 1 + x`` rounded, which cancels
    the rounding of u to first order (Goldberg 1991, Theorem 4); error ≤ 2 ulp."""
    u = 1.0 + x
    if u == 1.0:
        return x
    return log(u) * (x / (u - 1.0))


@njit(cache=True)
def _erfc_tail(x):
    """erfc(x) for 1.25 ≤ x < 28 (fdlibm ``s_erf.c`` cases 3–4)."""
    z = 1.0 / (x * x)
    if x < 2.857142857142857:  # 1/0.35
        r = _RA0 + z * (_RA1 + z * (_RA2 + z * (_RA3 + z * (_RA4 + z * (_RA5 + z * (_RA6 + z * _RA7))))))
        s = 1.0 + z * (_SA1 + z * (_SA2 + z * (_SA3 + z * (_SA4 + z * (_SA5 + z * (_SA6 + z * (_SA7 + z * _SA8)))))))
    else:
        r = _RB0 + z * (_RB1 + z * (_RB2 + z * (_RB3 + z * (_RB4 + z * (_RB5 + z * _RB6)))))
        s = 1.0 + z * (_SB1 + z * (_SB2 + z * (_SB3 + z * (_SB4 + z * (_SB5 + z * (_SB6 + z * _SB7))))))
    m, e = math.frexp(x)
    xt = math.ldexp(math.floor(math.ldexp(m, 21)), e - 21)  # x to 21 significant bits (fdlibm: low word 0)
    return exp(-xt * xt - 0.5625) * exp((xt - x) * (xt + x) + r / s) / x


@njit(cache=True)
def _erf_small(x):
    """x·pp(x²)/qq(x²) for |x| < 0.84375, i.e. erf(x) − x."""
    z = x * x
    r = _PP0 + z * (_PP1 + z * (_PP2 + z * (_PP3 + z * _PP4)))
    s = 1.0 + z * (_QQ1 + z * (_QQ2 + z * (_QQ3 + z * (_QQ4 + z * _QQ5))))
    return x * (r / s)


@njit(cache=True)
def _erf_mid(ax):
    """erf(|x|) − erx for 0.84375 ≤ |x| < 1.25."""
    s = ax - 1.0
    p = _PA0 + s * (_PA1 + s * (_PA2 + s * (_PA3 + s * (_PA4 + s * (_PA5 + s * _PA6)))))
    q = 1.0 + s * (_QA1 + s * (_QA2 + s * (_QA3 + s * (_QA4 + s * (_QA5 + s * _QA6)))))
    return p / q


@njit(cache=True)
def erfc(x):
    """1 − erf(x) (fdlibm ``s_erf.c``; error ≤ 2 ulp)."""
    ax = abs(x)
    if ax < 0.84375:
        if ax < 1.3877787807814457e-17:  # 2^-56
            return 1.0 - x
        y = _erf_small(x)
        if x < 0.25:
            return 1.0 - (x + y)
        return 0.5 - ((x - 0.5) + y)
    if ax < 1.25:
        d = _erf_mid(ax)
        return 1.0 - _ERX - d if x > 0 else 1.0 + (_ERX + d)
    if ax < 28.0:
        if x < -6.0:
            return 2.0
        t = _erfc_tail(ax)
        return t if x > 0 else 2.0 - t
    return 0.0 if x > 0 else 2.0


@njit(cache=True)
def erf(x):
    """erf(x) (fdlibm ``s_erf.c``; error ≤ 2 ulp)."""
    ax = abs(x)
    if ax < 0.84375:
        if ax < 3.725290298461914e-09:  # 2^-28
            return x + _EFX * x
        return x + _erf_small(x)
    if ax < 1.25:
        d = _erf_mid(ax)
        return _ERX + d if x > 0 else -_ERX - d
    t = 1.0 - _erfc_tail(ax) if ax < 6.0 else 1.0
    return t if x > 0 else -t
