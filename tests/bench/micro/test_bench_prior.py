"""bench_prior runs end to end with tiny counts: the record's shape, not the machine's speed."""

from __future__ import annotations

import json

from leechcodec.bench.micro import bench_prior


def test_bench_prior_runs(capsys):
    assert bench_prior.main(["--tokens", "40", "--twin-tokens", "4", "--repeats", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]) == {"log_partition", "encoder", "decoder"}
    assert all(r["numba_tokens_per_s"] > 0 for r in report["results"].values())
    assert bench_prior.main(["--tokens", "0"]) == 2


def test_bench_torch_prior_runs(capsys, monkeypatch):
    """The --torch benchmark runs end to end (tiny crops so the test stays fast)."""
    monkeypatch.setattr(bench_prior, "TORCH_BATCH", 1)
    monkeypatch.setattr(bench_prior, "TORCH_CROP", 64)
    assert bench_prior.main(["--torch", "--repeats", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tokens"] == 128
    assert {"old", "new"} <= set(report["share_quantizer_plus_prior"])
    assert report["results"]["training_step"]["step_new"]["cpu_ms"] > 0
