"""bench_search runs end to end with tiny counts and finds no mismatch."""

from __future__ import annotations

import json

import pytest

from leechcodec.bench.micro import bench_search


@pytest.fixture(autouse=True)
def restore_threads():
    """``--threads`` sets the process's torch and numba thread counts; give them back after."""
    import numba
    import torch

    before = torch.get_num_threads(), numba.get_num_threads()
    yield
    numba.set_num_threads(before[1])
    torch.set_num_threads(before[0])


def test_bench_torch_search_runs(capsys, tmp_path):
    """bench_search --torch runs end to end (tiny counts, no Kodak folder) and finds no mismatch."""
    argv = ["--torch", "--tokens", "300", "--old-tokens", "60", "--exact-tokens", "600", "--bf-tokens", "20",
            "--threads", "1", "--repeats", "1", "--kodak", str(tmp_path), "--json"]
    assert bench_search.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exactness"]["mismatches"] == 0 and report["exactness"]["tokens"] == 620
    assert set(report["speed"]) == {"numba", "new", "old"} and report["ratio_new_over_old"] > 0
