"""Training: a few steps on tiny images; resume gives the same weights as an uninterrupted run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leechcodec import train
from leechcodec.models import ModelConfig


def _run(folder, out, steps, quantizer="leech24"):
    cfg = train.TrainConfig(data=str(folder), out=str(out), steps=steps, batch=2, crop=64, lr=1e-3,
                            val_dir=str(folder), val_images=1, val_every=2, ckpt_every=1)
    mcfg = ModelConfig(quantizer=quantizer, tokens=1, channels=8, hyper_channels=8)
    return torch.load(train.train(cfg, mcfg), weights_only=False)


@pytest.mark.parametrize("quantizer", ["leech24", "bsq"])
def test_resume_equals_uninterrupted(image_folder, tmp_path, quantizer):
    torch.set_num_threads(1)
    full = _run(image_folder, tmp_path / "a", 4, quantizer)
    _run(image_folder, tmp_path / "b", 2, quantizer)
    resumed = _run(image_folder, tmp_path / "b", 4, quantizer)
    assert resumed["step"] == full["step"] == 4
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) for r in log)
    assert "val_psnr" in log[1]


def test_rate_term_decreases_with_training(image_folder, tmp_path):
    """The loss actually trains: bpp+distortion after 30 steps below the start."""
    torch.set_num_threads(1)
    _run(image_folder, tmp_path / "c", 30)
    log = [json.loads(line) for line in (tmp_path / "c" / "log.jsonl").read_text().splitlines()]
    first = np.mean([r["loss"] for r in log[:5]])
    last = np.mean([r["loss"] for r in log[-5:]])
    assert last < first


def test_refuses_resume_with_other_architecture(image_folder, tmp_path):
    _run(image_folder, tmp_path / "d", 1)
    cfg = train.TrainConfig(data=str(image_folder), out=str(tmp_path / "d"), steps=2, batch=2, crop=64)
    with pytest.raises(ValueError, match="another configuration"):
        train.train(cfg, ModelConfig(tokens=2, channels=8, hyper_channels=8))


def test_a_run_folder_has_one_trainer_at_a_time(image_folder, tmp_path):
    """While a process trains a folder it holds the folder's lock: a second trainer is
    refused, and the zoo recipe does not take the run for finished; after, both may go on."""
    import subprocess
    import sys

    from leechcodec.bench.training import zoo_recipe
    from leechcodec.traincheckpoint import is_training, run_lock

    out = tmp_path / "e"
    _run(image_folder, out, 2)
    assert not is_training(out) and zoo_recipe._finished(out, 2)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom leechcodec.traincheckpoint import run_lock\n"
        f"with run_lock({str(out)!r}):\n    print('held', flush=True)\n    sys.stdin.readline()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert is_training(out) and not zoo_recipe._finished(out, 2)
        with pytest.raises(ValueError, match="another process"):
            _run(image_folder, out, 3)
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0 and not is_training(out)
    with run_lock(out):  # free again
        pass
    assert _run(image_folder, out, 3)["step"] == 3


def test_cool_down_a_resumed_run_with_a_later_decay(image_folder, tmp_path):
    """``--steps`` and ``--lr-decay-from`` of a resumed run set a new end: the learning rate stays
    until the old end and decays linearly to lr/10 after it."""
    base = ["--data", str(image_folder), "--out", str(tmp_path / "r"), "--crop", "64", "--batch", "1", "--channels",
            "8", "--hyper-channels", "8", "--tokens", "1", "--lr", "1e-3", "--threads", "1", "--device", "cpu"]
    assert train.main([*base, "--steps", "2", "--lr-decay-from", "1.0"]) == 0
    assert train.main([*base, "--steps", "5", "--lr-decay-from", "0.4"]) == 0
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert lrs[:2] == [1e-3, 1e-3]
    assert lrs[2:] == pytest.approx([1e-3 * (1 - 0.9 * f) for f in (0, 1 / 3, 2 / 3)])


def test_crops_and_pixels_seen_follow_each_segment(tmp_path):
    """A resumed run may change its batch and crop size; crops and pixels seen add up per segment
    (and the export's budget says so)."""
    from leechcodec.export import export_checkpoint

    from ..conftest import write_image_folder

    images = write_image_folder(tmp_path / "big", [(128, 136), (136, 128)])
    base = ["--data", str(images), "--out", str(tmp_path / "r"), "--channels", "8", "--hyper-channels", "8",
            "--tokens", "1", "--threads", "1", "--device", "cpu", "--steps", "4"]
    assert train.main([*base, "--crop", "64", "--batch", "1", "--time-limit", "0", "--log-every", "2"]) == 0
    first = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)["step"]
    assert train.main([*base, "--crop", "128", "--batch", "2", "--lmbda", "0.002"]) == 0
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert [(s["step"], s["batch"], s["crop"]) for s in state["segments"]] == [(0, 1, 64), (first, 2, 128)]
    assert [s["lmbda"] for s in state["segments"]] == [train.TrainConfig.lmbda, 0.002]
    assert state["crops_seen"] == first + 2 * (4 - first)
    assert state["pixels_seen"] == first * 64**2 + 2 * (4 - first) * 128**2
    entry = export_checkpoint(tmp_path / "r" / "checkpoint.pt", "m", 1, tmp_path / "zoo")
    assert entry.budget["pixels_seen"] == state["pixels_seen"]
    assert entry.provenance["segments"] == state["segments"] and entry.lmbda == 0.002
