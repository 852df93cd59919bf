"""Paired runs: window means of A relative to B over the steps both logged."""

from __future__ import annotations

import gzip
import json

import pytest

from leechcodec.bench.training import paired


def _log(path, records, gz=False):
    text = "".join(json.dumps(r) + "\n" for r in records)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_windows_compare_only_common_steps(tmp_path, capsys):
    a = [{"step": s, "loss": 1.1, "bpp": 0.5, "psnr": 30.0} for s in range(1, 21)]
    b = [{"step": s, "loss": 1.0, "bpp": 0.4, "psnr": 29.5} for s in range(1, 16)]
    b += [{"step": 16, "loss": 9.0, "bpp": 9.0, "psnr": 0.0}]  # one more common step, in the second window
    la, lb = _log(tmp_path / "a.jsonl.gz", a, gz=True), _log(tmp_path / "b.jsonl", b)
    rows = paired.compare(paired.read_log(la, after=5), paired.read_log(lb, after=5), window=5)
    assert [(r["from"], r["steps"]) for r in rows] == [(5, 5), (10, 5), (15, 1)]
    assert rows[0]["loss"] == pytest.approx(0.1) and rows[0]["bpp"] == pytest.approx(0.25)
    assert rows[0]["psnr"] == pytest.approx(0.5)
    assert rows[2]["loss"] == pytest.approx(1.1 / 9 - 1)
    assert paired.main([str(la), str(lb), "--after", "5", "--window", "5"]) == 0
    assert "+10.000 %" in capsys.readouterr().out
    assert paired.main([str(la), str(_log(tmp_path / "c.jsonl", [{"step": 99, "loss": 1, "bpp": 1, "psnr": 1}]))]) == 1
