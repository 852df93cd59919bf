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
cancellation) in token chunks and computes the gradient in the same pass (kept, 48 numbers
per token, for backward):

- 4²: with ``m₁ ≥ m₂`` the two largest ``log h``, ``Σ_{i<j} h_i h_j / e^{m₁+m₂}`` is a prefix
  sum of terms ≤ 1 (any range of ``h``).
- 2⁸: per octad ``e^{K}·½(1 ± e^{−2B})`` with ``K = Σ_{i∈O} (log 2cosh(2a_i) − 4b_i)``,
  ``B = Σ_{i∈O} atanh(e^{−4|a_i|})`` (so ``e^{−2B} = Π |tanh 2a_i|``) and the sign the parity of
  the negative ``a_i`` in the octad. K, B and that count are one product with the 759×24
  octad indicator; ``log ½(1 ± e^{−2B}) = −log(1 + tanh B) + [odd]·log tanh B`` keeps an
  octad of odd parity exact when all its coordinates are sharp (the previous
  ``log(1 + Π tanh)`` lost it to cancellation, by up to tens of nats for |a| ≈ 16).
- 3·1²³: the 24 coordinates split into a trio of octads (three blocks of 8). A Golay word
  restricted to a block is an even pattern and the code contains each block's all-ones
  word, so each block's pattern folds with its complement: 64 classes per block with
  ``U`` = the folded product of the sign factors ``e^{s_i a_i − b_i}`` and ``Q`` = the same
  with one marked coordinate (``× e^{−8b_j − 4s_j a_j}``, summed over the block). The class
  triples of the code are a Turyn-type set {(a + x, b + x, a + b + x)}: labelled
  ``(α, ξ) ∈ F₂³ × F₂³`` per block (:func:`_trio`, checked against all 4,096 words) they are
  ``(X₁[a, x], X₂[b, x], X₃[a ⊕ b, x])``, so the sum is Σ_x Σ_{a,b} X₁X₂X₃, an XOR
  convolution of 8-entry tables: 512 products per token instead of 4,096 words × 24
  coordinates, and 3·128 exponentials instead of 4,096. The marked sum
  ``Σ_k Q_k Π_{l≠k} U_l`` is the imaginary part of the product of ``U + iηQ`` (complex
  step; η = 2⁻²⁰ / 2⁻⁴⁰ puts the η² remainder below rounding). Tables are normalized by
  their block maxima; the normalized sum S is ≥ e⁻²⁵⁶ for |a| ≤ 16 (the Golay
  code's covering radius is 4, and the marked factor loses at most 8|a_j|).

float64 inputs are computed in float64, others in float32. A float32 token is recomputed
in float64 when some ``|a_i|`` or ``|b_i|`` exceeds 20 or its Golay sum S is below e⁻⁴⁸ (above
it, what the clamps, underflow and η add or drop is below 2e-8 of the sum; measured, the
rerun takes 0.1% of the tokens for a ~ N(0, 4²), 8% for N(0, 6²), 90% for N(0, 16²) and
none of a trained model's); a float64 token whose S is below e⁻⁶⁰⁰ takes the log-domain
4,096-word Golay sum. Exponent arguments are clamped at −80 (float32)
/ −700 (float64) and subnormal numbers are flushed while it runs (both only touch terms
far below rounding): the vector units are 30–100× slower on subnormal numbers.
The previous implementation (three (N, 24) × (24, 4096) products and 4096-wide
log-sum-exps per token) is kept as :func:`_leech_log_partition_reference`.

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
_S_MIN32 = math.exp(-48.0)  # float32 Golay sums below this are recomputed in float64 ...
_S_MIN64 = math.exp(-600.0)  # ... and float64 ones below this by the log-domain reference
_RANGE32 = 20.0  # float32 tokens with a larger |a_i| or |b_i| are recomputed in float64


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


def _tables(dtype: torch.dtype, device: torch.device) -> dict[str, Tensor]:
    """Constant tables in ``dtype`` on ``device`` (built once per pair)."""
    key = (dtype, str(device))
    if key not in _cache:
        f = lambda x: torch.tensor(np.ascontiguousarray(x), dtype=dtype, device=device)  # noqa: E731
        cls = _LABEL.reshape(3, 64)  # block classes in (α, ξ) order
        rep = (cls | (np.vectorize(lambda c: bin(c).count("1") & 1)(cls) << 6))[..., None] >> np.arange(8) & 1
        rho = np.concatenate([np.concatenate([rep, 1 - rep], 2), np.concatenate([1 - rep, rep], 2)], 1)
        octads = golay.OCTAD_INDICATOR.astype(np.float64)
        _cache[key] = {
            "perm": torch.as_tensor(_BLOCKS.ravel(), device=device),
            "rep": f(-2.0 * rep), "rep_t": f(-2.0 * rep.transpose(0, 2, 1)),  # (3, 64, 8) −2·bits
            "rho": f(rho), "rho_t": f(rho.transpose(0, 2, 1)),  # (3, 128, 16): [e¹ | e⁰] per pattern
            "xor": torch.as_tensor(np.bitwise_xor.outer(np.arange(8), np.arange(8)).ravel(), device=device),
            "oct_t": f(octads.T), "oct": f(octads),  # (24, 759), (759, 24)
            # reference implementation
            "g_t": f(golay.GOLAY_WORDS.T), "gbar_t": f(1 - golay.GOLAY_WORDS.T.astype(np.float64)),
        }
    return _cache[key]


def _log2cosh(x: Tensor) -> Tensor:
    ax = x.abs()
    return ax + torch.log1p(torch.exp(-2 * ax))


def _lo(dtype: torch.dtype) -> float:
    """Smallest exponent argument used: e^lo is a normal number far below rounding."""
    return -700.0 if dtype == torch.float64 else -80.0


@contextlib.contextmanager
def _denormals_flushed():
    """Flush subnormal numbers on this thread while inside, then restore the caller's mode."""
    probe = torch.tensor([1e-30], dtype=torch.float32) * 1e-10  # 1e-40 is subnormal in float32
    changed = probe.item() != 0.0 and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def _chunk(device: torch.device, dtype: torch.dtype) -> int:
    """Tokens per chunk (measured on one CPU core: larger chunks pay less per-op overhead,
    smaller ones keep the work arrays in cache)."""
    if device.type != "cpu":
        return 8192
    return 256 if dtype == torch.float64 else 512


def _pair_term(a: Tensor, b: Tensor, grad: bool):
    """Shape 4² in a's dtype: ``log Σ_{i<j} h_i h_j`` ``(N,)`` (and gradients ``(N, 24)``),
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
    """Shape 2⁸ in a's dtype (module docstring): log Z₁ ``(N,)`` and, if ``grad``, its
    gradients ``(N, 24)`` for ``(N, 24)`` parameters.

    Per octad ``log(e^{K}·½(1 ± e^{−2B})) = K − log(1 + tanh B) + [odd]·log tanh B``.
    """
    n, dt, lo = a.shape[0], a.dtype, _lo(a.dtype)
    t = _tables(dt, a.device)
    aa, neg = a.abs(), (a < 0).to(dt)
    w = torch.exp((-4 * aa).clamp_min(lo))  # ≥ e^lo, so every B > 0
    lp = torch.log1p(w)
    om = -torch.expm1(-4 * aa)  # 1 − w without cancellation
    beta = torch.where(w < 0.5, torch.atanh(w), 0.5 * (lp - torch.log(om))).clamp_max_(_BETA_MAX)
    x = torch.stack([(2 * aa + lp).sub_(4 * b), beta, 0.5 * neg])  # log 2cosh(2a) − 4b, β, ½[a < 0]: (3, N, 24)
    value = torch.empty(n, dtype=dt, device=a.device)
    g = torch.empty(2, n, 24, dtype=dt, device=a.device) if grad else None
    size = _chunk(a.device, dt)
    oct_t, oct_ = t["oct_t"].expand(3, 24, 759), t["oct"].expand(2, 759, 24)
    ws = None
    for s in range(0, n, size):
        c = min(size, n - s)
        if ws is None or ws[0].shape[1] != c:
            ws = (a.new_empty(3, c, 759), a.new_empty(c, 759), a.new_empty(c, 759), a.new_empty(2, c, 759))
        y, th, lt, e = ws
        k, bb, odd = torch.bmm(x[:, s:s + c], oct_t, out=y).unbind(0)  # K, B, ½·(negative count)
        odd.frac_()  # ½ if the count is odd, else 0
        torch.log(torch.tanh(bb, out=th), out=lt)
        big = torch.sub(k, th.add_(1.0).log_(), out=e[0]).addcmul_(odd, lt, value=2.0)  # log of the octad's term
        top = big.amax(1, keepdim=True)
        total = big.sub_(top).clamp_min_(lo).exp_().sum(1)
        value[s:s + c] = top[:, 0] + torch.log(total)
        if grad:  # ∂/∂K = P_o = e[0]/total;  ∂/∂B = −sign_o e^{K − 2B − log Z₁}, sign_o = 1 − 4·odd
            eb = torch.add(k, bb, alpha=-2.0, out=e[1]).sub_(top).clamp_min_(lo).exp_()
            eb.addcmul_(eb, odd, value=-4.0)
            g[:, s:s + c] = torch.bmm(e, oct_).div_(total[:, None])  # ∂/∂(Σ la), −∂/∂(Σ β)
    if not grad:
        return value, None, None
    # dβ/da = −sgn(a)·sech²(2a) / e^{−2β}: exact, and at the cap it keeps the term of e^{−2β}
    # that the cap stands for (d tanh 2|a| / da ≠ 0 at a = 0); a = 0 counts as positive, as above.
    dbeta = (2 * neg - 1).div_(torch.cosh(2 * a).square_().mul_(torch.exp(-2 * beta)))
    return value, 2 * torch.tanh(2 * a) * g[0] - dbeta * g[1], -4 * g[0]


def _golay_term(a: Tensor, b: Tensor, grad: bool):
    """Shape 3·1²³ in a's dtype (module docstring) for ``(N, 24)`` parameters.

    Returns log Z₂ ``(N,)``, the normalized sum S ``(N,)`` (fallback test) and, if ``grad``,
    ∂ log Z₂/∂a and ∂/∂b ``(N, 24)``.
    """
    n, dt, lo = a.shape[0], a.dtype, _lo(a.dtype)
    cdt = torch.complex128 if dt == torch.float64 else torch.complex64
    eta = 2.0**-40 if dt == torch.float64 else 2.0**-20
    t = _tables(dt, a.device)
    perm, xor = t["perm"], t["xor"]
    ap = a[:, perm].T.reshape(3, 8, n).contiguous()
    bp = b[:, perm].T.reshape(3, 8, n)
    d = torch.cat([4 * ap - 8 * bp, -4 * ap - 8 * bp], 1)  # (3, 16, N): c_j = 1, then c_j = 0
    dmax = d.amax((0, 1))
    e = torch.exp((d - dmax).clamp_min_(lo))
    tot = -2 * ap.sum(1, keepdim=True)
    const = dmax + a.sum(1) - b.sum(1)
    eta_rho = eta * t["rho"]
    value = torch.empty(n, dtype=dt, device=a.device)
    s_all = torch.empty(n, dtype=dt, device=a.device)
    gap = torch.empty(3, 8, n, dtype=dt, device=a.device) if grad else None
    gbp = torch.empty(3, 8, n, dtype=dt, device=a.device) if grad else None
    size = _chunk(a.device, dt)
    ws = None
    for s in range(0, n, size):
        c = min(size, n - s)
        if ws is None or ws[0].shape[-1] != c:
            ws = (a.new_empty(3, 2, 64, c), a.new_empty(2, 3, 64, c), torch.empty(64, 8 * c, dtype=cdt, device=a.device),
                  torch.empty(8, 8, 8, c, dtype=cdt, device=a.device), torch.empty(3, 8, 8, c, dtype=cdt, device=a.device))
        rho, uq, yc, pc, gx = ws
        sl = slice(s, s + c)
        lt = torch.bmm(t["rep"], ap[:, :, sl])  # −2 Σ_{c_i = 1} a_i per class representative ...
        tt = torch.stack([lt, tot[:, :, sl] - lt], 1)  # ... and per complement: (3, 2, 64, C)
        top = tt.amax((1, 2))  # (3, C)
        tt.sub_(top[:, None, None]).clamp_min_(lo).exp_()
        torch.bmm(eta_rho, e[:, :, sl], out=rho.view(3, 128, c))  # η Σ_j e^{d_j − D} per pattern
        torch.add(tt[:, 0], tt[:, 1], out=uq[0])  # U
        torch.mul(tt[:, 0], rho[:, 0], out=uq[1]).addcmul_(tt[:, 1], rho[:, 1])  # ηQ
        x = torch.complex(uq[0], uq[1]).view(3, 8, 8, c)
        y = torch.index_select(x[2].reshape(8, 8 * c), 0, xor, out=yc).view(8, 8, 8, c)  # y[a, b] = X₃[a ⊕ b]
        f = torch.sum(torch.mul(x[1].unsqueeze(0), y, out=pc), 1, out=gx[0])  # (8 a, 8 ξ, C)
        sc = (x[0] * f).sum((0, 1)).imag / eta
        value[sl] = torch.log(sc) + top.sum(0) + const[sl]
        s_all[sl] = sc
        if grad:
            torch.sum(torch.mul(x[0].unsqueeze(1), y, out=pc), 0, out=gx[1])
            y = torch.index_select(x[1].reshape(8, 8 * c), 0, xor, out=yc).view(8, 8, 8, c)  # X₂[a ⊕ c]
            torch.sum(torch.mul(x[0].unsqueeze(1), y, out=pc), 0, out=gx[2])
            gq, gu = torch.view_as_real(gx).movedim(-1, 0).reshape(2, 3, 1, 64, c)  # Re, Im of ∂(Σ X₁X₂X₃)/∂X
            ge = torch.bmm(t["rho_t"], (gq * tt).view(3, 128, c)).mul_(e[:, :, sl])  # ∂S/∂d
            glt = rho.mul_(gq).add_(gu).mul_(tt)  # η·∂S/∂(pattern exponent)
            ga = torch.bmm(t["rep_t"], glt[:, 0] - glt[:, 1]).sub_(2 * glt[:, 1].sum(1, keepdim=True))
            ga = ga.mul_(1 / eta).add_(4 * (ge[:, :8] - ge[:, 8:]))
            gap[:, :, sl] = ga / sc
            gbp[:, :, sl] = (ge[:, :8] + ge[:, 8:]) * (-8 / sc)
    if not grad:
        return value, s_all, None, None
    ga, gb = torch.empty_like(a), torch.empty_like(b)
    ga[:, perm] = gap.view(24, n).T + 1
    gb[:, perm] = gbp.view(24, n).T - 1
    return value, s_all, ga, gb


def _reference_golay(a: Tensor, b: Tensor, grad: bool):
    """The log-domain 4,096-word Golay term (any range) with its gradient, for rare tokens."""
    with torch.enable_grad():
        a, b = a.detach().requires_grad_(grad), b.detach().requires_grad_(grad)
        value = _ReferenceGolayTerm.apply(a, b)
        ga, gb = torch.autograd.grad(value.sum(), (a, b)) if grad else (None, None)
    return value.detach(), ga, gb


def _log_partition(a: Tensor, b: Tensor, grad: bool):
    """log Z ``(N,)`` and, if ``grad``, ∂ log Z/∂a and ∂/∂b ``(N, 24)``.

    float64 inputs run in float64, others in float32; float32 tokens outside ``|a|, |b| ≤
    20`` or with a small normalized Golay sum (module docstring) rerun in float64.
    """
    wide = a.dtype == torch.float64
    wd = torch.float64 if wide else torch.float32
    a, b = a.to(wd).contiguous(), b.to(wd).contiguous()
    v0, ga0, gb0 = _pair_term(a, b, grad)
    v1, ga1, gb1 = _octad_term(a, b, grad)
    v2, s2, ga2, gb2 = _golay_term(a, b, grad)
    if wide:  # the normalized Golay sum is too small for its clamped tables: log-domain sum
        redo = torch.nonzero(~(s2 >= _S_MIN64))[:, 0]
        if len(redo):
            for t, x in zip((v2, ga2, gb2), _reference_golay(a[redo], b[redo], grad)):
                if x is not None:
                    t[redo] = x
    v = torch.stack([v0, v1, v2])
    value = torch.logsumexp(v, 0)
    ga = gb = None
    if grad:
        w = torch.exp(v - value)[:, :, None]
        ga = w[0] * ga0 + w[1] * ga1 + w[2] * ga2
        gb = w[0] * gb0 + w[1] * gb1 + w[2] * gb2
    if not wide:
        big = torch.maximum(a.abs().amax(1), b.abs().amax(1))
        redo = torch.nonzero(~(s2 >= _S_MIN32) | ~(big <= _RANGE32))[:, 0]
        if len(redo):
            v, ga_, gb_ = _log_partition(a[redo].double(), b[redo].double(), grad)
            value[redo] = v.float()
            if grad:
                ga[redo], gb[redo] = ga_.float(), gb_.float()
    return value, ga, gb


class _LeechLogPartition(torch.autograd.Function):
    """log Z with its gradient computed in the forward pass and kept (``(N, 24)`` × 2)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        with _denormals_flushed():
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
    with _denormals_flushed():
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
