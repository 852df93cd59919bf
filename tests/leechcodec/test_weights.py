"""Weights files: safetensors (no pickle), float16 kernels, hashes."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
import torch

from leechcodec import zoo
from leechcodec.codec import compress, decompress
from leechcodec.models import LeechCodecModel, ModelConfig

from ..conftest import TINY_BUDGET, random_image


@pytest.fixture
def model():
    torch.manual_seed(0)
    net = LeechCodecModel(ModelConfig(quantizer="leech24", tokens=2, channels=32, hyper_channels=16))
    with torch.no_grad():
        net.h_s[-1].bias.normal_(0, 0.5)
    return net


@pytest.mark.parametrize("float16", [False, True])
def test_safetensors_round_trip(model, tmp_path, monkeypatch, float16):
    entry = zoo.export_weights(model, tmp_path, "st", 1, "leech24", 0.01, TINY_BUDGET, {}, float16=float16)
    path = tmp_path / entry.file
    assert path.suffix == ".safetensors"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # a package file others can read
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]  # a JSON header, then raw tensors: no pickle
    header = json.loads(path.read_bytes()[8 : 8 + n])
    assert header["__metadata__"]["format"] == "leechcodec-weights-2"
    big = [k for k, v in model.state_dict().items() if v.is_floating_point() and v.numel() >= zoo.FLOAT16_MIN_ELEMENTS]
    assert big and all(header[k]["dtype"] == ("F16" if float16 else "F32") for k in big)
    monkeypatch.setenv("LEECHCODEC_ZOO", str(tmp_path))
    zoo._load.cache_clear()
    _, loaded = zoo.load_model("st", 1)
    assert loaded.config == model.config
    for k, v in model.state_dict().items():
        w = loaded.state_dict()[k]
        assert w.dtype == v.dtype, k
        expect = v.to(torch.float16).to(v.dtype) if float16 and k in big else v
        assert torch.equal(w, expect), k
    rgb = random_image(40, 56)
    data = compress(loaded, entry, rgb).data
    assert decompress(data).shape == rgb.shape


def _header(blob: bytes) -> tuple[int, list]:
    n = struct.unpack("<Q", blob[:8])[0]
    return n, json.loads(blob[8 : 8 + n], object_pairs_hook=list)


def test_export_is_byte_for_byte_reproducible(model, tmp_path):
    # safetensors writes the metadata from a hash map: without the re-ordering, two exports of one
    # model could differ in key order and so in sha256 (it happened to bsq-n128-v1 q3)
    path = tmp_path / "w.safetensors"
    zoo.write_safetensors(model, path)
    n, header = _header(path.read_bytes())
    assert header[0][0] == "__metadata__" and [k for k, _ in header[0][1]] == ["format", "config"]
    assert n % 8 == 0
    from safetensors.numpy import save

    tensors = {"b": np.arange(6, dtype=np.float32), "a": np.ones((2, 3), np.float16)}
    meta = {"format": "leechcodec-weights-2", "config": '{"x": 1}'}
    blob = save(tensors, metadata=meta)
    one = zoo._with_metadata_in_order(blob, meta)
    other = zoo._with_metadata_in_order(blob, dict(reversed(meta.items())))  # the order a hash map may give
    assert one != other
    assert zoo._with_metadata_in_order(other, meta) == zoo._with_metadata_in_order(one, meta) == one
    from safetensors.numpy import load

    back = load(zoo._with_metadata_in_order(other, meta))
    assert all(np.array_equal(back[k], v) for k, v in tensors.items())


def test_foreign_safetensors_is_refused(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    path = tmp_path / "x-q1.safetensors"
    save_file({"w": np.zeros(3, dtype=np.float32)}, str(path))
    registry = [{"name": "x", "quality": 1, "quantizer": "leech24", "file": path.name,
                 "sha256": zoo.sha256_file(path), "lmbda": 0.01, "budget": {}, "provenance": {}}]
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    monkeypatch.setenv("LEECHCODEC_ZOO", str(tmp_path))
    zoo._load.cache_clear()
    with pytest.raises(zoo.ModelNotFoundError, match="not a leechcodec weights file"):
        zoo.load_model("x", 1)
