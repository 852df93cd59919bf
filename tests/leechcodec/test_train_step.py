"""The device-resident training step on CPU: the sync-free EntropyBottleneck equals CompressAI's,
the device sampler cuts the host sampler's crops, the new step trains bit-identically to the
old one, log records average several steps, and time-based checkpoints and stops resume
exactly (clocks injected: nothing here depends on the machine's speed)."""

from __future__ import annotations

import json
import logging
import tarfile

import numpy as np
import pytest
import torch

from leechcodec import train, trainstep
from leechcodec.models import EntropyBottleneck, ModelConfig
from leechcodec.traindata import CropSampler, DeviceCropSampler, load_training_images

from ..conftest import FakeClock

TINY = {"tokens": 1, "channels": 8, "hyper_channels": 8}


def _cfg(folder, out, steps: int, **kw) -> train.TrainConfig:
    return train.TrainConfig(data=str(folder), out=str(out), steps=steps, batch=2, crop=64, lr=1e-3, device="cpu",
                             **kw)


def _train(folder, out, steps: int, quantizer: str = "leech24", **kw) -> dict:
    path = train.train(_cfg(folder, out, steps, **kw), ModelConfig(quantizer=quantizer, **TINY))
    return torch.load(path, weights_only=False)


def _log(out) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("training", [True, False])
def test_sync_free_bottleneck_equals_compressai(training):
    """Both of the model's EntropyBottleneck forwards (sync-free, and the old step's) give
    CompressAI's values and gradients from the same noise draw."""
    theirs_cls = pytest.importorskip("compressai.entropy_models").EntropyBottleneck
    torch.manual_seed(0)
    ours = EntropyBottleneck(8)
    theirs = theirs_cls(8)
    theirs.load_state_dict(ours.state_dict())
    ours.train(training), theirs.train(training)
    x = (torch.randn(3, 8, 5, 7) * 4).requires_grad_()
    results = []
    for module in (ours, theirs):
        torch.manual_seed(1)  # the same noise draw
        out, lik = module(x)
        grads = torch.autograd.grad((out * 0.3).sum() - torch.log(lik).sum(), [x, *module.parameters()],
                                    allow_unused=True)
        results.append((out, lik, grads))
    (o1, l1, g1), (o2, l2, g2) = results
    assert torch.equal(o1, o2) and torch.equal(l1, l2)
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(g1, g2))
    ours.sync_free = False  # the old step's forward is CompressAI's own
    torch.manual_seed(1)
    assert torch.equal(ours(x)[1], l2)


def test_device_sampler_cuts_the_host_samplers_crops(image_folder, tmp_path):
    images = load_training_images(image_folder, 64, 1536)
    host, dev = CropSampler(images, 64, [3, 1]), DeviceCropSampler(images, 64, [3, 1])
    for n in (1, 4, 7):
        a, b = host.batch(n), dev.batch(n)
        assert torch.equal(a, b) and a.stride() == b.stride()
    assert host.rng.bit_generator.state == dev.rng.bit_generator.state
    # A packed set: the same images in the same order as the folder.
    pack = tmp_path / "set.tar"
    with tarfile.open(pack, "w") as tar:
        for p in sorted(image_folder.iterdir(), reverse=True):
            tar.add(p, arcname=f"sub/{p.name}")
    packed = load_training_images(pack, 64, 1536, workers=3)
    assert len(packed) == len(images) and all(np.array_equal(a, b) for a, b in zip(packed, images))


@pytest.mark.parametrize("quantizer", ["leech24", "bsq", "scalar"])
def test_new_step_trains_exactly_like_the_old_one(image_folder, tmp_path, quantizer):
    torch.set_num_threads(1)
    old = _train(image_folder, tmp_path / "old", 3, quantizer, legacy_step=True)
    new = _train(image_folder, tmp_path / "new", 3, quantizer)
    assert old["step_options"] == "legacy" and new["step_options"] == "device-resident"
    assert train.state_sha256(old["model"]) == train.state_sha256(new["model"])
    for a, b in zip(_log(tmp_path / "old"), _log(tmp_path / "new")):
        a.pop("elapsed_s"), b.pop("elapsed_s")
        assert a == b


def test_step_options_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert trainstep.step_options(cpu) == trainstep.StepOptions()
    assert trainstep.step_options(cuda) == trainstep.StepOptions(channels_last=True, fused=True, compile=True)
    assert trainstep.step_options(cuda, compile="off").compile is False
    assert trainstep.step_options(cpu, channels_last="on").channels_last is True
    assert trainstep.step_options(cuda, legacy=True).describe() == "legacy"
    with pytest.raises(ValueError, match="--legacy-step"):
        trainstep.step_options(cpu, legacy=True, compile="on")
    with pytest.raises(ValueError, match="--compile"):
        trainstep.step_options(cpu, compile="yes")
    assert trainstep.step_options(cpu, fused="on").describe() == "device-resident+fused"
    assert trainstep.step_options(cuda, fused="off").fused is False
    with pytest.raises(ValueError, match="--fused-adam"):
        trainstep.step_options(cpu, legacy=True, fused="on")


def test_foreach_clipping_is_the_per_tensor_clipping_on_cpu():
    """The step clips with the for-each norm; on the CPU it gives the per-tensor bits."""
    torch.manual_seed(0)
    shapes = [(128, 3, 5, 5), (128,), (192, 128, 5, 5), (1, 1), (8, 24, 3, 3), (1000,)]
    for scale in (1e-6, 1e-2, 1.0, 1e3, 1e6):
        grads = [torch.randn(s) * scale for s in shapes]
        per_tensor = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
        foreach = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
        for p, q, g in zip(per_tensor, foreach, grads):
            p.grad, q.grad = g.clone(), g.clone()
        a = torch.nn.utils.clip_grad_norm_(per_tensor, 1.0, foreach=False)
        b = torch.nn.utils.clip_grad_norm_(foreach, 1.0, foreach=True)
        assert torch.equal(a, b) and all(torch.equal(p.grad, q.grad) for p, q in zip(per_tensor, foreach))


def test_a_resumed_run_takes_its_own_adam(image_folder, tmp_path):
    """--fused-adam applies to a run resumed from a plain-Adam checkpoint, and back."""
    torch.set_num_threads(1)
    assert _train(image_folder, tmp_path / "r", 2)["opt"]["param_groups"][0]["fused"] is None
    ck = _train(image_folder, tmp_path / "r", 3, fused_adam="on")
    assert ck["step_options"] == "device-resident+fused"
    assert ck["opt"]["param_groups"][0]["fused"] is True and ck["aux_opt"]["param_groups"][0]["fused"] is True
    assert _train(image_folder, tmp_path / "r", 4)["opt"]["param_groups"][0]["fused"] is None


def test_fused_adam_on_cpu_trains_close_to_plain_adam(image_folder, tmp_path):
    torch.set_num_threads(1)
    plain = _train(image_folder, tmp_path / "plain", 3)
    fused = _train(image_folder, tmp_path / "fused", 3, fused_adam="on")
    assert fused["step_options"] == "device-resident+fused" and fused["train_config"]["fused_adam"] == "on"
    for k, v in plain["model"].items():
        if v.is_floating_point():
            torch.testing.assert_close(fused["model"][k], v, rtol=1e-3, atol=1e-5)


def test_log_records_average_steps(image_folder, tmp_path):
    torch.set_num_threads(1)
    _train(image_folder, tmp_path / "one", 5)
    _train(image_folder, tmp_path / "avg", 5, log_every=2)
    one, avg = _log(tmp_path / "one"), _log(tmp_path / "avg")
    assert [r["step"] for r in avg] == [2, 4, 5] and [r["n"] for r in avg] == [2, 2, 1]
    for rec, steps in zip(avg, ([0, 1], [2, 3], [4])):
        for key in ("loss", "bpp", "aux"):
            assert rec[key] == pytest.approx(np.mean([one[i][key] for i in steps]), rel=1e-6), key


def test_channels_last_on_cpu_trains_the_same_run(image_folder, tmp_path):
    """NHWC weights change the convolution algorithm, not the run: the checkpoint resumes
    in the default layout and the weights stay close."""
    torch.set_num_threads(1)
    a = _train(image_folder, tmp_path / "nchw", 2)
    b = _train(image_folder, tmp_path / "nhwc", 2, channels_last="on")
    assert b["step_options"] == "device-resident+channels_last"
    for key, value in a["model"].items():
        assert torch.allclose(value, b["model"][key], atol=1e-5), key
    resumed = _train(image_folder, tmp_path / "nhwc", 3)
    assert resumed["step"] == 3


def test_time_based_checkpoints_and_stop_resume_exactly(image_folder, tmp_path):
    """Each clock reading adds 10 s: every step's log point reads the clock twice, so a
    checkpoint falls due every few steps, and the stop comes at a fixed step."""
    torch.set_num_threads(1)
    full = _train(image_folder, tmp_path / "full", 6)
    seen: list[int] = []
    cfg = _cfg(image_folder, tmp_path / "relay", 6, ckpt_minutes=1.0)
    train.train(cfg, ModelConfig(**TINY), clock=FakeClock(10.0), deadline=120.0,
                on_checkpoint=lambda path, step: seen.append(step))
    first = torch.load(tmp_path / "relay" / "checkpoint.pt", weights_only=False)
    assert seen and seen[-1] == first["step"] < 6
    assert len(seen) >= 2, "a time-based checkpoint before the stop"
    resumed = torch.load(train.train(cfg, ModelConfig(**TINY)), weights_only=False)
    assert resumed["step"] == 6
    assert train.state_sha256(resumed["model"]) == train.state_sha256(full["model"])
    assert [r["step"] for r in _log(tmp_path / "relay")] == list(range(1, 7))


def test_time_limit_flag_stops_with_a_checkpoint(image_folder, tmp_path):
    torch.set_num_threads(1)
    cfg = _cfg(image_folder, tmp_path / "t", 50, time_limit=35.0)
    state = torch.load(train.train(cfg, ModelConfig(**TINY), clock=FakeClock(10.0)), weights_only=False)
    assert 0 < state["step"] < 50 and state["train_config"]["time_limit"] == 35.0


def test_stop_at_ends_a_segment_on_the_full_schedule(image_folder, tmp_path):
    """``stop_at`` stops at that step with a checkpoint; the learning rate still follows the
    schedule of ``steps`` (a cool-down in the second half), so going on to the end equals
    one uninterrupted run."""
    torch.set_num_threads(1)
    full = _train(image_folder, tmp_path / "full", 6, lr_decay_from=0.5)
    part = _train(image_folder, tmp_path / "seg", 6, lr_decay_from=0.5, stop_at=4)
    assert part["step"] == 4 and [r["step"] for r in _log(tmp_path / "seg")] == [1, 2, 3, 4]
    assert train.state_sha256(part["model"]) != train.state_sha256(full["model"])
    resumed = _train(image_folder, tmp_path / "seg", 6, lr_decay_from=0.5)
    assert resumed["step"] == 6
    assert train.state_sha256(resumed["model"]) == train.state_sha256(full["model"])
    assert [s["step"] for s in resumed["segments"]] == [0, 4]


def test_compile_failure_falls_back_to_eager(image_folder, tmp_path, monkeypatch, caplog):
    torch.set_num_threads(1)
    reference = _train(image_folder, tmp_path / "eager", 2)

    def failing_compile(self, *args, **kwargs):
        def broken(*a, **k):
            raise RuntimeError("no compiler here")

        self._compiled_call_impl = broken

    monkeypatch.setattr(torch.nn.Module, "compile", failing_compile)
    with caplog.at_level(logging.WARNING, logger="leechcodec.train"):
        state = _train(image_folder, tmp_path / "fallback", 2, compile="on")
    assert "torch.compile failed (RuntimeError: no compiler here)" in caplog.text
    assert state["step_options"] == "device-resident"
    assert train.state_sha256(state["model"]) == train.state_sha256(reference["model"])


@pytest.mark.slow
def test_compiled_transforms_train_on_cpu(image_folder, tmp_path):
    """torch.compile on the CPU (inductor needs a C compiler): the run trains and resumes eagerly."""
    torch.set_num_threads(1)
    state = _train(image_folder, tmp_path / "c", 2, compile="on")
    assert state["step_options"] == "device-resident+compile"
    assert _train(image_folder, tmp_path / "c", 3)["step"] == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bsq_step_has_no_host_sync_on_cuda(image_folder, tmp_path):
    """After the first steps (allocations, cuDNN choices), a step of the BSQ family (its
    quantizer and prior are plain tensor code) makes no host synchronization."""
    from leechcodec.models import LeechCodecModel

    device = torch.device("cuda")
    model = LeechCodecModel(ModelConfig(quantizer="bsq", **TINY)).to(device)
    sampler = DeviceCropSampler(load_training_images(image_folder, 64, 1536), 64, 0, device)
    options = trainstep.step_options(device, compile="off")
    step = trainstep.TrainStep(model, model, sampler, 2, 0.01, 1e-3, device, "bf16", options)
    for _ in range(3):
        step()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    means, _ = step.take_stats()
    assert np.isfinite(list(means.values())).all()


@pytest.mark.timeout(300)
def test_cli_resume_in_a_fresh_process_from_a_copied_folder(image_folder, tmp_path):
    """``leechcodec train`` for 4 steps = 2 steps, the run folder copied, 2 more in a new process."""
    import os
    import shutil
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}

    def cli(out, steps: int) -> dict:
        cmd = [sys.executable, "-m", "leechcodec.cli", "train", "--data", str(image_folder), "--out", str(out),
               "--steps", str(steps), "--batch", "2", "--crop", "64", "--lr", "1e-3", "--tokens", "1", "--channels",
               "8", "--hyper-channels", "8", "--device", "cpu", "--threads", "1"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return torch.load(out / "checkpoint.pt", weights_only=False)

    full = cli(tmp_path / "full", 4)
    cli(tmp_path / "half", 2)
    shutil.copytree(tmp_path / "half", tmp_path / "moved")
    resumed = cli(tmp_path / "moved", 4)
    assert [s["step"] for s in resumed["segments"]] == [0, 2]
    assert train.state_sha256(resumed["model"]) == train.state_sha256(full["model"])
