"""The zoo report: BD-rates from result files, checked on curves with a known answer."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from leechcodec.bench.training import zoo_report
from tests.tolerances import BD_PSNR_DB

RESULTS = Path(__file__).resolve().parents[3] / "bench" / "results" / "kodak"


def _scaled_copy(src: Path, dst: Path, name: str, rate_factor: float) -> None:
    data = json.loads(src.read_text())
    data["codec"]["name"] = name
    for p in data["points"]:
        p["bpp"] *= rate_factor
    dst.write_text(json.dumps(data))


def test_report_bd_rates_on_known_curves(tmp_path: Path) -> None:
    # The same RD curve at 0.9× the rate is a BD-rate of exactly −10 %; at 1.25×, +25 %.
    src = RESULTS / "jpeg420.json"
    _scaled_copy(src, tmp_path / "leech24.json", "leech24", 0.9)
    _scaled_copy(src, tmp_path / "bsq.json", "bsq", 1.0)
    _scaled_copy(src, tmp_path / "scalar.json", "scalar", 0.9 / 1.25)
    text = zoo_report.report(tmp_path)
    assert "| BSQ (L = 18) | -10.0 % | -10.0 % |" in text
    assert "| scalar (Gaussian hyperprior) | +25.0 % | +25.0 % |" in text
    curves, _ = zoo_report.load_curves(tmp_path)
    i = zoo_report.nearest_point(curves["leech24"], 0.2747)
    assert abs(curves["leech24"].bpp[i] - 0.2747) == min(abs(b - 0.2747) for b in curves["leech24"].bpp)
    assert f"| {curves['leech24'].bpp[i]:.4f} | {curves['leech24'].psnr[i]:.2f} |" in text


def test_gain_shape_targets_on_known_curves(tmp_path: Path) -> None:
    """Gain–shape at 0.7× Λ24-SQ's rate (BD-rate −30 %: met) and at 1.1× scalar's (+10 %:
    missed); the PSNR span is the curve's own."""
    src = RESULTS / "jpeg420.json"
    _scaled_copy(src, tmp_path / "leech24gs.json", "leech24gs", 0.7)
    _scaled_copy(src, tmp_path / "leech24.json", "leech24", 1.0)
    _scaled_copy(src, tmp_path / "scalar.json", "scalar", 0.7 / 1.1)
    text = zoo_report.report(tmp_path)
    assert "| BD-rate (PSNR) against Λ24-SQ ≤ -25 % | -30.0 % | yes |" in text
    assert "| BD-rate (PSNR) against scalar (Gaussian hyperprior) ≤ +0 % | +10.0 % | no |" in text
    psnr = zoo_report.load_curves(tmp_path)[0]["leech24gs"].psnr
    span = psnr.max() - psnr.min()
    assert f"| {span:+.2f} dB ({psnr.min():.2f} → {psnr.max():.2f}) | {'yes' if span >= 6 else 'no'} |" in text
    # Every pair: each family has its own BD-rate table against the others.
    for label in ("Λ24 gain–shape", "Λ24-SQ", "scalar (Gaussian hyperprior)"):
        assert f"## {label} BD-rates" in text


def test_report_cli_writes_files_and_refuses_without_leech24(tmp_path: Path, capsys) -> None:
    assert zoo_report.main([str(tmp_path), "--no-plot"]) == 2
    assert "leech24.json" in capsys.readouterr().err
    shutil.copy(RESULTS / "jpeg420.json", tmp_path / "jpeg420.json")
    _scaled_copy(RESULTS / "jpeg420.json", tmp_path / "leech24.json", "leech24", 0.5)
    assert zoo_report.main([str(tmp_path), "--no-plot"]) == 0
    assert "| JPEG" in (tmp_path / "zoo_report.md").read_text()


def test_default_model_rows_against_jpeg(tmp_path: Path) -> None:
    """A JPEG point moved to 0.9× its rate sits above JPEG by exactly JPEG's own gain from
    log-bpp interpolation; a point on the curve sits at Δ = 0."""
    src = RESULTS / "jpeg420.json"
    shutil.copy(src, tmp_path / "jpeg420.json")
    data = json.loads(src.read_text())
    on_curve = [p for p in data["points"] if p["param"] == 10]
    data["codec"]["name"] = "leech24-hyper"
    data["points"] = on_curve
    (tmp_path / "leech24-hyper.json").write_text(json.dumps(data))
    refined = json.loads(json.dumps(data))
    refined["points"][0]["psnr_rgb"] += 0.5
    (tmp_path / "leech24-hyper+refine100.json").write_text(json.dumps(refined))
    (tmp_path / "leech24-hyper+refine20.json").write_text(json.dumps(data))
    rows = zoo_report.default_model_lines(tmp_path)
    assert len(rows) == 2 + 3
    assert "no refinement" in rows[2] and "20 refinement" in rows[3] and "100 refinement" in rows[4]
    p = on_curve[0]
    assert f"| {p['bpp']:.4f} | {p['psnr_rgb']:.2f} |" in rows[2] and rows[2].split("|")[6].strip() == "+0.00 dB"
    assert rows[4].split("|")[6].strip() == "+0.50 dB"
    # MS-SSIM: on the curve JPEG's own value, Δ 0; the refined row kept its MS-SSIM.
    assert rows[2].split("|")[7].strip() == f"{p['ms_ssim_rgb']:.4f}" and rows[2].split("|")[8].strip() == "+0.0000"
    assert rows[4].split("|")[8].strip() == "+0.0000"
    assert zoo_report.default_model_lines(tmp_path / "missing") == []
    # The Pillow-defaults anchor gets its own table from its own file.
    assert zoo_report.default_model_lines(tmp_path, "jpeg420-pildefault") == []
    shutil.copy(src, tmp_path / "jpeg420-pildefault.json")
    assert zoo_report.default_model_lines(tmp_path, "jpeg420-pildefault") == rows


def test_bd_psnr_on_known_curves() -> None:
    """A curve shifted up by 0.5 dB is +0.5 dB BD-PSNR with any interpolant; no rate overlap: n/a."""
    from leechcodec.bench.bdrate import bd_psnr
    from leechcodec.bench.curves import curve_from_result

    jpeg = curve_from_result(RESULTS / "jpeg420.json")
    up = dataclasses.replace(jpeg, psnr=jpeg.psnr + 0.5)
    for method in ("akima", "pchip"):
        r = bd_psnr(jpeg, up, method)
        assert abs(r.value - 0.5) < BD_PSNR_DB and r.overlap == 1.0 and r.cell() == "+0.50 dB"
    assert abs(bd_psnr(up, jpeg).value + 0.5) < BD_PSNR_DB
    far = dataclasses.replace(jpeg, bpp=jpeg.bpp * 100)
    assert bd_psnr(jpeg, far).value is None and bd_psnr(jpeg, far).cell() == "n/a"


def test_rate_coverage_on_known_curves(tmp_path: Path) -> None:
    """JPEG's points span 0.097–3.08 bpp: at 1× it reaches both ends of 0.1–1.5 bpp; at 0.4×
    it misses the top, at 1.2× the bottom."""
    src = RESULTS / "jpeg420.json"
    bpp = sorted(p["bpp"] for p in json.loads(src.read_text())["points"])
    for name, factor in (("leech24", 1.0), ("bsq", 0.4), ("scalar", 1.2)):
        _scaled_copy(src, tmp_path / f"{name}.json", name, factor)
    text = zoo_report.report(tmp_path)
    for label, factor, low, high in (("Λ24-SQ", 1.0, "yes", "yes"), ("BSQ (L = 18)", 0.4, "yes", "no"),
                                     ("scalar (Gaussian hyperprior)", 1.2, "no", "yes")):
        b = [x * factor for x in bpp]
        assert f"| {label} | {len(b)} | {min(b):.4f} | {max(b):.4f} | {low} | {high} |" in text


def test_exploration_rows_against_the_gain_shape_curve(tmp_path: Path) -> None:
    """An exploration point on the gain–shape curve itself is +0.00 dB; the same curve moved to
    0.8× the rate is, at each point, the curve's PSNR gain over that rate change."""
    import numpy as np

    src = RESULTS / "jpeg420.json"
    _scaled_copy(src, tmp_path / "leech24gs.json", "leech24gs", 1.0)
    _scaled_copy(src, tmp_path / "leech24.json", "leech24", 1.0)
    explore = tmp_path / "explore"
    explore.mkdir()
    data = json.loads(src.read_text())
    data["codec"]["name"] = "variant"
    data["points"] = data["points"][2:4]  # two points inside the curve's range
    (explore / "variant.json").write_text(json.dumps(data))
    _scaled_copy(explore / "variant.json", explore / "cheaper.json", "cheaper", 0.8)
    text = zoo_report.report(tmp_path, explore)
    assert "## Gain–shape exploration runs" in text
    rows = [line for line in text.splitlines() if line.startswith("| variant |")]
    assert len(rows) == 2 and all(line.endswith("| +0.00 dB | +0.00 dB |") for line in rows)
    curve = zoo_report.load_curves(tmp_path)[0]["leech24gs"]
    for p in sorted(data["points"], key=lambda p: p["bpp"]):
        b = 0.8 * p["bpp"]
        expected = p["psnr_rgb"] - np.interp(np.log(b), np.log(curve.bpp), curve.psnr)
        assert f"| cheaper | {b:.4f} | {p['psnr_rgb']:.2f} |" in text
        assert any(line.startswith(f"| cheaper | {b:.4f} |") and f"| {expected:+.2f} dB |" in line
                   for line in text.splitlines())
    assert "## Gain–shape exploration runs" not in zoo_report.report(tmp_path)  # only with the folder
