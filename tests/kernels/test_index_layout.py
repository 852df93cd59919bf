"""The index layout (part of the .lq format) is defined once, in kernels/index_layout.py."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from leechcodec.kernels import index_layout as layout
from leechcodec.kernels import leech, leech_prior

ROOT = Path(__file__).resolve().parents[2]


def test_layout_is_pinned():
    assert layout.NUM_CODEWORDS == 196560
    assert layout.SHAPE_OFFSETS == (0, 1104, 98256, 196560)
    assert layout.MAJOR_SIZES == (276, 759, 4096) and layout.MINOR_SIZES == (4, 128, 24)
    assert list(np.diff(layout.SHAPE_OFFSETS)) == [a * b for a, b in layout.SHAPE_SIZES]
    assert layout.PAIRS[0].tolist() == [0, 1] and layout.PAIRS[-1].tolist() == [22, 23]


def test_every_module_uses_the_one_layout():
    assert leech.split_index is layout.split_index and leech.join_index is layout.join_index
    assert leech.SHAPE_OFFSETS is layout.SHAPE_OFFSETS and leech.PAIRS is layout.PAIRS
    assert leech_prior.SHAPE_OFFSETS == layout.SHAPE_OFFSETS[:3]
    assert leech_prior.MAJOR_SIZES is layout.MAJOR_SIZES and leech_prior.MINOR_SIZES is layout.MINOR_SIZES


def test_offsets_are_written_nowhere_else():
    """The offsets 1104 and 98256 appear in code only in index_layout.py (docstrings and
    comments aside), so the encoder, decoder, prior and quantizers cannot drift apart."""
    pattern = re.compile(r"\b(1_?104|98_?256)\b")
    hits = []
    for folder in ("kernels", "leechcodec", "bitstream"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "index_layout.py":
                continue
            code = re.sub(r'"""(.|\n)*?"""', "", path.read_text())
            for n, line in enumerate(code.splitlines()):
                if pattern.search(line.split("#")[0]):
                    hits.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not hits, hits


def test_split_join_round_trip():
    idx = np.arange(layout.NUM_CODEWORDS)
    shape, major, minor = layout.split_index(idx)
    assert np.array_equal(layout.join_index(shape, major, minor), idx)
    for s in range(3):
        rows = shape == s
        assert np.array_equal(layout.join(s, major[rows], minor[rows]), idx[rows])
    for k in (0, 1103, 1104, 98255, 98256, 196559):
        assert layout.split(k) == tuple(int(a[k]) for a in (shape, major, minor))
        assert layout.join(*layout.split(k)) == k


def test_plain_arithmetic_on_every_array_kind():
    i, j = np.triu_indices(24, 1)
    assert np.array_equal(layout.pair_rank(i, j), np.arange(276))
    assert torch.equal(layout.pair_rank(torch.from_numpy(i), torch.from_numpy(j)), torch.arange(276))
    major, minor = torch.tensor([0, 758]), torch.tensor([127, 0])
    assert layout.join(1, major, minor).tolist() == [1104 + 127, 1104 + 758 * 128]


@pytest.mark.parametrize("bad", [np.array([-1]), np.array([196560]), np.array([0.0]), np.zeros((2, 1), np.int64)])
def test_split_rejects_bad_indices(bad):
    with pytest.raises(ValueError):
        layout.split_index(bad)


def test_join_rejects_bad_symbols():
    with pytest.raises(ValueError):
        layout.join_index(np.array([1]), np.array([759]), np.array([0]))
    with pytest.raises(ValueError):
        layout.join_index(np.array([3]), np.array([0]), np.array([0]))
