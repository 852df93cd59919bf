"""Shared fixtures: a tiny seeded model zoo for codec and CLI tests (no shipped weights needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

class FakeClock:
    """Seconds that pass only when the test says so: ``tick`` per reading (for code that
    takes a clock, so that no test depends on the machine's speed)."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


GOLDEN_DIR = Path(__file__).with_name("golden")
REGEN = os.environ.get("LEECHCODEC_REGEN_GOLDEN") == "1"


#: The registry's budget of an untrained fixture model (every key a real entry has).
TINY_BUDGET = {"steps": 0, "batch": 0, "crop": 0, "crops_seen": 0, "pixels_seen": 0, "wall_s": 0.0,
               "device": "none (seeded, untrained)"}


#: Scales of the tiny gain–shape model's two tokens (its last g_a layer's weights are multiplied
#: by them): token norms near 0.5 (a mix of gains 0 and 1) and near 2.
GAIN_SHAPE_LATENT_GAINS = (1.85, 8.0)


def make_tiny_zoo(folder: Path) -> Path:
    """Export four tiny seeded, untrained models (Λ24, BSQ, scalar, gain–shape Λ24) into ``folder``."""
    import torch

    from leechcodec.models import LeechCodecModel, ModelConfig
    from leechcodec.zoo import export_weights

    for name, quantizer in (("tiny-leech", "leech24"), ("tiny-bsq", "bsq")):
        torch.manual_seed(0)
        cfg = ModelConfig(quantizer=quantizer, tokens=2, bsq_dim=18, channels=16, hyper_channels=8)
        model = LeechCodecModel(cfg)
        with torch.no_grad():  # give the prior some structure so probabilities are not flat
            model.h_s[-1].bias.normal_(0, 0.5)
        export_weights(model, folder, name, 1, quantizer, 0.01, TINY_BUDGET, {"note": "seeded test fixture"},
                       fmt="pt")  # the golden files record these weights' hash
    torch.manual_seed(0)
    cfg = ModelConfig(quantizer="scalar", tokens=2, channels=16, hyper_channels=8)
    model = LeechCodecModel(cfg)
    with torch.no_grad():  # latents of a few units and scales over most of the coder's table
        m = cfg.latent_channels
        model.g_a[-1].weight.mul_(100)
        model.h_s[-1].bias[:m].normal_(0, 0.5)
        model.h_s[-1].bias[m:].copy_(torch.logspace(-1.5, 2, m))
    export_weights(model, folder, "tiny-scalar", 1, "scalar", 0.01, TINY_BUDGET, {"note": "seeded test fixture"},
                   fmt="pt")
    torch.manual_seed(0)
    cfg = ModelConfig(quantizer="leech24gs", tokens=2, channels=16, hyper_channels=8)
    model = LeechCodecModel(cfg)
    with torch.no_grad():  # token norms of a few units (some round to 0), gain priors around them
        m, k = cfg.latent_channels, cfg.tokens
        for t, factor in enumerate(GAIN_SHAPE_LATENT_GAINS):
            model.g_a[-1].weight[24 * t : 24 * (t + 1)].mul_(factor)
        model.h_s[-1].bias[: 2 * m].normal_(0, 0.5)
        model.h_s[-1].bias[2 * m : 2 * m + k].copy_(torch.tensor([0.3, 2.0]))
        model.h_s[-1].bias[2 * m + k :].copy_(torch.tensor([0.5, 1.5]))
    export_weights(model, folder, "tiny-gainshape", 1, "leech24gs", 0.01, TINY_BUDGET,
                   {"note": "seeded test fixture"}, fmt="pt")
    return folder


@pytest.fixture(scope="session")
def tiny_zoo_dir(tmp_path_factory) -> Path:
    return make_tiny_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture
def tiny_zoo(tiny_zoo_dir, monkeypatch) -> Path:
    monkeypatch.setenv("LEECHCODEC_ZOO", str(tiny_zoo_dir))
    return tiny_zoo_dir


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth-ish random RGB image (uint8), so codecs see structure, not only noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 7.0 + c) * np.cos(yy / 5.0 - c) for c in range(3)], axis=-1)
    img = 127 + 80 * base + rng.normal(0, 12, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image_folder(folder: Path, sizes: list[tuple[int, int]]) -> Path:
    """``folder`` with one :func:`random_image` PNG per ``(h, w)`` of ``sizes`` (seed = position)."""
    from PIL import Image

    folder.mkdir()
    for k, (h, w) in enumerate(sizes):
        Image.fromarray(random_image(h, w, seed=k)).save(folder / f"im{k}.png")
    return folder


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Three small training images: 80×96, 88×96 and 96×96."""
    return write_image_folder(tmp_path / "imgs", [(80 + 8 * k, 96) for k in range(3)])
