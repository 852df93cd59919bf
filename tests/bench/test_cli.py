from __future__ import annotations

import json
from pathlib import Path

import pytest

from leechcodec.bench.cli import add_bench_parser, add_plot_parser, main


def test_bench_plot_table_export(image_folder: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res"
    argv = ["bench", "--dataset", "mine", "--data-dir", str(image_folder), "--codecs",
            "jpeg420,webp,jpeg2000,hevc444", "--params", "jpeg420=10,30,60,90",
            "--params", "webp=10,30,60,90", "--params", "jpeg2000=0.3,0.6,1.2,2.4",
            "--params", "hevc444=42,36,30,24", "--out", str(out), "--workers", "1", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["points_measured"] == 16 and summary["errors"] == []
    assert main(argv) == 0  # resume: nothing left to do
    assert json.loads(capsys.readouterr().out)["points_skipped"] == 16

    png, table = tmp_path / "rd.png", tmp_path / "bd.md"
    assert main(["plot", str(out), "-o", str(png), "--table", str(table), "--no-anchors"]) == 0
    assert png.stat().st_size > 0 and png.with_suffix(".svg").stat().st_size > 0
    text = table.read_text()
    assert "BD-rate against **HEVC 4:4:4" in text and "| JPEG 4:2:0" in text

    exported = tmp_path / "jpeg420_compressai.json"
    assert main(["export", str(out / "jpeg420.json"), "-o", str(exported)]) == 0
    shaped = json.loads(exported.read_text())
    assert set(shaped["results"]) >= {"bpp", "psnr-rgb", "ms-ssim-rgb"}
    assert len(shaped["results"]["bpp"]) == 4
    capsys.readouterr()
    assert main(["bdrate", str(exported), str(out / "webp.json"), "--no-anchors",
                 "--bd-anchor", "webp"]) == 0
    assert "BD-rate against **WebP" in capsys.readouterr().out


def test_user_errors_exit_1_in_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--codecs", "nope", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unknown codec" in err and "Traceback" not in err
    assert err.startswith("leechcodec bench: error:") and err.count("\n") == 1
    assert main(["bench", "--dataset", "kodak", "--data-dir", str(tmp_path / "none"),
                 "--codecs", "jpeg420"]) == 1
    assert "no images" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.json")]) == 1
    assert capsys.readouterr().err.startswith("leechcodec plot: error:")
    assert main(["bench", "--codecs", "jpeg420", "--params", "webp=1", "--data-dir",
                 str(tmp_path)]) == 1


def test_parsers_plug_into_another_cli() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="leechcodec")
    sub = parser.add_subparsers(dest="command")
    add_bench_parser(sub)
    add_plot_parser(sub)
    args = parser.parse_args(["bench", "--codecs", "jpeg420", "--images", "3"])
    assert callable(args.func) and args.images == 3 and args.dataset == "kodak"
    args = parser.parse_args(["plot", "a.json", "-o", "x.png"])
    assert callable(args.func) and args.output == Path("x.png")


def test_codecs_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codecs"]) == 0
    out = capsys.readouterr().out
    assert "hevc444" in out and "BPG stand-in" in out


def test_module_entry_point_runs() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "leechcodec.bench", "--help"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "bench" in proc.stdout and "plot" in proc.stdout


def test_plot_refuses_to_overwrite_and_unknown_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "rd.png"
    existing.write_bytes(b"keep")
    assert main(["plot", str(tmp_path / "missing.json"), "-o", str(existing)]) == 1
    assert "exists; use --force" in capsys.readouterr().err and existing.read_bytes() == b"keep"
    assert main(["plot", str(tmp_path / "missing.json"), "-o", str(tmp_path / "rd.jpg")]) == 1
    err = capsys.readouterr().err
    assert "plots are written as .png, .svg, .pdf" in err and err.count("\n") == 1
