"""The seen/unseen gap tool: each model's float loss on every N-th training image and on the
unseen folder, computed here a second way, and relative to the first model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from leechcodec.bench.runner import load_rgb
from leechcodec.bench.training import gap
from leechcodec.models import LeechCodecModel, ModelConfig
from leechcodec.traindata import list_images

CFG = ModelConfig(quantizer="leech24gs", tokens=1, channels=8, hyper_channels=8)


def _checkpoint(path, seed: int, lmbda: float):
    torch.manual_seed(seed)
    model = LeechCodecModel(CFG)
    torch.save({"model_config": CFG.to_dict(), "model": model.state_dict(), "step": 10 * seed,
                "train_config": {"lmbda": lmbda}}, path)
    return model.eval()


def _loss(model, rgb: np.ndarray, lmbda: float) -> tuple[float, float, float]:
    """bpp, PSNR and loss of the float model, padded by replication to a multiple of 64."""
    h, w = rgb.shape[:2]
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        o = model(torch.nn.functional.pad(x, (0, (-w) % 64, 0, (-h) % 64), mode="replicate"))
    img = (o.x_hat[0, :, :h, :w].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    mse = ((img - rgb) ** 2).mean() / 255**2
    bpp = float(o.token_bits.sum() + o.hyper_bits.sum()) / (h * w)
    return bpp, 10 * math.log10(1 / mse), lmbda * 255**2 * mse + bpp


def test_rows_are_the_float_loss_on_seen_and_unseen_images(image_folder, tmp_path, capsys):
    first = _checkpoint(tmp_path / "a.pt", 1, 0.02)
    second = _checkpoint(tmp_path / "b.pt", 2, 0.5)  # its own λ is not used: the first model's is
    unseen = tmp_path / "unseen"
    unseen.mkdir()
    (image_folder / "c.png").write_bytes((image_folder / "a.png").read_bytes())  # a third image
    (unseen / "k.png").write_bytes((image_folder / "b.png").read_bytes())
    out = tmp_path / "gap.json"
    assert gap.main([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--pack", str(image_folder), "--data-dir",
                     str(unseen), "--every", "2", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert (record["lmbda"], record["seen_images"], record["unseen_images"]) == (0.02, 2, 1)
    seen_images = [load_rgb(p) for p in list_images(image_folder)][::2]  # a.png and c.png of a, b, c
    for row, model in zip(record["rows"], (first, second)):
        want = np.mean([_loss(model, rgb, 0.02) for rgb in seen_images], axis=0)
        assert [row["seen"][k] for k in ("bpp", "psnr", "loss")] == pytest.approx(want, rel=1e-6)
        want = _loss(model, load_rgb(unseen / "k.png"), 0.02)
        assert [row["unseen"][k] for k in ("bpp", "psnr", "loss")] == pytest.approx(want, rel=1e-6)
    a, b = record["rows"]
    assert a["seen_vs_first"] == a["unseen_vs_first"] == 0
    assert b["seen_vs_first"] == pytest.approx(b["seen"]["loss"] / a["seen"]["loss"] - 1)
    assert b["unseen_vs_first"] == pytest.approx(b["unseen"]["loss"] / a["unseen"]["loss"] - 1)
    assert a["model"].endswith("a.pt (step 10)")
    table = capsys.readouterr().out
    assert f"| {100 * b['unseen_vs_first']:+.2f} % |" in table.splitlines()[-1]


def test_a_zoo_key_loads_with_its_lambda():
    model, lmbda, label = gap.load("leech24gs.q0")
    assert (lmbda, label) == (0.00015, "leech24gs.q0") and not model.training
    with pytest.raises(Exception, match="malformed model key"):
        gap.load("no-such-thing")
