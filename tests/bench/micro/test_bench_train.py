"""bench_train on the CPU with tiny settings: the record's shape, not the machine's speed."""

from __future__ import annotations

import json
import platform
import sys

import pytest
import torch

from leechcodec.bench.micro import bench_heap, bench_omp, bench_train
from leechcodec.models import LeechCodecModel, ModelConfig

from ...conftest import write_image_folder


@pytest.mark.parametrize("family", bench_train.FAMILIES)
def test_stand_ins_keep_the_step_shapes(family):
    torch.manual_seed(0)
    model = LeechCodecModel(ModelConfig(quantizer=family, tokens=1, channels=8, hyper_channels=8))
    full = model(torch.rand(2, 3, 64, 64))
    bench_train.strip_quantizer_and_prior(model)
    out = model(torch.rand(2, 3, 64, 64))
    assert out.x_hat.shape == full.x_hat.shape and out.token_bits.shape == full.token_bits.shape
    out.x_hat.mean().add(out.token_bits.mean()).backward()


def test_record(tmp_path, monkeypatch):
    for name in ("zoo", "default"):
        monkeypatch.setitem(bench_train.CONFIGS, name, ({"tokens": 1, "channels": 8, "hyper_channels": 8}, 64, 2, 2))
    data = write_image_folder(tmp_path / "imgs", [(80, 96), (96, 96)])
    out = tmp_path / "r.json"
    assert bench_train.main(["--device", "cpu", "--configs", "zoo", "--steps", "1", "--warmup", "1", "--rounds", "2",
                             "--data", str(data), "--batches", "1", "--out", str(out), "--threads", "1"]) == 0
    rec = json.loads(out.read_text())
    assert rec["device"].startswith("cpu") and rec["settings"]["images"] == 2
    assert [(r["config"], r["family"]) for r in rec["results"]] == [("zoo", f) for f in bench_train.FAMILIES]
    for r in rec["results"]:
        assert set(r["variants"]) == set(bench_train.VARIANTS) and r["pixels_per_step"] == 2 * 64 * 64
        assert r["variants"]["old"]["options"] == "legacy" and r["variants"]["new"]["options"] == "device-resident"
        assert all(len(v["step_ms_rounds"]) == 2 and v["mpix_per_s"] > 0 for v in r["variants"].values())
        assert r["new_over_old"] > 0 and r["quantizer_prior_share"] < 1 and r["new_over_old_cpu"] > 0
        assert r["variants"]["new_bf16_nhwc"]["amp"] == "bf16" and "channels_last" in r["variants"]["new_bf16_nhwc"]["options"]
        assert r["bf16_nhwc_over_new"] > 0
        assert all(v["minflt_per_step"] >= 0 for v in r["variants"].values())
    assert rec["batch_sweep"][0]["batch"] == 1
    assert rec["settings"]["heap"] == "keep"


#: bench_heap's and bench_omp's options for one tiny bench_train process per setting.
_ONE_TINY_PROCESS = ["--rounds", "1", "--steps", "2", "--warmup", "1", "--config", "zoo", "--batch", "1", "--crop", "64",
                     "--compile", "off", "--threads", "1"]


def test_heap_record(tmp_path):
    """bench_heap: one bench_train process per policy and round, with the policy in force."""
    data = write_image_folder(tmp_path / "imgs", [(80, 96), (96, 96)])
    out = tmp_path / "heap.json"
    assert bench_heap.main([*_ONE_TINY_PROCESS, "--data", str(data), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert [r["heap_kept"] for r in rec["runs"]["glibc"]] == [False]
    assert [r["heap_kept"] for r in rec["runs"]["keep"]] == [glibc]
    assert all(r["step_ms"] > 0 and r["minflt_per_step"] >= 0 for runs in rec["runs"].values() for r in runs)
    assert rec["glibc_over_keep"] > 0 and rec["glibc_over_keep_cpu"] > 0


def test_omp_record(tmp_path, monkeypatch):
    """bench_omp: one bench_train process per OpenMP wait policy and round, with it in force."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the children's own settings replace it
    data = write_image_folder(tmp_path / "imgs", [(80, 96), (96, 96)])
    out = tmp_path / "omp.json"
    assert bench_omp.main([*_ONE_TINY_PROCESS, "--data", str(data), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert {k: [r["omp_wait_policy"] for r in runs] for k, runs in rec["runs"].items()} == \
        {"passive": ["PASSIVE"], "default": [None], "active": ["ACTIVE"]}
    assert all(r["step_ms"] > 0 for runs in rec["runs"].values() for r in runs)
    assert rec["passive_over"]["passive"] == 1.0 and rec["passive_over"]["default"] > 0
