"""The zoo recipe: its commands are the registry's, and train → export works end to end."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
from PIL import Image

from leechcodec.bench.training import gpu_session, zoo_recipe

REGISTRY = Path(__file__).resolve().parents[3] / "leechcodec" / "weights" / "registry.json"


def test_recipe_reproduces_the_shipped_training_commands() -> None:
    """Every shipped zoo model was trained by the recipe's command (the GPU session's for the
    models trained on a GPU), at the shared budget; every family ships at least 5 rates."""
    shipped = {(e["name"], e["quality"]): e for e in json.loads(REGISTRY.read_text())}
    by_q = {r.quality: r for r in zoo_recipe.RECIPE}
    for family in zoo_recipe.FAMILIES:
        qualities = [q for q in by_q if (family, q) in shipped]
        assert len(qualities) >= 5, family
        for q in qualities:
            entry, r = shipped[(family, q)], by_q[q]
            if entry["budget"]["device"].startswith("cuda:"):
                assert q in gpu_session.GPU_QUALITIES
                cmd = gpu_session.zoo_command(gpu_session.DEVICE_DATA, Path("runs/gpu") / f"{family}-q{q}", family, r)
            else:
                cmd = zoo_recipe.train_command("../shared/data/train", zoo_recipe.DEFAULT_RUNS / f"{family}-q{q}",
                                               family, r, 1)
            assert entry["provenance"]["command"] == shlex.join(cmd)
            assert entry["budget"]["steps"] == zoo_recipe.BUDGET["steps"]
            assert entry["budget"]["crop"] == zoo_recipe.BUDGET["crop"]


def test_train_in_parallel_then_export(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (136, 150, 3), dtype=np.uint8)).save(data / f"{i}.png")
    runs, zoo = tmp_path / "runs", tmp_path / "zoo"
    common = ["--runs", str(runs), "--families", "leech24", "bsq", "--qualities", "1", "--steps", "2"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert zoo_recipe.main(["train", "--data", str(data), "--jobs", "2", *common]) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["bsq-q1", "leech24-q1"]
    assert zoo_recipe.main(["export", "--zoo", str(zoo), *common]) == 0
    entries = json.loads((zoo / "registry.json").read_text())
    assert sorted((e["name"], e["quality"], e["quantizer"]) for e in entries) == [("bsq", 1, "bsq"),
                                                                                  ("leech24", 1, "leech24")]
    for e in entries:
        assert e["budget"]["steps"] == 2 and "--steps 2" in e["provenance"]["command"]
    # A finished recipe is not retrained; an unfinished quality is refused by export.
    assert zoo_recipe.main(["train", "--data", str(data), *common]) == 0
    assert zoo_recipe.main(["export", "--zoo", str(zoo), *common[:-4], "--qualities", "2", "--steps", "2"]) == 1


def test_every_shipped_control_has_its_models_budget() -> None:
    """A gain–shape model whose control ships (``standing.controls_of``: scalar, BSQ) has it at
    every quality, with the same λ and exactly the same budget: the control never gets less."""
    from leechcodec.bench.training.standing import controls_of

    shipped = {(e["name"], e["quality"]): e for e in json.loads(REGISTRY.read_text())}
    names = {n for n, _ in shipped}
    pairs = 0
    for (name, q), entry in shipped.items():
        for control in controls_of(name):
            if control not in names:
                continue
            c = shipped.get((control, q))
            assert c is not None, f"{control} q{q} is missing"
            assert c["lmbda"] == entry["lmbda"]
            for key in ("steps", "batch", "crop", "crops_seen", "pixels_seen"):
                assert c["budget"][key] == entry["budget"][key], (name, q, key)
            pairs += 1
    assert pairs >= 6 + 6 + 7 + 7  # the 128-channel zoo around v1 and the 48-channel zoo, each with scalar and BSQ
