"""The training relay on the CPU, end to end with tiny runs: train → stop → resume elsewhere
(a copied folder, a fresh process) → the uninterrupted run's weights. Clocks are injected;
nothing depends on the machine's speed."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from leechcodec import train
from leechcodec.bench.training import relay

from ...conftest import FakeClock, write_image_folder

TINY = ["--tokens", "1", "--channels", "8", "--hyper-channels", "8", "--steps", "6", "--batch", "2", "--crop", "64",
        "--lr", "1e-3"]


@pytest.fixture
def packed(tmp_path) -> Path:
    folder = write_image_folder(tmp_path / "imgs", [(80 + 8 * k, 96) for k in range(3)])
    assert relay.main(["pack", "--data", str(folder), "--out", str(tmp_path / "set.tar"), "--quality", "90"]) == 0
    return tmp_path / "set.tar"


def _run(argv: list[str], clock=None) -> int:
    torch.set_num_threads(1)
    return relay.main(["run", "--device", "cpu", "--threads", "1", *argv], **({"clock": clock} if clock else {}))


def _weights(folder: Path, tmp: Path) -> dict:
    relay.join_checkpoint(folder, tmp / "joined.pt")
    return torch.load(tmp / "joined.pt", weights_only=False)


def test_pack_is_reproducible(packed, tmp_path):
    again = tmp_path / "again.tar"
    relay.main(["pack", "--data", str(tmp_path / "imgs"), "--out", str(again), "--quality", "90"])
    assert again.read_bytes() == packed.read_bytes()
    assert len(train.load_training_images(packed, 64, 1024)) == 3


def test_split_and_join(tmp_path):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(os.urandom(2500))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "checkpoint.pt.07").write_bytes(b"stale")
    parts = relay.split_checkpoint(ckpt, tmp_path / "out", part_bytes=1000)
    assert parts["parts"] == ["checkpoint.pt.00", "checkpoint.pt.01", "checkpoint.pt.02"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == parts["parts"]
    (tmp_path / "out" / relay.MANIFEST).write_text(json.dumps({"checkpoint": parts}))
    relay.join_checkpoint(tmp_path / "out", tmp_path / "j.pt")
    assert (tmp_path / "j.pt").read_bytes() == ckpt.read_bytes()
    (tmp_path / "out" / "checkpoint.pt.01").write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="do not join"):
        relay.join_checkpoint(tmp_path / "out", tmp_path / "j.pt")


@pytest.mark.timeout(300)
def test_train_stop_resume_elsewhere_equals_uninterrupted(packed, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    full = tmp_path / "full"
    assert _run(["--pack", str(packed), "--out", str(full), "--run-dir", str(tmp_path / "rf"), "--minutes", "1e6",
                 *TINY]) == 0
    summary = json.loads((full / relay.SUMMARY).read_text())
    assert summary["complete"] and summary["steps"] == 6 and summary["train_share"] > 0
    assert summary["command"].startswith("python -m leechcodec.bench.training.relay run --device cpu --threads 1 ")

    # A window of 2 "minutes" on a clock that moves 10 s per reading: it stops early, with
    # time-based checkpoints on the way, and brings back at most 8 files of at most 16 MiB.
    leg1 = tmp_path / "leg1"
    assert _run(["--pack", str(packed), "--out", str(leg1), "--run-dir", str(tmp_path / "r1"), "--minutes", "2",
                 "--margin", "0", "--ckpt-minutes", "0.5", *TINY], clock=FakeClock(10.0)) == 0
    files = sorted(p.name for p in leg1.iterdir())
    assert files == ["checkpoint.pt.00", relay.LOG, relay.MANIFEST, relay.SUMMARY]
    assert all((leg1 / f).stat().st_size <= 16 * 2**20 for f in files)
    manifest = json.loads((leg1 / relay.MANIFEST).read_text())
    summary = json.loads((leg1 / relay.SUMMARY).read_text())
    stopped = manifest["step"]
    assert 0 < stopped < 6 and not summary["complete"] and len(summary["checkpoints"]) >= 2
    assert manifest["pack_sha256"] == relay.sha256_file(packed)

    # Elsewhere: a copy of what came back, a fresh process, another run folder.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(leg1, elsewhere / "leg1")
    shutil.copy(packed, elsewhere / "set.tar")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "leechcodec.bench.training.relay", "run", "--device", "cpu", "--threads", "1",
           "--pack", "set.tar", "--resume", "leg1", "--out", "leg2", "--run-dir", "run", "--minutes", "1e6"]
    proc = subprocess.run(cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    leg2 = elsewhere / "leg2"
    summary = json.loads((leg2 / relay.SUMMARY).read_text())
    assert summary["complete"] and (summary["steps_from"], summary["steps_to"]) == (stopped, 6)
    resumed, uninterrupted = _weights(leg2, tmp_path), _weights(full, tmp_path)
    assert resumed["step"] == 6
    assert train.state_sha256(resumed["model"]) == train.state_sha256(uninterrupted["model"])
    assert [s["step"] for s in resumed["segments"]] == [0, stopped]
    log = [json.loads(ln) for ln in gzip.decompress((leg2 / relay.LOG).read_bytes()).decode().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 7))


def test_resume_refuses_another_pack_and_new_flags(packed, tmp_path):
    out = tmp_path / "o"
    assert _run(["--pack", str(packed), "--out", str(out), "--run-dir", str(tmp_path / "r"), "--minutes", "1e6",
                 *TINY[:-6], "--steps", "1", "--batch", "2", "--crop", "64"]) == 0
    other = tmp_path / "other.tar"
    other.write_bytes(packed.read_bytes() + b"\0" * 1024)
    assert _run(["--pack", str(other), "--out", str(tmp_path / "o2"), "--run-dir", str(tmp_path / "r2"),
                 "--minutes", "1", "--resume", str(out)]) == 1
    assert _run(["--pack", str(packed), "--out", str(tmp_path / "o3"), "--run-dir", str(tmp_path / "r3"),
                 "--minutes", "1", "--resume", str(out), "--lmbda", "0.1"]) == 1


def test_gain_shape_run_keeps_its_gain_settings_across_windows(packed, tmp_path, monkeypatch):
    """``--gain-frac-bits`` is part of the model, ``--gain-noise`` of the training; a resumed
    window takes both from the checkpoint (and refuses them as new flags)."""
    first = tmp_path / "first"
    flags = ["--quantizer", "leech24gs", *TINY[:-6], "--steps", "1", "--batch", "2", "--crop", "64",
             "--gain-frac-bits", "1", "--gain-noise"]
    assert _run(["--pack", str(packed), "--out", str(first), "--run-dir", str(tmp_path / "r1"), "--minutes", "1e6",
                 *flags]) == 0
    state = _weights(first, tmp_path)
    assert state["model_config"]["gain_frac_bits"] == 1 and state["train_config"]["gain_noise"] is True
    assert _run(["--pack", str(packed), "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r2"),
                 "--minutes", "1e6", "--resume", str(first), "--gain-noise"]) == 1
    resumed = []
    monkeypatch.setattr(train, "train", lambda cfg, model_cfg, **kw: resumed.append((cfg, model_cfg)))
    assert _run(["--pack", str(packed), "--out", str(tmp_path / "o"), "--run-dir", str(tmp_path / "r3"),
                 "--minutes", "1e6", "--resume", str(first)]) == 0
    (cfg, model_cfg), = resumed
    assert cfg.gain_noise is True and model_cfg.gain_frac_bits == 1


def test_slim_window_resumes_with_fresh_optimizer_states(packed, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    leg1 = tmp_path / "leg1"
    assert _run(["--pack", str(packed), "--out", str(leg1), "--run-dir", str(tmp_path / "r1"), "--minutes", "2",
                 "--margin", "0", "--ckpt-minutes", "0.5", *TINY], clock=FakeClock(10.0)) == 0
    full = json.loads((leg1 / relay.MANIFEST).read_text())
    thin = tmp_path / "thin"
    assert relay.main(["slim", str(leg1), "--out", str(thin)]) == 0
    manifest = json.loads((thin / relay.MANIFEST).read_text())
    assert manifest["optimizer"] is False and manifest["step"] == full["step"] < 6
    assert manifest["checkpoint"]["bytes"] < full["checkpoint"]["bytes"] / 2
    state = _weights(thin, tmp_path)
    before = _weights(leg1, tmp_path)
    assert "opt" not in state and "aux_opt" not in state
    assert train.state_sha256(state["model"]) == train.state_sha256(before["model"])
    assert (thin / relay.LOG).read_bytes() == (leg1 / relay.LOG).read_bytes()

    # the same from the run's own checkpoint.pt: the manifest needs the pack it was trained on
    run_ckpt, direct = tmp_path / "r1" / "checkpoint.pt", tmp_path / "direct"
    assert relay.main(["slim", str(run_ckpt), "--out", str(direct)]) == 1 and not direct.exists()
    assert relay.main(["slim", str(leg1), "--out", str(direct), "--pack", str(packed)]) == 1
    assert relay.main(["slim", str(run_ckpt), "--out", str(direct), "--pack", str(packed)]) == 0
    assert json.loads((direct / relay.MANIFEST).read_text()) == manifest
    assert [(direct / n).read_bytes() for n in manifest["checkpoint"]["parts"]] == \
        [(thin / n).read_bytes() for n in manifest["checkpoint"]["parts"]]
    assert (direct / relay.LOG).read_bytes() == (leg1 / relay.LOG).read_bytes()

    leg2 = tmp_path / "leg2"
    assert _run(["--pack", str(packed), "--out", str(leg2), "--run-dir", str(tmp_path / "r2"), "--minutes", "1e6",
                 "--resume", str(thin)]) == 0
    after = _weights(leg2, tmp_path)
    assert after["step"] == 6 and "opt" in after
    assert [s.get("optimizer") for s in after["segments"]] == [None, "fresh"]


def test_from_zoo_continues_a_released_models_budget(packed, tmp_path, monkeypatch):
    """A released model's weights and registry budget become a slim checkpoint that
    ``leechcodec train`` continues: the step, crops and segments carry on, Adam starts afresh
    and the new segment names the model it started from."""
    from leechcodec.export import export_checkpoint
    from leechcodec.zoo import load_model

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    zoo = tmp_path / "zoo"
    monkeypatch.setenv("LEECHCODEC_ZOO", str(zoo))
    flags = ["--data", str(packed), "--quantizer", "leech24gs", "--tokens", "1", "--channels", "8",
             "--hyper-channels", "8", "--batch", "2", "--crop", "64", "--lr", "1e-3", "--device", "cpu",
             "--threads", "1", "--gain-noise"]
    assert train.main([*flags, "--out", str(tmp_path / "r1"), "--steps", "3"]) == 0
    first = export_checkpoint(tmp_path / "r1" / "checkpoint.pt", "tiny", 1, zoo)
    ckpt = tmp_path / "r2" / "checkpoint.pt"
    assert relay.main(["from-zoo", "tiny.q1", "--out", str(ckpt)]) == 0
    assert relay.main(["from-zoo", "tiny.q1", "--out", str(ckpt)]) == 1  # never overwritten
    assert relay.main(["from-zoo", "nosuch.q1", "--out", str(tmp_path / "x.pt")]) == 1
    state = torch.load(ckpt, weights_only=False)
    assert "opt" not in state and state["step"] == 3
    assert (state["crops_seen"], state["pixels_seen"]) == (6, 6 * 64 * 64)
    _, released = load_model("tiny", 1)
    assert train.state_sha256(state["model"]) == train.state_sha256(released.state_dict())
    assert state["from_zoo"] == {"model": "tiny.q1", "sha256": first.sha256}

    assert train.main([*flags, "--out", str(tmp_path / "r2"), "--steps", "5"]) == 0
    after = torch.load(ckpt, weights_only=False)
    assert after["step"] == 5 and "opt" in after
    assert (after["crops_seen"], after["pixels_seen"]) == (10, 10 * 64 * 64)
    assert [s["step"] for s in after["segments"]] == [0, 3]
    assert after["segments"][-1]["optimizer"] == "fresh"
    assert after["segments"][-1]["weights_from"] == state["from_zoo"]
    assert train.state_sha256(after["model"]) != train.state_sha256(state["model"])
    assert export_checkpoint(ckpt, "tiny", 2, zoo).budget["steps"] == 5

    # a relay window continues it too, to the schedule that from-zoo was given
    run_dir = tmp_path / "r3"
    assert relay.main(["from-zoo", "tiny.q2", "--out", str(run_dir / "checkpoint.pt"), "--steps", "7",
                       "--lr-decay-from", "0.5"]) == 0
    assert _run(["--pack", str(packed), "--out", str(tmp_path / "leg"), "--run-dir", str(run_dir),
                 "--minutes", "1e6"]) == 0
    window = _weights(tmp_path / "leg", tmp_path)
    assert window["step"] == 7 and window["train_config"]["lr_decay_from"] == 0.5
    assert window["segments"][-1]["weights_from"]["model"] == "tiny.q2"

    # a context model starts from the released weights, its context drawn afresh with a zero output
    ctx = tmp_path / "r4" / "checkpoint.pt"
    assert relay.main(["from-zoo", "tiny.q1", "--out", str(tmp_path / "x.pt"), "--context", "nosuch"]) == 1
    assert relay.main(["from-zoo", "tiny.q1", "--out", str(ctx), "--context", "checkerboard"]) == 0
    cstate = torch.load(ctx, weights_only=False)
    assert cstate["model_config"]["context"] == "checkerboard"
    assert cstate["from_zoo"] == {"model": "tiny.q1", "sha256": first.sha256, "context": "checkerboard"}
    own = {k: v for k, v in cstate["model"].items() if not k.startswith("context.")}
    assert train.state_sha256(own) == train.state_sha256(released.state_dict())
    assert not cstate["model"]["context.ep.2.weight"].any() and cstate["model"]["context.ctx.weight"].any()
    assert train.main([*flags, "--out", str(tmp_path / "r4"), "--steps", "5"]) == 1  # another configuration
    assert train.main([*flags, "--context", "checkerboard", "--context-lr-scale", "10", "--out", str(tmp_path / "r4"),
                       "--steps", "5"]) == 0
    trained = torch.load(ctx, weights_only=False)
    assert trained["step"] == 5 and trained["model"]["context.ep.2.weight"].any()
    groups = trained["opt"]["param_groups"]  # the new context trains at 10 × the rest's rate
    assert [g["lr_scale"] for g in groups] == [1.0, 10.0] and groups[1]["lr"] == pytest.approx(10 * groups[0]["lr"])
    assert len(groups[1]["params"]) == len([k for k in trained["model"] if k.startswith("context.")])
    # a relay window resumes it with the context's own learning rate (its Adam groups load)
    assert _run(["--pack", str(packed), "--out", str(tmp_path / "leg4"), "--run-dir", str(tmp_path / "r4"),
                 "--minutes", "1e6"]) == 0
    export_checkpoint(ctx, "tinyctx", 1, zoo)
    _, released_ctx = load_model("tinyctx", 1)
    assert released_ctx.config.context == "checkerboard"
