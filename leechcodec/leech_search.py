"""Exact Λ24 nearest-codeword search and codeword lookup in torch, free of host syncs.

:func:`leech_search_torch` returns, for every row of ``x`` ``(N, 24)``, the same index as
:func:`leechcodec.kernels.leech.search_numba`, bit for bit, tie rule included: it repeats the
kernel's float64 arithmetic operation for operation wherever rounding can happen, and
computes only exact quantities (maxima, minima, sign counts, integers) in other ways. No
step depends on the data for its shapes or control flow (no boolean-mask indexing, no
``nonzero``, no ``.item()``), so the function never waits for the device and can be
captured by CUDA graphs or ``torch.compile``.

Layout: a chunk of ``n`` tokens is held transposed, tokens along the last (contiguous)
axis, so every table lookup with a constant index list copies whole rows.

Per chunk, after scaling each row by a power of two (largest ``|x_i|`` in [0.5, 1), as the
kernel does; exact), with ``a = |x|`` and the negative signs of ``x``:

- 4²: ``4 (a_i1 + a_i2)``, ``i1`` the first largest ``|x_i|``, ``i2`` the first largest of
  the others.
- 2⁸: octad sums of ``a`` from three 8-bit subset-sum tables built by doubling in the
  kernel's order and added in its order, ``(chunk 0 + chunk 1) + chunk 2``; the minimum of
  ``a`` over an octad from subset-minimum tables; the parity of its negative signs from a
  product with the octad indicator (small integers, exact in any order).
- 3·1²³: the sign sums ``S(m) = Σ s_i x_i`` of the 4,096 Golay words by the kernel's two
  11-bit doubling tables (words ``m ≥ 2048`` are complements, ``S = −S(4095 − m)``). The
  correction ``−4 min_j s_j x_j`` needs the largest ``|x_j|`` over the coordinates where
  the word's sign disagrees with ``x``'s. That set is ``mask ∩ P`` plus ``¬mask ∩ N``
  (``P``, ``N`` the coordinates with ``x ≥ 0``, ``x < 0``), so it is the larger of a
  subset maximum of ``a·[P]`` over the mask and one of ``a·[N]`` over its complement:
  per 6-bit chunk two 64-entry doubling tables, no per-token permutation. Chunks 0+1 are
  the word's message bits (a 4,096-entry outer maximum indexed by ``m`` itself), chunks
  2+3 another outer maximum looked up through the code's fixed map. The one word whose
  signs all agree (if ``x``'s sign pattern is a Golay word) takes ``−4 min |x|`` instead.

Scores, comparisons and tie rules are the kernel's: best score wins; among equal scores
the smaller shape, the first octad, the first Golay word; then the kernel's minor rules.
``float64`` throughout (no reduced-precision product touches a score); inputs of any float
dtype are converted. Non-finite inputs give unspecified (but in-range) indices, instead of
the kernel's ``ValueError``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from leechcodec.kernels import golay
from leechcodec.kernels.index_layout import NUM_CODEWORDS, join, pair_rank
from leechcodec.kernels.leech_index import all_codewords
from leechcodec.kernels.search_tables import HALF_Q, HALF_SIGN, OCTAD_CHUNKS

__all__ = ["leech_search_torch", "leech_codewords_torch"]

_F64 = torch.float64


def _build_tables() -> dict[str, np.ndarray]:
    words = golay.GOLAY_WORDS.astype(np.int64)
    masks = golay.GOLAY_MASKS.astype(np.int64)
    chunks = OCTAD_CHUNKS[:, :759]
    return {
        # search
        "octad_rows": (3 * chunks + np.arange(3)[:, None]).ravel(),  # (3·759,) rows of the (256·3, n) tables
        "octad_t": golay.OCTAD_INDICATOR.astype(np.float64),  # (759, 24)
        "octad_pos": golay.OCTAD_POSITIONS.astype(np.int64),  # (759, 8)
        "half_q": HALF_Q.astype(np.int64),  # (2048,)
        "half_sign": HALF_SIGN.astype(np.float64)[:, None],  # (2048, 1)
        "high_rows": masks >> 12,  # (4096,) chunks 2+3 of each word's mask
        "reverse": np.arange(2047, -1, -1),
        "masks": masks,
        "words": words.astype(bool),  # (4096, 24)
    }


_NP = _build_tables()
_cache: dict = {}


def _tables(device: torch.device) -> dict[str, Tensor]:
    key = str(device)
    if key not in _cache:
        _cache[key] = {k: torch.as_tensor(v, device=device) for k, v in _NP.items()}
    return _cache[key]


def _doubling(cols: Tensor, init: float | Tensor, op, out: Tensor | None = None) -> Tensor:
    """Subset tables ``t[u]`` ``(2**K, G, n)`` over the bits ``u`` of ``cols`` ``(K, G, n)``, built
    like the kernel's loops: ``t[0] = init``, ``t[u + 2**k] = op(t[u], cols[k])`` for ``u < 2**k``
    (``op`` a binary torch function with ``out=``), into ``out`` if given."""
    kk = cols.shape[0]
    t = cols.new_empty(1 << kk, *cols.shape[1:]) if out is None else out
    t[0] = init
    h = 1
    for k in range(kk):
        op(t[:h], cols[k], out=t[h:2 * h])
        h *= 2
    return t


def _scale(x: Tensor) -> Tensor:
    """Rows divided by ``2**e``, ``e`` putting the largest ``|x_i|`` in [0.5, 1): the kernel's
    scaling bit for bit (one correctly rounded operation; exact unless it underflows); a zero
    row stays zero. ``2**e`` is ``max |x_i|`` over its frexp mantissa, exactly; in the top
    binade (``e = 1024``) rows are halved first (exact there: the entries it rounds end as 0)."""
    amax = x.abs().amax(1, keepdim=True)
    top = amax >= 2.0**1023
    p = torch.where(top, 0.5 * amax, amax) / torch.frexp(amax).mantissa
    return torch.where(top, 0.5 * x, x) / torch.where(amax > 0, p, 1.0)


def _search_chunk(x: Tensor, t: dict[str, Tensor], ws: Tensor) -> Tensor:
    """Indices ``(n,)`` of tokens ``x`` ``(n, 24)``; ``ws`` a ``(3, 4096, n)`` float64 workspace."""
    n, dev = x.shape[0], x.device
    xs = _scale(x.to(_F64))
    xt = xs.T.contiguous()  # (24, n)
    a = xt.abs()
    neg = xt < 0
    # Shape 4²: first largest |x|, then the first largest of the others.
    i1 = a.argmax(0, keepdim=True)
    i2 = a.scatter(0, i1, -1.0).argmax(0, keepdim=True)
    sc0 = 4.0 * (a.gather(0, i1) + a.gather(0, i2))[0]
    i, j = torch.minimum(i1, i2)[0], torch.maximum(i1, i2)[0]
    idx0 = join(0, pair_rank(i, j), neg.gather(0, i[None])[0] + 2 * neg.gather(0, j[None])[0])
    # Shape 2⁸: octad sums of |x| in the kernel's order, minus 4 min|x| on odd sign parity.
    a3 = a.view(3, 8, n).transpose(0, 1)  # (8, 3, n): the three 8-bit chunks
    sums = _doubling(a3, 0.0, torch.add).view(768, n).index_select(0, t["octad_rows"]).view(3, 759, n)
    mins = _doubling(a3, math.inf, torch.minimum).view(768, n).index_select(0, t["octad_rows"]).view(3, 759, n)
    odd4 = (t["octad_t"] @ neg.to(_F64)).mul_(0.5).frac_().mul_(8.0)  # 4 if the count of x < 0 is odd, else 0
    sc1 = (sums[0] + sums[1]).add_(sums[2]).mul_(2.0).sub_(odd4.mul_(mins.amin(0)))
    best1, o1 = _first_max(sc1, 33)
    # Shape 3·1²³: S(m) by the kernel's doubling tables (words 2048.. are the complements).
    sc2, lo_tab, hi_tab = ws
    x2 = xt.view(2, 12, n).transpose(0, 1)  # (12, 2, n): coordinates 0..11 and 12..23
    s = x2[0]
    for k in range(1, 12):
        s = s + x2[k]
    half = _doubling(2.0 * x2[:11], s, torch.sub, out=hi_tab.view(2048, 2, n))
    torch.index_select(half[:, 1], 0, t["half_q"], out=lo_tab[:2048])
    torch.addcmul(half[:, 0], t["half_sign"], lo_tab[:2048], out=sc2[:2048])
    torch.index_select(sc2[:2048], 0, t["reverse"], out=sc2[2048:]).neg_()
    # −4 min_j s_j x_j = 4 max{|x_j| : the word's sign at j disagrees with x_j} (0 if none); that
    # set is the mask's coordinates with x ≥ 0 and the others with x < 0, so per 6-bit chunk the
    # larger of a subset maximum of 4|x|·[x ≥ 0] and a complement-subset maximum of 4|x|·[x < 0].
    a4 = 4.0 * a
    ap = torch.where(neg, 0.0, a4).view(4, 6, n).transpose(0, 1)
    an = torch.where(neg, a4, 0.0).view(4, 6, n).transpose(0, 1)
    mx = torch.maximum(_doubling(ap, 0.0, torch.maximum), _doubling(an, 0.0, torch.maximum).flip(0))  # (64, 4, n)
    torch.maximum(mx[:, 3, None], mx[None, :, 2], out=lo_tab.view(64, 64, n))  # chunks 2, 3 by their 12 bits
    torch.index_select(lo_tab, 0, t["high_rows"], out=hi_tab)  # ... looked up for each word
    torch.maximum(mx[:, 1, None], mx[None, :, 0], out=lo_tab.view(64, 64, n))  # chunks 0, 1 = the message bits
    sc2.add_(torch.maximum(lo_tab, hi_tab, out=lo_tab))
    # The word whose signs all agree with x (if x's sign pattern is a Golay word): −4 min |x|.
    negmask = (neg.long() << torch.arange(24, device=dev)[:, None]).sum(0)
    m0 = (negmask & 0xFFF)[None]
    agree = t["masks"][m0] == negmask
    amin = a.amin(0, keepdim=True)
    at_m0 = sc2.gather(0, m0)  # = S(m0): nothing disagrees
    sc2.scatter_(0, m0, torch.where(agree, at_m0 - 4.0 * amin, at_m0))
    best2, m2 = _first_max(sc2, 64)
    # Minors.
    idx1 = join(1, o1, _octad_signs(a, neg, t["octad_pos"][o1].T))
    w = t["words"][m2].T  # (24, n)
    err = w ^ neg
    lo = torch.where(err.any(0), -torch.where(err, a, 0.0).amax(0), amin[0])
    jj = (torch.where(w, -xt, xt) == lo).to(torch.uint8).argmax(0)  # first coordinate holding the minimum
    idx2 = join(2, m2, jj)
    shape0 = (sc0 >= best1) & (sc0 >= best2)
    return torch.where(shape0, idx0, torch.where(best1 >= best2, idx1, idx2))


def _first_max(s: Tensor, block: int) -> tuple[Tensor, Tensor]:
    """Largest value of each column of ``s`` ``(K, n)`` and the first row holding it, ``(n,)``
    each; ``block`` divides ``K``. (``max(0)`` with indices is slow on CPU: this reads ``s``
    once for block maxima, then searches the first block holding the maximum.)"""
    k, n = s.shape
    v = s.view(k // block, block, n)
    bmax = v.amax(1)  # (K / block, n)
    best = bmax.amax(0)
    b = _first_true(bmax == best)
    inner = v.gather(0, b.view(1, 1, n).expand(1, block, n))[0]
    return best, b * block + _first_true(inner == best)


def _first_true(hit: Tensor) -> Tensor:
    """Index of the first True of each column of ``hit`` ``(K, n)`` bool (one exists)."""
    return hit.to(torch.uint8).argmax(0)


def _octad_signs(a: Tensor, neg: Tensor, pos: Tensor) -> Tensor:
    """Sign bits ``b`` ``(n,)`` of the kernel's best pattern on octad positions ``pos`` ``(8, n)``."""
    negs = neg.gather(0, pos).long()
    av = a.gather(0, pos)
    k = torch.arange(8, device=a.device)[:, None]
    b = (negs[:7] << k[:7]).sum(0)
    odd = negs.sum(0) % 2 == 1
    cand = av == av.amin(0, keepdim=True)
    k_clear = torch.where(cand[:7] & (negs[:7] == 1), k[:7], -1).amax(0)
    k_set = torch.where(cand[:7], k[:7], 7).amin(0)
    flipped = torch.where(k_clear >= 0, b & ~(1 << k_clear.clamp_min(0)),
                          torch.where(cand[7], b, b | (1 << k_set.clamp_max(6))))
    return torch.where(odd, flipped, b)


def leech_search_torch(x: Tensor, chunk: int | None = None) -> Tensor:
    """Nearest Λ24 codeword indices: ``(N, 24)`` float → ``(N,)`` int64 on ``x``'s device.

    The same indices as :func:`leechcodec.kernels.leech.search_numba` (tie rule included),
    without host syncs. ``chunk`` tokens are searched at a time (default 256 on CPU, where
    that keeps the work arrays near the cache, 16,384 on other devices; the work arrays take
    about 150 KB per token). Its shapes depend on ``N`` and ``chunk`` only.
    """
    if x.ndim != 2 or x.shape[1] != 24:
        raise ValueError(f"tokens must have shape (N, 24), got {tuple(x.shape)}")
    if chunk is None:
        chunk = 256 if x.device.type == "cpu" else 16384
    t = _tables(x.device)
    out, ws = [], None
    for c in x.detach().split(chunk):
        if ws is None or ws.shape[-1] != c.shape[0]:
            ws = torch.empty(3, 4096, c.shape[0], dtype=_F64, device=x.device)
        out.append(_search_chunk(c, t, ws))
    return torch.cat(out) if len(out) != 1 else out[0]


def leech_codewords_torch(indices: Tensor) -> Tensor:
    """Integer Λ24 coordinates ``(N, 24)`` float32 of indices ``(N,)`` (the kernel's bijection).

    A row lookup in the 196,560 × 24 int8 codebook (4.7 MB, built by the kernel once per
    device): no host sync; indices outside [0, 196560) give unspecified rows.
    """
    key = ("codebook", str(indices.device))
    if key not in _cache:
        _cache[key] = torch.from_numpy(all_codewords().copy()).to(indices.device)
    idx = indices.reshape(-1).long().clamp(0, NUM_CODEWORDS - 1)
    return _cache[key].index_select(0, idx).float()
