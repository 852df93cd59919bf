"""The standing report: PSNR against the references at our own bpp, BD against them for curves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leechcodec.bench.results import SCHEMA, SCHEMA_VERSION
from leechcodec.bench.training import standing


def _result(path, bpp, psnr, ms_ssim=None):
    ms_ssim = ms_ssim or [None] * len(bpp)
    points = [{"bpp": b, "psnr_rgb": p, "ms_ssim_rgb": m} for b, p, m in zip(bpp, psnr, ms_ssim)]
    path.write_text(json.dumps({"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
                                "codec": {"name": path.stem, "label": path.stem},
                                "dataset": {"name": "kodak", "n_images": 24, "canonical": True}, "points": points}))


def test_standing_against_references(tmp_path):
    bpp = [0.1, 0.2, 0.4, 0.8, 1.6]
    _result(tmp_path / "jpeg420.json", bpp, [24 + 3 * np.log2(b / 0.1) for b in bpp])
    _result(tmp_path / "webp.json", bpp, [26 + 3 * np.log2(b / 0.1) for b in bpp])
    _result(tmp_path / "single.json", [0.2], [28.0])
    # 1 dB above WebP everywhere: BD-PSNR +1 dB, and 3 dB per doubling means 2**(-1/3) of the bits.
    _result(tmp_path / "curve.json", bpp, [27 + 3 * np.log2(b / 0.1) for b in bpp])
    text = standing.report(tmp_path, ["single", "curve", "missing"])
    single = next(line for line in text.splitlines() if line.startswith("| single |"))
    assert single == "| single | 0.2000 | 28.00 dB | +1.00 dB | -1.00 dB |"
    webp = next(line for line in text.splitlines() if line.startswith("| curve | WebP |"))
    cells = [c.strip() for c in webp.strip("|").split("|")]
    assert float(cells[2].split()[0]) == pytest.approx(100 * (2 ** (-1 / 3) - 1), abs=0.2)
    assert cells[3] == "n/a" and cells[4] == "+1.00 dB"
    assert "| curve | 0.1000 | 27.00 dB | +3.00 dB | +1.00 dB |" in text  # every point of a curve, too
    assert "HEVC 4:4:4 |" not in text  # no hevc444.json: no column, no rows


def test_standing_needs_references_and_models(tmp_path):
    with pytest.raises(ValueError, match="no reference"):
        standing.report(tmp_path, ["x"])
    _result(tmp_path / "webp.json", [0.1, 0.2], [26, 29])
    with pytest.raises(ValueError, match="none of"):
        standing.report(tmp_path, ["x"])
    assert standing.main([str(tmp_path), "--models", "x"]) == 1


def test_controls_of_swaps_the_family_prefix():
    assert standing.controls_of("leech24gs-n128-v1") == ["scalar-n128-v1", "bsq-n128-v1"]
    assert standing.controls_of("leech24gs") == ["scalar", "bsq"]
    assert standing.controls_of("leech24gsx") == [] and standing.controls_of("scalar-n128-v1") == []


def test_standing_compares_a_gain_shape_curve_with_its_control(tmp_path):
    bpp = [0.1, 0.2, 0.4, 0.8, 1.6]
    _result(tmp_path / "jpeg420.json", bpp, [24 + 3 * np.log2(b / 0.1) for b in bpp])
    _result(tmp_path / "scalar-n9.json", bpp, [27 + 3 * np.log2(b / 0.1) for b in bpp])
    # 1.5 dB below its control everywhere: BD-PSNR −1.5 dB, 2**(1.5/3) of the bits.
    _result(tmp_path / "leech24gs-n9.json", bpp, [25.5 + 3 * np.log2(b / 0.1) for b in bpp])
    _result(tmp_path / "leech24gs-n8.json", bpp, [25 + 3 * np.log2(b / 0.1) for b in bpp])  # no control
    text = standing.report(tmp_path, ["leech24gs-n9", "leech24gs-n8"])
    rows = [line for line in text.splitlines() if "| scalar-n9 |" in line]
    assert len(rows) == 1 and rows[0].startswith("| leech24gs-n9 | scalar-n9 |")
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert float(cells[2].split()[0]) == pytest.approx(100 * (2 ** 0.5 - 1), abs=0.3)
    assert cells[4] == "-1.50 dB"
    assert "against its control" in text and "| leech24gs-n8 | scalar" not in text
    # BSQ, the second control: 3 dB below the Λ24 curve, half its bits
    _result(tmp_path / "bsq-n9.json", bpp, [22.5 + 3 * np.log2(b / 0.1) for b in bpp])
    rows = [line for line in standing.report(tmp_path, ["leech24gs-n9"]).splitlines() if "| bsq-n9 |" in line]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert rows[0].startswith("| leech24gs-n9 | bsq-n9 |") and cells[4] == "+3.00 dB"
    assert float(cells[2].split()[0]) == pytest.approx(-50.0, abs=0.3)
    # a control with fewer than 4 points is no curve: no row
    _result(tmp_path / "scalar-n9.json", bpp[:2], [27, 30])
    text = standing.report(tmp_path, ["leech24gs-n9"])
    assert "| scalar-n9 |" not in text and "| bsq-n9 |" in text
    (tmp_path / "bsq-n9.json").unlink()
    assert "against its control" not in standing.report(tmp_path, ["leech24gs-n9"])
