"""The one-shot device session script, tried out on the CPU with tiny runs."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from leechcodec.bench.training import gpu_session
from leechcodec.export import export_checkpoint


def _images(folder: Path, sizes) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_steps_that_fit() -> None:
    assert gpu_session.steps_that_fit(0.1, 100.0, 20.0) == 800
    assert gpu_session.steps_that_fit(0.1, 100.0, 95.0) == 0
    assert gpu_session.steps_that_fit(0.1, 10.0, 20.0) == 0


def test_pack_downscales_and_reencodes(tmp_path: Path) -> None:
    _images(tmp_path / "src" / "a", [(40, 300), (64, 64)])
    n, size = gpu_session.pack(tmp_path / "src", tmp_path / "dst", max_side=150, quality=90)
    files = sorted((tmp_path / "dst" / "a").iterdir())
    assert n == 2 and [f.name for f in files] == ["0.jpg", "1.jpg"]
    assert size == sum(f.stat().st_size for f in files)
    with Image.open(files[0]) as im:
        assert im.format == "JPEG" and im.size == (150, 20)
    with Image.open(files[1]) as im:
        assert im.size == (64, 64)


def test_zoo_command_is_the_recipe_on_the_device() -> None:
    r = gpu_session.RECIPE[-1]
    cmd = gpu_session.zoo_command("D", Path("runs/x"), "bsq", r)
    assert cmd[-6:] == ["--threads", "1", "--device", "cuda", "--amp", "off"]
    assert cmd[cmd.index("--tokens") + 1] == str(r.tokens) and cmd[cmd.index("--lmbda") + 1] == str(r.lmbda)


def test_run_trains_probes_and_writes_loadable_checkpoints(tmp_path: Path, monkeypatch) -> None:
    """Fixed step counts and deadlines far beyond any machine's speed: the test checks what
    the session trains and writes, never how fast (CI runs on a busy 2-core machine)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _images(tmp_path / "data", [(150, 160)] * 3)
    out = tmp_path / "out"
    rc = gpu_session.main(["run", "--data", str(tmp_path / "data"), "--runs", str(tmp_path / "runs"),
                           "--out", str(out), "--device", "cpu", "--trial", "--zoo-qualities", "1",
                           "--zoo-steps", "2", "--probe-steps", "8", "--deadline", "86400", "--zoo-deadline", "86400",
                           "--margin", "10",
                           "--default-steps", "20"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    for family in ("leech24", "bsq", "scalar"):
        run = summary["runs"][f"{family}-q1"]
        assert run["rc"] == 0 and run["step"] == 2 and "--steps 2" in run["command"]
        entry = export_checkpoint(out / run["file"], family, 1, tmp_path / "zoo", command=run["command"])
        assert entry.budget["steps"] == 2 and entry.quantizer == family
    probe = summary["default_probe"]
    assert probe["seconds_per_step"] > 0 and probe["steps"] == 20
    default = summary["runs"]["leech24-hyper-q3"]
    assert default["rc"] == 0 and default["step"] == 20 and "--steps 20 --batch 2 --crop 64" in default["command"]
    assert export_checkpoint(out / default["file"], "leech24-hyper", 3, tmp_path / "zoo").budget["steps"] == 20
    with tarfile.open(out / "logs.tar.gz") as tar:
        names = tar.getnames()
    assert "leech24-q1/log.jsonl" in names and "default-probe/log.jsonl" in names


def test_run_refuses_unknown_quality(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        gpu_session.main(["run", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--zoo-qualities", "9"])
    assert not (tmp_path / "o").exists()
