from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from leechcodec.bench.curves import (Curve, curve_from_c3, curve_from_compressai, curve_from_tfc,
                                     default_anchors)
from leechcodec.bench.sanity import matched_bpp_deltas


def test_published_formats(tmp_path: Path) -> None:
    ca = tmp_path / "bpg.json"
    ca.write_text(json.dumps({"name": "BPG", "results": {
        "bpp": [0.5, 0.1, 1.0], "psnr-rgb": [33.0, 28.0, 37.0], "ms-ssim-rgb": [0.98, 0.9, 0.99]}}))
    c = curve_from_compressai(ca)
    assert list(c.bpp) == [0.1, 0.5, 1.0] and list(c.psnr) == [28.0, 33.0, 37.0]
    assert c.kind == "published" and c.metric("ms_ssim_db")[0] == pytest.approx(10.0)
    paper = tmp_path / "paper.json"
    paper.write_text(json.dumps({"name": "p", "results": {"bpp": [0.2], "ms-ssim-db-rgb": [20.0]}}))
    assert curve_from_compressai(paper).ms_ssim[0] == pytest.approx(0.99)
    tfc = tmp_path / "bpg444.txt"
    tfc.write_text("# header\n# more\n\n0.1, 28.0\n0.5, 33.0\n")
    t = curve_from_tfc(tfc, None, "bpg444", "BPG")
    assert list(t.bpp) == [0.1, 0.5] and t.ms_ssim is None
    c3 = tmp_path / "c3.json"
    c3.write_text(json.dumps({"VTM": {"bpp": [0.3, 0.1], "psnr": [32.0, 29.0], "meta": {}}}))
    v = curve_from_c3(c3, "VTM")
    assert list(v.psnr) == [29.0, 32.0]


def test_default_anchors_skip_missing_files(tmp_path: Path) -> None:
    assert default_anchors("kodak", None) == []
    (tmp_path / "compressai" / "kodak").mkdir(parents=True)
    (tmp_path / "compressai" / "kodak" / "vtm.json").write_text(json.dumps(
        {"name": "VTM", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0, 32.0]}}))
    found = default_anchors("kodak", tmp_path)
    assert [c.name for c in found] == ["vtm-published"]


def test_matched_bpp_delta() -> None:
    ref_bpp = np.array([0.1, 0.2, 0.4, 0.8])
    ref = Curve("r", "r", ref_bpp, 30 + 3 * np.log2(ref_bpp / 0.1), None, "published", "")
    ours_bpp = np.array([0.05, 0.15, 0.3, 0.6, 1.6])  # first and last outside the range
    ours = Curve("o", "o", ours_bpp, 30 + 3 * np.log2(ours_bpp / 0.1) + 0.25, None, "ours", "")
    d = matched_bpp_deltas(ours, ref)
    assert d.shape == (3,) and np.allclose(d, 0.25)
