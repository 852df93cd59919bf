"""Training under torchrun: two CPU processes on gloo (DDP) stay identical, split the global
batch, and resume to the same weights as an uninterrupted two-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from leechcodec import train
from leechcodec.export import training_device
from leechcodec.models import ModelConfig


MODEL = ["--tokens", "1", "--channels", "8", "--hyper-channels", "8"]
CROP, BATCH, SEED = 64, 2, 0


def _torchrun(folder, out, steps: int) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "leechcodec.train", "--device", "cpu", "--data", str(folder), "--out", str(out),
           "--steps", str(steps), "--batch", str(BATCH), "--crop", str(CROP), "--seed", str(SEED),
           "--lr", "1e-3", "--ckpt-every", "1", "--val-dir", str(folder), "--val-images", "1", "--val-every", "2",
           *MODEL]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return torch.load(out / "checkpoint.pt", weights_only=False)


def _log(out) -> list[dict]:
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("elapsed_s")
    return records


@pytest.mark.timeout(300)
def test_two_gloo_processes_stay_identical_and_resume(image_folder, tmp_path):
    full = _torchrun(image_folder, tmp_path / "a", 3)
    assert (full["step"], full["world_size"], full["crops_seen"]) == (3, 2, 3 * BATCH)
    assert training_device(full) == f"2 processes × {full['device']}"
    # Both ranks hashed their own weights at the checkpoint: equal, and equal to the saved weights.
    assert full["rank_state_sha256"] == [train.state_sha256(full["model"])] * 2
    # Each rank drew BATCH/2 crops per step from its own generator (rank 0: the single-process one).
    images = train.load_training_images(image_folder, CROP, 1536)
    for rank, saved in enumerate(full["rank_rng"]):
        sampler = train.CropSampler(images, CROP, train.rank_seed(SEED, rank))
        for _ in range(3):
            sampler.batch(BATCH // 2)
        assert saved["sampler"] == sampler.rng.bit_generator.state, rank
    assert full["rank_rng"][0]["sampler"] != full["rank_rng"][1]["sampler"]
    log = _log(tmp_path / "a")
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in log) and "val_psnr" in log[1]

    two = _torchrun(image_folder, tmp_path / "b", 2)
    assert two["rank_state_sha256"][0] != full["rank_state_sha256"][0]
    resumed = _torchrun(image_folder, tmp_path / "b", 3)
    assert [s["step"] for s in resumed["segments"]] == [0, 2]
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert _log(tmp_path / "b") == log

    # One process may not continue a two-process run.
    cfg = train.TrainConfig(data=str(image_folder), out=str(tmp_path / "b"), steps=4, batch=BATCH, crop=CROP,
                            device="cpu")
    with pytest.raises(ValueError, match="2 process"):
        train.train(cfg, ModelConfig(tokens=1, channels=8, hyper_channels=8))


def test_global_batch_must_split_evenly():
    assert train.local_batch(8, 4) == 2
    for batch, world in ((3, 2), (1, 2), (0, 1)):
        with pytest.raises(ValueError, match="global batch"):
            train.local_batch(batch, world)


def test_a_rank_leaves_flushed_and_without_interpreter_shutdown():
    """A torchrun rank exits through ``leave``: its buffered output is written, and atexit
    handlers (interpreter shutdown, where gloo can abort the process) never run."""
    script = ("import atexit, sys; from leechcodec import train\n"
              "atexit.register(lambda: print('shutdown ran'))\n"
              "print('trained'); print('to stderr', file=sys.stderr)\n"
              "raise SystemExit(train.leave(3))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as a rank's pipes are
    for world, code, out in (("2", 3, "trained\n"), ("1", 3, "trained\nshutdown ran\n")):
        proc = subprocess.run([sys.executable, "-c", script], env={**env, "WORLD_SIZE": world},
                              capture_output=True, text=True, timeout=120)
        assert (proc.returncode, proc.stdout, proc.stderr.strip()) == (code, out, "to stderr"), world
