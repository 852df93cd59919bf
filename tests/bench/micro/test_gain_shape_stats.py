"""The gain–shape statistics: the coder's bits split into hyper, gains and shapes."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from leechcodec import coding
from leechcodec.bitstream import ans, container
from leechcodec.bench.micro import gain_shape_stats
from leechcodec.models import pad_to_multiple
from leechcodec.zoo import load_model

from ...conftest import random_image


def test_stats_add_up_to_the_coder_bits(tiny_zoo):
    _, model = load_model("tiny-gainshape", 1)
    images = [random_image(128, 192, seed=7), random_image(40, 56, seed=1)]
    s = gain_shape_stats.model_stats(model, images)
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    ideal = sum(model.compress(im).ideal_bits for im in images) / pixels
    assert s["bpp_ideal"] == pytest.approx(ideal, rel=1e-12)
    assert s["bpp_hyper"] + s["bpp_gains"] + s["bpp_shapes"] == pytest.approx(s["bpp_ideal"], rel=1e-12)
    gains = []
    for im in images:
        with torch.no_grad():
            y = model.g_a(pad_to_multiple(torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 255, 16))
        gains.append(coding._token_gains(model, y))
    g = np.concatenate(gains)
    assert s["tokens"] == len(g) and s["share_gain_zero"] == pytest.approx((g == 0).mean())
    assert sum(s["gain_histogram"].values()) == len(g) and s["gain_histogram"]["2"] == int((g == 2).sum())
    assert s["bits_per_gain"] > 0 and s["bits_per_coded_shape"] > 0
    # The pooled gains' entropy, counted again in plain Python.
    counts = Counter(g.tolist()).values()
    static = -sum(c / len(g) * math.log2(c / len(g)) for c in counts)
    assert s["bits_per_gain_static"] == pytest.approx(static, rel=1e-12)
    assert s["max_gain"] == g.max()
    # Each gain's bits under the coder's integer model: their sum is the gains' share, and the
    # quantiles are theirs; σ at the bound is the scale table's first entry.
    bound, bits = 0, []
    for im in images:
        enc = model.compress(im)
        _, p = model.decompress(enc.chunks, enc.height, enc.width, enc.padded_height, enc.padded_width,
                                container.PROFILE_DEFAULT)
        bound += int((p["scale_index"] == 0).sum())
        rows = coding._gain_tables(p["gain_mean_index"], p["scale_index"], container.PROFILE_DEFAULT)
        freq = ans.quantized_frequencies(rows)[np.arange(len(p["gains"])), p["gains"]]
        bits += [ans.PRECISION - math.log2(int(f)) for f in freq]
    assert s["share_gain_scale_at_bound"] == bound / len(g)
    assert sum(bits) == pytest.approx(s["bpp_gains"] * pixels, rel=1e-9)
    for key, value in s["gain_bits_quantiles"].items():
        assert value == pytest.approx(float(np.quantile(bits, float(key))), rel=1e-9)
    # The shapes' bits by gain group add up to all the shapes' bits (the coder is per symbol).
    groups = s["bits_per_coded_shape_by_gain"]
    counts = {"1": (g == 1).sum(), "2": (g == 2).sum(), "3-4": ((g >= 3) & (g <= 4)).sum(), "5+": (g >= 5).sum()}
    assert set(groups) == set(counts)
    total = sum(groups[key] * n for key, n in counts.items() if n)
    assert total == pytest.approx(s["bpp_shapes"] * pixels, rel=1e-9)
