"""The public Python API: the README example, a model of one's own, refusals."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import leechcodec
from leechcodec.bitstream.container import LqFormatError

from ..conftest import random_image

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_example() -> str:
    text = README.read_text()
    block = re.search(r"## Python API\n.*?```python\n(.*?)```", text, re.S)
    assert block, "README has a '## Python API' section with a python block"
    return block.group(1)


def test_readme_example_runs(tmp_path):
    """The README's API example trains nothing, builds a model from the public API,
    compresses an image to bytes and decompresses it."""
    res = subprocess.run([sys.executable, "-c", _readme_example()], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    assert "round trip ok" in res.stdout


def test_import_stays_light():
    code = "import sys, leechcodec; assert 'torch' not in sys.modules; print(sorted(leechcodec.__all__)[:3])"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_exports_resolve():
    for name in leechcodec.__all__:
        assert getattr(leechcodec, name) is not None
    assert set(leechcodec.LATENT_CODECS) == {"leech24", "bsq", "scalar", "leech24gs"}
    with pytest.raises(AttributeError):
        leechcodec.no_such_name


@pytest.mark.parametrize("family", ["leech24", "bsq", "scalar", "leech24gs"])
def test_own_model_round_trip_and_identity(family):
    torch.manual_seed(0)
    net = leechcodec.LeechCodecModel(leechcodec.ModelConfig(quantizer=family, tokens=1, channels=8, hyper_channels=8))
    rgb = random_image(40, 56)
    data = leechcodec.compress(rgb, model=net, name="mine")
    out = leechcodec.decompress(data, model=net)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(out, leechcodec.decompress(data, model=net))
    torch.manual_seed(1)
    other = leechcodec.LeechCodecModel(net.config)
    with pytest.raises(LqFormatError, match="other weights for mine.q0"):
        leechcodec.decompress(data, model=other)
    with pytest.raises(ValueError, match="not installed"):  # no zoo entry named 'mine'
        leechcodec.decompress(data)


def test_zoo_model_through_the_api(tiny_zoo):
    net = leechcodec.load_model("tiny-leech", 1)
    assert net.zoo_entry.key == "tiny-leech.q1"
    rgb = random_image(32, 48)
    data = leechcodec.compress(rgb, model=net)
    assert np.array_equal(leechcodec.decompress(data), leechcodec.decompress(data, model=net))
    assert leechcodec.compress(rgb, model="tiny-leech", quality=1) == data


def test_tampered_weights_are_refused(tiny_zoo_dir, tmp_path, monkeypatch):
    import shutil

    from leechcodec import zoo

    folder = tmp_path / "zoo"
    shutil.copytree(tiny_zoo_dir, folder)
    weights = folder / "tiny-bsq-q1.pt"
    blob = bytearray(weights.read_bytes())
    blob[-100] ^= 1
    weights.write_bytes(bytes(blob))
    monkeypatch.setenv("LEECHCODEC_ZOO", str(folder))
    zoo._load.cache_clear()
    with pytest.raises(zoo.ModelNotFoundError, match="fail their sha256 check"):
        leechcodec.load_model("tiny-bsq", 1)


def test_models_own_compress_and_decompress(tiny_zoo):
    """The model codes an image into the two chunks; the container only frames them."""
    from leechcodec.bitstream import container

    net = leechcodec.load_model("tiny-bsq", 1)
    rgb = random_image(40, 56)
    enc = net.compress(rgb)
    image, params = net.decompress(enc.chunks, enc.height, enc.width, enc.padded_height, enc.padded_width,
                                   container.PROFILE_DEFAULT, enc.grey)
    data = leechcodec.compress(rgb, model=net)
    assert container.unpack(data)[1] == enc.chunks
    assert np.array_equal(image, leechcodec.decompress(data)) and "symbols" in params
