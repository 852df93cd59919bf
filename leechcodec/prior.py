"""Exact, differentiable priors over quantizer codewords (torch).

The prior network predicts, for every token, two numbers per coordinate, ``a_i`` and
``b_i``, that define coordinate-factorized logits over the integer coordinates of the
codewords (DESIGN §3):

    ℓ(v) = Σ_i f_i(v_i),   f_i(v) = a_i·v − b_i·v²,    p(v) = exp ℓ(v) / Z.

This is an exponential family with sufficient statistics v and v²; a Gaussian in integer
coordinates, f_i(v) = −(v − m_i)²/(2 s_i²), is the special case a = m/s², b = 1/(2s²), and
allowing any real ``b`` also lets a coordinate prefer large magnitudes. ``f`` is smooth in
``v``, so the rate passes a useful gradient through the straight-through estimator.

Λ24 (integer coordinates, squared norm 32) — Z is exact, split by codeword shape:

- 4²:    Σ_{i<j} h_i h_j with log h_i = −16 b_i + log 2cosh(4 a_i);
- 2⁸:    Σ_octads ½ Π_{i∈O} e^{−4 b_i} 2cosh(2 a_i) · (1 + Π_{i∈O} tanh(2 a_i));
- 3·1²³: Σ_{Golay c} exp(Σ_i (s_i a_i − b_i)) · Σ_j exp(−8 b_j − 4 s_j a_j),  s = (−1)^c.

:func:`leech_log_partition` evaluates the three sums with positive terms only (no
cancellation) and computes the gradient in the same pass (kept, 48 numbers per token, for
backward). Every token goes through the same operations: no data-dependent branch, shape
or fallback, no ``nonzero`` and no host sync, real arithmetic only (it runs on the meta
device and under ``torch.compile``), and off the CPU one chunk for the whole batch.

- 4²: with ``m₁ ≥ m₂`` the two largest ``log h``, ``Σ_{i<j} h_i h_j / e^{m₁+m₂}`` is a prefix
  sum of terms ≤ 1 (any range of ``h``).
- 2⁸: per octad ``e^{K}·½(1 ± e^{−2B})`` with ``K = Σ_{i∈O} (log 2cosh(2a_i) − 4b_i)``,
  ``B = Σ_{i∈O} atanh(e^{−4|a_i|})`` (so ``e^{−2B} = Π |tanh 2a_i|``) and the sign the parity of
  the negative ``a_i`` in the octad. K, B and that count are one product with the 759×24
  octad indicator; the sum is ``e^{max K} Σ ½ e^{K − max K}·g`` with ``g = 1 + e^{−2B}`` for an
  even count and ``−expm1(−2B)`` for an odd one, which keeps an octad of odd parity exact
  when all its coordinates are sharp (``log(1 + Π tanh)`` loses it to cancellation, by up
  to tens of nats for |a| ≈ 16).
- 3·1²³: the 24 coordinates split into a trio of octads (three blocks of 8). A Golay word
  restricted to a block is an even pattern and the code contains each block's all-ones
  word, so each block's pattern folds with its complement: 64 classes per block. The class
  triples of the code are a Turyn-type set {(a + x, b + x, a + b + x)}: labelled
  ``(α, ξ) ∈ F₂³ × F₂³`` per block (:func:`_trio`, checked against all 4,096 words) they are
  ``(X₁[a, x], X₂[b, x], X₃[a ⊕ b, x])``, so the sum is Σ_x Σ_{a,b} X₁X₂X₃, an XOR
  convolution of 8-entry tables: 512 products per token instead of 4,096 words × 24
  coordinates. A class carries ``LV = log 2cosh ℓ`` (``±ℓ`` the sign sums ``Σ s_i a_i`` of
  its two patterns) and its mark ``R``, the pattern-weighted mean of the patterns' marked
  sums ``Σ_j e^{−8b_j − 4s_j a_j}`` over the block; a triple weighs ``e^{LV₁+LV₂+LV₃}`` and
  marks ``R₁ + R₂ + R₃``, a word's whole marked sum, which lies within ``e^{±4 max|a|}``
  (times 24) of a reference taken halfway between its bounds. The convolution runs in two log-domain stages (over β for each (α, ξ),
  then over (α, ξ)), each normalized by its largest term: no underflow at the code's deep
  holes, where the best Golay word is up to 8·4|a| nats below the unconstrained sign
  optimum, so no fallback.

Working precision: float64 for float64 inputs, and for every input off the CPU (a GPU's
float64 is cheap next to the transforms); float32 for float32 inputs on the CPU, exact to
float32 rounding while ``|a_i| ≤ 20`` (the marks' references stay within e^{±80} and
``e^{−4|a_i|}`` does not underflow; the model clamps ``|a| ≤ 16``), a batch with a larger
``|a_i|`` runs in float64 (a test on the host, which costs the CPU no sync). float64 is exact
for ``|a_i|`` up to about 170 and any ``b``. Exponent arguments are clamped at −80
(float32) / −700 (float64) and subnormal numbers are flushed while it runs (both only touch
terms far below rounding): the vector units are 30–100× slower on subnormal numbers. The
first implementation (three (N, 24) × (24, 4096) products and 4096-wide log-sum-exps per
token) is kept as :func:`_leech_log_partition_reference`.

BSQ (codewords sign(u)/√L, integer coordinates ±1): v² = 1, so b drops out and the
bits are independent with p(v_i = +1) = σ(2 a_i); the same (a, b) interface serves both.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import Tensor

from leechcodec.kernels import golay

__all__ = ["leech_log_partition", "leech_log_prob", "bsq_log_prob", "factorized_logits"]

_LOG_HALF = math.log(0.5)
_BETA_MAX = 20.0  # atanh(e^{−4|a|}) cap: e^{−40} is below float64 rounding next to 1


def _span(basis: list[int]) -> list[int]:
    """All XOR combinations of ``basis``; entry ``m`` combines the elements picked by the bits of m."""
    out = [0]
    for v in basis:
        out += [u ^ v for u in out]
    return out


def _trio() -> tuple[np.ndarray, np.ndarray]:
    """The trio of octads ``(3, 8)`` and the class labels ``L`` ``(3, 8, 8)`` of the Golay sum.

    A class is an even 8-bit block pattern modulo complement, named by its low 6 bits after
    complementing the patterns with bit 7 set (linear: classes add by XOR). ``L[k, α, ξ]``
    is chosen so that the code's class triples are exactly ``{(L[0, a, x], L[1, b, x],
    L[2, a ⊕ b, x])}``: α spans the triples that vanish on one block, ξ completes a basis.
    """
    masks = [int(m) for m in golay.OCTAD_MASKS]
    o1 = masks[0]
    o2 = next(m for m in masks if not m & o1)
    o3 = (1 << 24) - 1 - o1 - o2
    blocks = np.array([[i for i in range(24) if m >> i & 1] for m in (o1, o2, o3)])
    words = golay.GOLAY_WORDS.astype(np.int64)
    pats = np.stack([(words[:, blk] << np.arange(8)).sum(1) for blk in blocks], axis=1)
    cls = np.where(pats & 128, pats ^ 255, pats) & 63
    glue = set((cls << np.array([0, 6, 12])).sum(1).tolist())  # class triples packed in 18 bits
    to3 = {w & 63: w >> 12 for w in glue if not (w >> 6) & 63}  # (α₁, 0, α₃) in the code
    alpha = []  # (α₁, α₂, α₃) with (α₁, α₂, 0) and (α₁, 0, α₃) in the code
    for w in sorted(glue):
        if w >> 12 == 0 and (w | to3[w & 63] << 12) not in _span(alpha):
            alpha.append(w | to3[w & 63] << 12)
    al = _span(alpha)
    base = {(al[a] ^ al[b]) & 63 | al[a] & 63 << 6 | al[b] & 63 << 12 for a in range(8) for b in range(8)}
    xi = []
    for w in sorted(glue):
        if all(w ^ s not in base for s in _span(xi)):
            xi.append(w)
    xs = _span(xi)
    label = np.array([[[(al[a] ^ xs[x]) >> 6 * k & 63 for x in range(8)] for a in range(8)] for k in range(3)])
    triples = {label[0, a, x] | label[1, b, x] << 6 | label[2, a ^ b, x] << 12
               for a in range(8) for b in range(8) for x in range(8)}
    if o3 not in masks or len(alpha) != 3 or len(xi) != 3 or triples != glue:
        raise RuntimeError("the Golay code lacks the expected trio structure")
    return blocks, label


_BLOCKS, _LABEL = _trio()

_cache: dict = {}


def _numpy_tables() -> dict[str, np.ndarray]:
    """The constant tables as numpy arrays (float64 or int64)."""
    cls = _LABEL.reshape(3, 64)  # block classes in (α, ξ) order
    rep = (cls | (np.vectorize(lambda c: bin(c).count("1") & 1)(cls) << 6))[..., None] >> np.arange(8) & 1
    rho = np.concatenate([np.concatenate([rep, 1 - rep], 2), np.concatenate([1 - rep, rep], 2)], 1)
    octads = golay.OCTAD_INDICATOR.astype(np.float64)
    tables = {
        "perm": _BLOCKS.ravel(),
        "rep": -2.0 * rep, "sgn_t": 1.0 - 2.0 * rep.transpose(0, 2, 1),  # (3, 64, 8) −2·bits; (3, 8, 64) signs
        "rho": rho, "rho_t": rho.transpose(0, 2, 1),  # (3, 128, 16): [e¹ | e⁰] per pattern
        "xor": np.bitwise_xor.outer(np.arange(8), np.arange(8)).ravel(),
        "oct_t": octads.T, "oct": octads,  # (24, 759), (759, 24)
        # reference implementation
        "g_t": golay.GOLAY_WORDS.T, "gbar_t": 1 - golay.GOLAY_WORDS.T.astype(np.float64),
    }
    return {k: np.ascontiguousarray(v, dtype=np.int64 if k in _INDEX_TABLES else np.float64) for k, v in tables.items()}


_INDEX_TABLES = ("perm", "xor")
_NP_TABLES = _numpy_tables()


def _tables(dtype: torch.dtype, device: torch.device) -> dict[str, Tensor]:
    """Constant tables in ``dtype`` on ``device`` (built once per pair; index tables int64)."""
    key = (dtype, str(device))
    if key not in _cache:
        _cache[key] = {k: torch.as_tensor(v, dtype=torch.int64 if k in _INDEX_TABLES else dtype, device=device)
                       for k, v in _NP_TABLES.items()}
    return _cache[key]


def _log2cosh(x: Tensor) -> Tensor:
    ax = x.abs()
    return ax + torch.log1p(torch.exp(-2 * ax))


_RANGE32 = 20.0  # float32 parameters are exact for |a_i| ≤ 20 (module docstring)


def _lo(dtype: torch.dtype) -> float:
    """Smallest exponent argument used: e^lo is a normal number far below rounding."""
    return -700.0 if dtype == torch.float64 else -80.0


@contextlib.contextmanager
def _denormals_flushed(device: torch.device):
    """Flush subnormal numbers on this thread while inside, then restore the caller's mode
    (a CPU setting: for other devices nothing happens, so nothing stops a compiled graph)."""
    if device.type != "cpu":
        yield
        return
    probe = torch.tensor([1e-30], dtype=torch.float32) * 1e-10  # 1e-40 is subnormal in float32
    changed = probe.item() != 0.0 and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def _chunk(device: torch.device) -> int:
    """Tokens per chunk: all of them off the CPU (one pass, no per-chunk kernels); on the CPU
    a fixed size that keeps the work arrays in cache (measured on one core)."""
    return 1 << 62 if device.type != "cpu" else 512


def _pair_term(a: Tensor, b: Tensor, grad: bool):
    """Shape 4²: ``log Σ_{i<j} h_i h_j`` ``(N,)`` (and gradients ``(N, 24)``),
    every product referenced at the top pair.

    With ``m₁ ≥ m₂`` the two largest ``log h`` (m₁ at ``top``), the sum is ``e^{m₁+m₂}·(Σ_{j≠top} v_j
    + Σ_{i<j; i,j≠top} u_i v_j)``, ``u = h e^{−m₁} ≤ 1``, ``v = h e^{−m₂} ≤ 1``: prefix sums of
    positive terms, no overflow and no cancellation for any range of ``h``.
    """
    lo = _lo(a.dtype)
    lh = _log2cosh(4 * a) - 16 * b
    m1, top = lh.max(1, keepdim=True)
    rest = lh.scatter(1, top, -math.inf)
    m2 = rest.amax(1, keepdim=True)
    u = torch.exp((rest - m1).clamp_min_(lo)).scatter_(1, top, 0.0)
    v = torch.exp((rest - m2).clamp_min_(lo)).scatter_(1, top, 0.0)
    zero = torch.zeros_like(u[:, :1])
    before = torch.cat([zero, torch.cumsum(u[:, :-1], 1)], 1)  # Σ_{i<j, i≠top} u_i
    lead = v.sum(1)
    total = lead + (v * before).sum(1)
    value = torch.log(total) + (m1 + m2)[:, 0]
    if not grad:
        return value, None, None
    after = torch.cat([torch.cumsum(u[:, 1:].flip(1), 1).flip(1), zero], 1)
    glh = (v * (1 + before + after)).scatter_(1, top, lead[:, None]) / total[:, None]  # h_k Σ_{i≠k} h_i / Z
    return value, 4 * torch.tanh(4 * a) * glh, -16 * glh


def _octad_term(a: Tensor, b: Tensor, grad: bool):
    """Shape 2⁸ (module docstring): log Z₁ ``(N,)`` and, if ``grad``, its gradients ``(N, 24)``.

    Per octad ``e^{K}·½(1 ± e^{−2B})``, taken as ``½ e^{K − max K}·g``: ``g = 1 + e^{−2B}`` for an
    even count of negative ``a_i``, ``−expm1(−2B)`` for an odd one; with ``h = expm1(−2B)`` and
    ``s = ±1`` that is ``g = s·h + s + 1``, positive terms, no cancellation (``1 + e^{−2B}`` from
    ``2 + h`` only loses absolute precision below 1e-16 of a number ≥ 1).
    """
    t, lo = _tables(a.dtype, a.device), _lo(a.dtype)
    aa, neg = a.abs(), (a < 0).to(a.dtype)
    w = torch.exp((-4 * aa).clamp_min(lo))  # ≥ e^lo, so every B > 0
    lp = torch.log1p(w)
    om = -torch.expm1(-4 * aa)  # 1 − w without cancellation
    beta = torch.where(w < 0.5, torch.atanh(w), 0.5 * (lp - torch.log(om))).clamp_max_(_BETA_MAX)
    x = torch.stack([(2 * aa + lp).sub_(4 * b), beta, 0.5 * neg])  # log 2cosh(2a) − 4b, β, ½[a < 0]: (3, N, 24)
    y = torch.matmul(x, t["oct_t"])  # K, B, ½·(negative count): (3, N, 759), then worked in place
    ek, h, sgn = y.unbind(0)
    top = ek.amax(1, keepdim=True)
    ek.sub_(top).clamp_min_(lo).exp_()  # e^{K − top}
    h.mul_(-2.0)
    e2b = torch.exp(h) if grad else None  # e^{−2B}, for ∂/∂B
    h.expm1_()  # e^{−2B} − 1, accurate for small B
    sgn.frac_().mul_(-4.0).add_(1.0)  # +1 for an even count of negative a_i, −1 for an odd one
    term = h.mul_(sgn).add_(sgn + 1.0).mul_(ek)  # e^{K − top}·(1 ± e^{−2B}), in h's place (s + 1 first: exact)
    total = term.sum(1, keepdim=True)
    value = (top + torch.log(0.5 * total))[:, 0]
    if not grad:
        return value, None, None
    term.div_(total)  # ∂/∂K
    ek.mul_(e2b).mul_(sgn).mul_(-2.0 / total)  # ∂/∂B = ∓2 e^{K − top − 2B} / total
    gb, gk = torch.matmul(y[:2], t["oct"])  # (N, 24) each
    # dβ/da = −sgn(a)·sech²(2a) / e^{−2β}: exact, and at the cap it keeps the term of e^{−2β}
    # that the cap stands for (d tanh 2|a| / da ≠ 0 at a = 0); a = 0 counts as positive, as above.
    dbeta = (2 * neg - 1).div_(torch.cosh(2 * a).square_().mul_(torch.exp(-2 * beta)))
    return value, 2 * torch.tanh(2 * a) * gk + dbeta * gb, -4 * gk


def _golay_term(a: Tensor, b: Tensor, grad: bool):
    """Shape 3·1²³ (module docstring): log Z₂ ``(N,)`` and, if ``grad``, its gradients.

    Per block and class (pattern ``p`` and its complement, sign sums ``±ℓ``): ``LV = log 2cosh ℓ``
    and the class's mark ``R = σ m_p + (1 − σ) m_p̄`` (``σ = sigmoid 2ℓ``, ``m`` the pattern's
    marked sum ``Σ_j e^{d_j − D}`` over the block, ``D`` halfway between a lower and an upper
    bound of a whole word's marked sum, so that every triple's ``R₁ + R₂ + R₃`` lies within
    ``[e^{−4 max|a|}, 24 e^{4 max|a|}]``; block terms below that only drop what is below
    rounding). The code's class triples
    ``(X₁[α, ξ], X₂[β, ξ], X₃[α ⊕ β, ξ])`` are summed in two log-domain stages: over β with
    ``E = e^{LV₂ + LV₃ − max_β}``, then over (α, ξ) with ``e^{LV₁ + max_β − F}``; marks add
    along (``R₁ + R₂ + R₃`` per triple). Every stage's largest term is 1: no underflow, no
    fallback, for any range of ``b`` and ``|a|`` up to about 170.
    """
    n, dev = a.shape[0], a.device
    t, lo = _tables(a.dtype, dev), _lo(a.dtype)
    perm, xor = t["perm"], t["xor"]
    ap = a[:, perm].T.reshape(3, 8, n)
    bp = b[:, perm].T.reshape(3, 8, n)
    # Marks: d_j = −8 b_j ± 4 a_j (c_j = 1, then c_j = 0), referenced at the midpoint D.
    d = torch.cat([4 * ap - 8 * bp, -4 * ap - 8 * bp], 1)  # (3, 16, N)
    upper = (-8 * bp + 4 * ap.abs()).amax((0, 1))  # a triple's mark is below 24 e^upper ...
    lower = (-8 * bp - 4 * ap.abs()).amax((0, 1))  # ... and above e^lower, and upper − lower ≤ 8 max |a|
    ref = 0.5 * (upper + lower)
    e = torch.exp((d - ref).clamp_min_(lo))
    m = torch.bmm(t["rho"], e).view(3, 2, 64, n)  # marks of the class representatives, complements
    # Sign sums ℓ = Σ_i s_i a_i of the representatives (complements: −ℓ).
    ell = torch.bmm(t["rep"], ap).add_(ap.sum(1, keepdim=True))  # (3, 64, N)
    al = ell.abs()
    wq = torch.exp(-2 * al)
    lv = torch.log1p(wq).add_(al).view(3, 8, 8, n)  # log 2cosh ℓ, (block, α, ξ, N)
    pos = ell >= 0
    inv = wq.add(1.0).reciprocal_()
    wq.mul_(inv)
    sig, sig_c = torch.where(pos, inv, wq), torch.where(pos, wq, inv)  # sigmoid(2ℓ), 1 − sigmoid(2ℓ): no cancellation
    r = torch.addcmul(sig * m[:, 0], sig_c, m[:, 1]).view(3, 8, 8, n)
    # Stage 1, over β for each (α, ξ): X₂[β] X₃[α ⊕ β].
    ew = lv[2].reshape(8, 8 * n).index_select(0, xor).view(8, 8, 8, n).add_(lv[1])  # [α, β, ξ]: LV₂[β] + LV₃[α ⊕ β]
    rr = r[2].reshape(8, 8 * n).index_select(0, xor).view(8, 8, 8, n)
    gmax = ew.amax(1, keepdim=True)
    ew.sub_(gmax).exp_()  # (α, β, ξ, N)
    yv = ew.sum(1)  # (α, ξ, N), ≥ 1
    rr.add_(r[1])  # R₂ + R₃ per (α, β, ξ)
    ym = (ew * rr).sum(1)
    # Stage 2, over (α, ξ).
    h2 = lv[0] + gmax[:, 0]
    f = h2.amax((0, 1))
    w1 = h2.sub_(f).exp_()  # (α, ξ, N)
    total = (w1 * (yv * r[0] + ym)).sum((0, 1))
    value = torch.log(total) + f + ref - b.sum(1)
    if not grad:
        return value, None, None
    # Triple weights W[α, β, ξ] and W·(R₁ + R₂ + R₃), divided by the total; block 1's
    # marginals follow from the stage-1 sums, blocks 2 and 3 sum over α and over α ⊕ β = γ.
    w1.div_(total)
    wt = ew.mul_(w1.unsqueeze(1))
    wm = rr.add_(r[0].unsqueeze(1)).mul_(wt)
    gl = torch.stack([w1 * (ym + r[0] * yv), wm.sum(0), _xor_sum(wm, xor)])  # ∂ log Z₂/∂LV: (3, 8, 8, N)
    gr = torch.stack([w1 * yv, wt.sum(0), _xor_sum(wt, xor)])  # ∂ log Z₂/∂R
    gl, gr = gl.view(3, 64, n), gr.view(3, 64, n)
    # Through LV = log 2cosh ℓ and R = σ m_p + (1 − σ) m_p̄.
    gm = torch.stack([gr * sig, gr * sig_c], 1)  # ∂/∂m: (3, 2, 64, N)
    gell = (m[:, 0] - m[:, 1]).mul_(2 * sig_c).mul_(gm[:, 0]).add_(sig.sub_(sig_c).mul_(gl))  # tanh ℓ = σ − (1 − σ)
    gm = gm.view(3, 128, n)
    ge = torch.bmm(t["rho_t"], gm).mul_(e)  # ∂/∂d: (3, 16, N)
    ga = torch.bmm(t["sgn_t"], gell).add_(4 * (ge[:, :8] - ge[:, 8:]))  # ∂ℓ/∂a_i = s_i; ∂d/∂a = ±4
    gbp = -8 * (ge[:, :8] + ge[:, 8:])
    ga_out, gb_out = torch.empty_like(a), torch.empty_like(b)
    ga_out[:, perm] = ga.view(24, n).T
    gb_out[:, perm] = gbp.view(24, n).T - 1
    return value, ga_out, gb_out


def _xor_sum(w: Tensor, xor: Tensor) -> Tensor:
    """``out[γ, ξ] = Σ_α w[α, α ⊕ γ, ξ]`` for ``w`` ``(8 α, 8 β, 8 ξ, N)``: the block-3 marginal."""
    n = w.shape[-1]
    rows = (torch.arange(8, device=w.device)[:, None] * 8 + xor.view(8, 8)).reshape(-1)  # α·8 + α⊕γ, by (α, γ)
    return w.reshape(64, 8 * n).index_select(0, rows).view(8, 8, 8, n).sum(0)


def _log_partition(a: Tensor, b: Tensor, grad: bool):
    """log Z ``(N,)`` and, if ``grad``, ∂ log Z/∂a and ∂/∂b ``(N, 24)``.

    The same operations for every token: no data-dependent branch or shape, no host sync,
    a fixed number of chunks for a given N. Working precision: float64 for float64 inputs
    and off the CPU; float32 for float32 inputs on the CPU, where a batch holding some
    ``|a_i| > 20`` runs in float64 instead (a host-side test, free on the CPU).
    """
    wide = a.dtype == torch.float64 or a.device.type != "cpu"
    wd = torch.float64 if wide else torch.float32
    a, b = a.to(wd).contiguous(), b.to(wd).contiguous()
    if not wide and bool((a.abs() > _RANGE32).any()):
        a, b = a.double(), b.double()
    v0, ga0, gb0 = _pair_term(a, b, grad)  # (N, 24) work: never chunked
    v1, ga1, gb1 = _chunked(_octad_term, a, b, grad)
    v2, ga2, gb2 = _chunked(_golay_term, a, b, grad)
    v = torch.stack([v0, v1, v2])
    value = torch.logsumexp(v, 0)
    if not grad:
        return value, None, None
    w = torch.exp(v - value)[:, :, None]
    return value, w[0] * ga0 + w[1] * ga1 + w[2] * ga2, w[0] * gb0 + w[1] * gb1 + w[2] * gb2


def _chunked(term, a: Tensor, b: Tensor, grad: bool):
    """``term`` over chunks of ``_chunk`` tokens (one chunk off the CPU), results concatenated."""
    size = _chunk(a.device)
    if a.shape[0] <= size:
        return term(a, b, grad)
    parts = [term(ac, bc, grad) for ac, bc in zip(a.split(size), b.split(size))]
    return tuple(None if p[0] is None else torch.cat(p) for p in zip(*parts))


class _LeechLogPartition(torch.autograd.Function):
    """log Z with its gradient computed in the forward pass and kept (``(N, 24)`` × 2)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        with _denormals_flushed(a.device):
            value, ga, gb = _log_partition(a.detach(), b.detach(), True)
        ctx.save_for_backward(ga.to(a.dtype), gb.to(b.dtype))
        return value.to(a.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        ga, gb = ctx.saved_tensors
        return grad[:, None] * ga, grad[:, None] * gb


def leech_log_partition(a: Tensor, b: Tensor) -> Tensor:
    """log Z over the 196,560 Λ24 codewords.

    Args:
        a, b: ``(N, 24)`` float tensors, the per-coordinate natural parameters.

    Returns:
        ``(N,)`` log Z in a's dtype, exact up to floating-point rounding; differentiable
        in ``a`` and ``b`` (first order).
    """
    if a.shape[0] == 0:
        return (a.sum(1) + b.sum(1)) * 0
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return _LeechLogPartition.apply(a, b)
    with _denormals_flushed(a.device):
        return _log_partition(a, b, False)[0].to(a.dtype)


# ---------------------------------------------------------------- reference implementation
_REF_CHUNK = 512


def _leech_log_partition_reference(a: Tensor, b: Tensor) -> Tensor:
    """The previous log Z: three (N, 24) × (24, 4096) products and 4096-wide log-sum-exps.

    Kept as the comparison baseline for tests and ``bench_prior``. Its octad term,
    ``log(1 + Π tanh)``, cancels when an octad's sign parity is odd and its ``|a_i|`` large.
    """
    t = _tables(a.dtype, a.device)
    pi, pj = torch.triu_indices(24, 24, offset=1, device=a.device)
    # Shape 4²: all 276 pairs.
    lh = -16 * b + _log2cosh(4 * a)
    s0 = torch.logsumexp(lh[:, pi] + lh[:, pj], dim=1)
    # Shape 2⁸: 759 octads, with the even-sign constraint through the tanh product.
    la = -4 * b + _log2cosh(2 * a)
    r = torch.tanh(2 * a)
    log_abs_r = torch.log(r.abs().clamp_min(1e-30))
    negative = (r < 0).to(a.dtype)
    parity = torch.remainder(negative @ t["oct_t"], 2)  # (N, 759) count of negative factors mod 2
    prod_r = (1 - 2 * parity) * torch.exp(log_abs_r @ t["oct_t"])
    s1 = torch.logsumexp(_LOG_HALF + la @ t["oct_t"] + torch.log((1 + prod_r).clamp_min(1e-30)), dim=1)
    # Shape 3·1²³: 4096 Golay sign patterns s = 1 − 2c (hand-written backward, chunked).
    s2 = _ReferenceGolayTerm.apply(a, b)
    return torch.logsumexp(torch.stack([s0, s1, s2], dim=1), dim=1)


def _reference_golay_chunk(a: Tensor, b: Tensor, gt: Tensor, gbar_t: Tensor):
    """Shape-3·1²³ pieces for a chunk of tokens: log-sum, softmax weights W and P/S (V)."""
    outer = -2 * (a @ gt)  # Σ_i s_i a_i without the constant Σ_i a_i
    big = outer.amax(dim=1, keepdim=True)
    p = torch.exp(outer - big)
    e_plus = -8 * b - 4 * a  # c_j = 0 (s_j = +1)
    e_minus = -8 * b + 4 * a  # c_j = 1 (s_j = −1)
    m = torch.maximum(e_plus, e_minus).amax(dim=1, keepdim=True)
    e_plus, e_minus = torch.exp(e_plus - m), torch.exp(e_minus - m)
    inner = e_minus @ gt + e_plus @ gbar_t
    total = (p * inner).sum(dim=1, keepdim=True)
    value = torch.log(total) + big + m + a.sum(1, keepdim=True) - b.sum(1, keepdim=True)
    return value[:, 0], p, inner, total, e_plus, e_minus


class _ReferenceGolayTerm(torch.autograd.Function):
    """log Σ_c exp(Σ_i s_i a_i − b_i) Σ_j exp(−8 b_j − 4 s_j a_j) over the 4096 Golay words."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        t = _tables(a.dtype, a.device)
        ctx.save_for_backward(a, b)
        return torch.cat([_reference_golay_chunk(ac, bc, t["g_t"], t["gbar_t"])[0]
                          for ac, bc in zip(a.split(_REF_CHUNK), b.split(_REF_CHUNK))])

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        t = _tables(a.dtype, a.device)
        gt, gbar_t = t["g_t"], t["gbar_t"]
        ga, gb = [], []
        for ac, bc, gc in zip(a.split(_REF_CHUNK), b.split(_REF_CHUNK), grad.split(_REF_CHUNK)):
            _, p, inner, total, e_plus, e_minus = _reference_golay_chunk(ac, bc, gt, gbar_t)
            v = p / total  # ∂/∂inner
            w = v * inner  # ∂/∂outer (softmax weights over the Golay words)
            vg, vgbar = v @ gt.T, v @ gbar_t.T  # (n, 24)
            da = 1 - 2 * (w @ gt.T) + 4 * e_minus * vg - 4 * e_plus * vgbar
            db = -1 - 8 * e_minus * vg - 8 * e_plus * vgbar
            ga.append(da * gc[:, None])
            gb.append(db * gc[:, None])
        return torch.cat(ga), torch.cat(gb)


# ---------------------------------------------------------------- log-probabilities
def factorized_logits(a: Tensor, b: Tensor, v: Tensor) -> Tensor:
    """ℓ(v) = Σ_i a_i v_i − b_i v_i² for ``(N, D)`` parameters and codes; returns ``(N,)``."""
    return (a * v - b * v * v).sum(dim=1)


def leech_log_prob(a: Tensor, b: Tensor, v: Tensor) -> Tensor:
    """Exact log p(v) of integer-coordinate Λ24 codes ``v`` ``(N, 24)``; returns ``(N,)``.

    ``v`` may carry a straight-through gradient; its values must be codewords.
    """
    return factorized_logits(a, b, v) - leech_log_partition(a, b)


def bsq_log_prob(a: Tensor, v: Tensor) -> Tensor:
    """Exact log p(v) of BSQ codes ``v`` ∈ {±1}^L ``(N, L)`` under independent bits; ``(N,)``."""
    return torch.nn.functional.logsigmoid(2 * a * v).sum(dim=1)
