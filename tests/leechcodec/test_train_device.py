"""Training device and mixed precision, on CPU: device/AMP resolution, bf16 autocast of the
transforms with the quantizer, EntropyBottleneck and prior in float32, fp16 with a resumable
GradScaler, and the device record that export copies into the zoo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import leechcodec.latent_codecs
import leechcodec.models
from leechcodec import export, train
from leechcodec.models import ModelConfig

from ..conftest import write_image_folder

TINY = ModelConfig(tokens=1, channels=8, hyper_channels=8)


@pytest.fixture
def image_folder(tmp_path):
    """Two small training images (72×80, 80×80): this file's AMP steps depend on them."""
    return write_image_folder(tmp_path / "imgs", [(72 + 8 * k, 80) for k in range(2)])


def _run(folder, out, steps: int, amp: str, model_cfg: ModelConfig = TINY) -> dict:
    cfg = train.TrainConfig(data=str(folder), out=str(out), steps=steps, batch=2, crop=64, lr=1e-3, ckpt_every=1,
                            device="cpu", amp=amp)
    return torch.load(train.train(cfg, model_cfg), weights_only=False)


def test_device_and_amp_defaults():
    cpu = torch.device("cpu")
    assert train.resolve_device("cpu") == cpu
    assert train.resolve_amp(None, cpu) == "off"
    assert train.resolve_amp(None, torch.device("cuda", 0)) == "bf16"
    assert train.resolve_amp("fp16", cpu) == "fp16"
    with pytest.raises(ValueError, match="--amp"):
        train.resolve_amp("fp8", cpu)
    if not torch.cuda.is_available():
        assert train.resolve_device("auto") == cpu
        with pytest.raises(ValueError, match="no CUDA device"):
            train.resolve_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cli_reports_missing_cuda(tmp_path, capsys):
    assert train.main(["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cuda"]) == 1
    assert "no CUDA device" in capsys.readouterr().err


def test_bf16_autocast_trains_on_cpu(image_folder, tmp_path):
    torch.set_num_threads(1)
    state = _run(image_folder, tmp_path / "bf16", 2, "bf16")
    assert state["amp"] == "bf16" and state["device"].startswith("cpu")
    assert state["segments"] == [{"step": 0, "device": state["device"], "world_size": 1, "amp": "bf16", "batch": 2,
                                  "crop": 64, "lmbda": state["train_config"]["lmbda"], "steps": 2,
                                  "lr_decay_from": state["train_config"]["lr_decay_from"]}]
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())
    log = [json.loads(line) for line in (tmp_path / "bf16" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite([r["loss"], r["bpp"], r["psnr"], r["aux"]]).all() for r in log)
    entry = export.export_checkpoint(tmp_path / "bf16" / "checkpoint.pt", "t", 1, tmp_path / "zoo")
    assert entry.budget["device"] == f"{state['device']}, bf16 autocast" and entry.budget["world_size"] == 1


def test_autocast_covers_only_the_transforms(image_folder, tmp_path, monkeypatch):
    """Under bf16 autocast the convolutions run in bf16; the quantizer, the EntropyBottleneck
    and the prior get float32 inputs and return float32."""
    torch.set_num_threads(1)
    seen: dict[str, set] = {}

    def record(name, tensors):
        seen.setdefault(name, set()).update(t.dtype for t in tensors if torch.is_tensor(t) and t.is_floating_point())

    def hook(module, inputs, output):
        name = type(module).__name__
        record(name + ".in", inputs)
        record(name + ".out", output if isinstance(output, tuple) else (output,))

    log_prob = leechcodec.latent_codecs.leech_log_prob

    def recording_log_prob(a, b, v):
        record("prior.in", (a, b, v))
        out = log_prob(a, b, v)
        record("prior.out", (out,))
        return out

    monkeypatch.setattr(leechcodec.latent_codecs, "leech_log_prob", recording_log_prob)
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        _run(image_folder, tmp_path / "hooks", 1, "bf16")
    finally:
        handle.remove()
    assert torch.bfloat16 in seen["Conv2d.out"] and torch.bfloat16 in seen["ConvTranspose2d.out"]
    for name in ("SphericalLeechQuantizer", "EntropyBottleneck", "prior"):
        assert seen[name + ".in"] == {torch.float32}, name
        assert seen[name + ".out"] == {torch.float32}, name


def test_fp16_grad_scaler_resumes(image_folder, tmp_path):
    """fp16 scales the loss; the scaler's state is checkpointed and resuming equals an uninterrupted run.

    The scaler starts at 2¹⁶ and halves on every overflow: with this model steps 1–8
    overflow and step 9 is the first optimizer step, so a resume at step 8 needs the saved scale.
    """
    torch.set_num_threads(1)
    full = _run(image_folder, tmp_path / "a", 9, "fp16")
    _run(image_folder, tmp_path / "b", 8, "fp16")
    resumed = _run(image_folder, tmp_path / "b", 9, "fp16")
    assert full["amp"] == "fp16" and full["opt"]["state"], "no optimizer step was taken"
    assert resumed["scaler"] == full["scaler"]
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_bf16_training_rate_and_files_match_float32(image_folder, tmp_path, monkeypatch):
    """bf16 autocast changes the transforms' rounding, not the rate: the same weights and crops
    give the same training bpp within 1 %; the bf16-trained model estimates the same rate with
    and without autocast, and its files (coded in float32) cost and decode like those of
    the same run trained in float32."""
    from leechcodec.codec import compress, decompress
    from leechcodec.models import pad_to_multiple
    from leechcodec.zoo import load_model

    from ..conftest import random_image

    torch.set_num_threads(1)
    for amp in ("off", "bf16"):
        _run(image_folder, tmp_path / amp, 4, amp)
        export.export_checkpoint(tmp_path / amp / "checkpoint.pt", f"m-{amp}", 1, tmp_path / "zoo")
    logs = {amp: [json.loads(ln) for ln in (tmp_path / amp / "log.jsonl").read_text().splitlines()]
            for amp in ("off", "bf16")}
    assert logs["bf16"][0]["bpp"] == pytest.approx(logs["off"][0]["bpp"], rel=0.01)  # step 1: same weights
    monkeypatch.setenv("LEECHCODEC_ZOO", str(tmp_path / "zoo"))
    rgb = random_image(128, 192, seed=7)
    x = pad_to_multiple(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 64)
    files, psnr = {}, {}
    for amp in ("off", "bf16"):
        entry, model = load_model(f"m-{amp}", 1)
        files[amp] = compress(model, entry, rgb)
        out = decompress(files[amp].data)
        psnr[amp] = 10 * np.log10(255**2 / np.mean((out.astype(float) - rgb) ** 2))
    with torch.no_grad():
        est32 = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            est16 = model(x)
    bits = [float(e.token_bits.sum() + e.hyper_bits.sum()) for e in (est32, est16)]
    assert bits[1] == pytest.approx(bits[0], rel=0.01)
    assert files["bf16"].ideal_bits == pytest.approx(files["off"].ideal_bits, rel=0.01)
    assert len(files["bf16"].data) == pytest.approx(len(files["off"].data), rel=0.02)
    assert abs(psnr["bf16"] - psnr["off"]) < 0.1
