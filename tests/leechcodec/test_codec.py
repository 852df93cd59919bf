"""End-to-end coding with tiny seeded models: round trips, golden bytes, rate bounds, fresh processes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from leechcodec.bitstream import container
from leechcodec.codec import compress, decompress
from leechcodec.coding import PROFILES
from leechcodec.models import pad_to_multiple
from leechcodec.zoo import load_model

from ..conftest import GOLDEN_DIR, REGEN, random_image

MODELS = ["tiny-leech", "tiny-bsq"]


def _forward_reconstruction(model, rgb: np.ndarray, multiple: int = 16) -> np.ndarray:
    """g_s(quantize(g_a(x))) with x padded to ``multiple`` (16 in format 1.1, 64 in 1.0)."""
    with torch.no_grad():
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
        y = model.g_a(pad_to_multiple(x, multiple))
        x_hat = model.g_s(model.quantizer(y).y_hat)
    h, w = rgb.shape[:2]
    return (x_hat[0, :, :h, :w].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [(1, 1), (17, 33), (64, 64), (70, 129)])
def test_round_trip_equals_model_reconstruction(tiny_zoo, name, size):
    entry, model = load_model(name, 1)
    rgb = random_image(*size, seed=size[0])
    res = compress(model, entry, rgb)
    out = decompress(res.data)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    # The decoder rebuilt exactly the encoder's tokens: same pixels as the model's own forward pass.
    assert np.array_equal(out, _forward_reconstruction(model, rgb))
    header = container.peek_header(res.data)
    assert (header.height, header.width, header.model_key) == (size[0], size[1], entry.key)
    # Format 1.1 pads to g_a's stride (16), not the hyperprior's (64).
    assert (header.padded_height, header.padded_width) == (-(-size[0] // 16) * 16, -(-size[1] // 16) * 16)


@pytest.mark.parametrize("name", MODELS)
def test_file_size_close_to_information_content(tiny_zoo, name):
    entry, model = load_model(name, 1)
    rgb = random_image(128, 192, seed=5)
    res = compress(model, entry, rgb)
    bits = 8 * len(res.data)
    assert bits >= res.ideal_bits
    assert bits <= 1.01 * res.ideal_bits + 8 * 64 + 2 * 56  # header ≤ 64 B; end markers of 2 streams


@pytest.mark.parametrize("profile", [container.PROFILE_EXACT_ANS32_P24, container.PROFILE_PORTABLE_ANS32_P24])
@pytest.mark.parametrize("name", ["tiny-leech", "tiny-bsq", "tiny-scalar", "tiny-gainshape"])
def test_golden_bytes(tiny_zoo, name, profile):
    """Formats 1.1 (exact prior, platform libm) and 1.2 (portable arithmetic, the default):
    the bytes are pinned for every family, and decode to the model's reconstruction."""
    entry, model = load_model(name, 1)
    rgb = random_image(40, 56, seed=7)
    version = PROFILES[profile]
    data = compress(model, entry, rgb, profile=profile).data
    golden = GOLDEN_DIR / f"{name.replace('-', '_')}_40x56_v{version[0]}_{version[1]}.lq"
    if REGEN:
        golden.write_bytes(data)
    assert golden.exists(), "golden file missing: regenerate with LEECHCODEC_REGEN_GOLDEN=1"
    assert data == golden.read_bytes()
    assert container.peek_header(data).format_version == version
    assert container.peek_header(data).coder_profile == profile
    if name in MODELS:  # the others' reconstruction is not g_s(quantize(g_a(x)))
        assert np.array_equal(decompress(data), _forward_reconstruction(model, rgb))


@pytest.mark.parametrize("name", ["tiny-leech", "tiny-bsq", "tiny-scalar", "tiny-gainshape"])
def test_format_1_1_and_1_2_golden_files_decode_alike(tiny_zoo, name):
    """The pinned files of both exact profiles carry the same symbols: the same image."""
    stem = name.replace("-", "_")
    old, new = ((GOLDEN_DIR / f"{stem}_40x56_v1_{minor}.lq").read_bytes() for minor in (1, 2))
    assert np.array_equal(decompress(old), decompress(new))


def test_format_1_0_files_still_decode_and_encode_the_same(tiny_zoo):
    """The frozen format-1.0 golden file (float prior, written before format 1.1 existed)
    decodes to the model's reconstruction, and profile 1 still writes exactly those bytes."""
    entry, model = load_model("tiny-leech", 1)
    rgb = random_image(40, 56, seed=7)
    old = (GOLDEN_DIR / "tiny_leech_40x56.lq").read_bytes()
    assert container.peek_header(old).format_version == (1, 0)
    assert np.array_equal(decompress(old), _forward_reconstruction(model, rgb, multiple=64))
    assert compress(model, entry, rgb, profile=container.PROFILE_ANS32_P24).data == old


@pytest.mark.parametrize("name", MODELS + ["tiny-scalar"])
def test_all_profiles_round_trip(tiny_zoo, name):
    entry, model = load_model(name, 1)
    rgb = random_image(70, 129, seed=4)
    decoded = {}
    for profile in container.CODER_PROFILES:
        data = compress(model, entry, rgb, profile=profile).data
        assert container.peek_header(data).coder_profile == profile
        decoded[profile] = decompress(data)
        assert decoded[profile].shape == rgb.shape
    # Profiles 2 and 3 differ only in the last bits of some probabilities: the same tokens.
    assert np.array_equal(decoded[container.PROFILE_EXACT_ANS32_P24], decoded[container.PROFILE_PORTABLE_ANS32_P24])
    assert compress(model, entry, rgb).data == compress(model, entry, rgb, profile=container.PROFILE_DEFAULT).data


_FRESH = """
import hashlib, sys, numpy as np
from leechcodec.codec import decompress
print(hashlib.sha256(np.ascontiguousarray(decompress(open(sys.argv[1], 'rb').read())).tobytes()).hexdigest())
"""

_FRESH_ENCODE = """
import hashlib, sys, numpy as np
sys.path.insert(0, sys.argv[2])
from conftest import random_image
from leechcodec.codec import compress
from leechcodec.zoo import load_model
entry, model = load_model('tiny-leech', 1)
print(hashlib.sha256(compress(model, entry, random_image(96, 80, seed=11)).data).hexdigest())
"""


def test_fresh_processes_identical(tiny_zoo, tmp_path):
    """Same bytes from two encoder processes; same pixels from three decoder processes."""
    tests_dir = str(GOLDEN_DIR.parent)
    env_cmd = [sys.executable, "-c"]
    digests = {subprocess.run(env_cmd + [_FRESH_ENCODE, "x", tests_dir], capture_output=True, text=True, check=True).stdout
               for _ in range(2)}
    entry, model = load_model("tiny-leech", 1)
    data = compress(model, entry, random_image(96, 80, seed=11)).data
    digests.add(hashlib.sha256(data).hexdigest() + "\n")
    assert len(digests) == 1
    path = tmp_path / "x.lq"
    path.write_bytes(data)
    here = hashlib.sha256(np.ascontiguousarray(decompress(data)).tobytes()).hexdigest() + "\n"
    outs = {subprocess.run(env_cmd + [_FRESH, str(path)], capture_output=True, text=True, check=True).stdout
            for _ in range(3)}
    assert outs == {here}


def test_decoder_rejects_other_weights(tiny_zoo, tmp_path):
    entry, model = load_model("tiny-leech", 1)
    data = compress(model, entry, random_image(8, 8)).data
    header, chunks = container.unpack(data)
    forged = container.pack(
        container.LqHeader(model_key=header.model_key, weights_sha256_prefix=b"\0" * 8, height=8, width=8,
                           pad_bottom=header.pad_bottom, pad_right=header.pad_right), chunks)
    with pytest.raises(ValueError, match="other weights"):
        decompress(forged)


def test_decoder_rejects_unknown_model(tiny_zoo):
    entry, model = load_model("tiny-leech", 1)
    data = compress(model, entry, random_image(8, 8)).data
    header, chunks = container.unpack(data)
    forged = container.pack(
        container.LqHeader(model_key="no-such-model.q1", weights_sha256_prefix=header.weights_sha256_prefix,
                           height=8, width=8, pad_bottom=header.pad_bottom, pad_right=header.pad_right), chunks)
    with pytest.raises(ValueError, match="unknown model"):
        decompress(forged)


def test_every_truncation_and_byte_flips_fail_cleanly(tiny_zoo):
    entry, model = load_model("tiny-leech", 1)
    data = compress(model, entry, random_image(16, 16)).data
    for n in range(len(data)):
        with pytest.raises(ValueError):
            decompress(data[:n])
    rng = np.random.default_rng(0)
    for _ in range(50):
        bad = bytearray(data)
        pos = int(rng.integers(len(bad)))
        bad[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(ValueError):
            decompress(bytes(bad))


def test_models_listing_json(tiny_zoo):
    from leechcodec.zoo import list_models

    entries = [e.to_json() for e in list_models()]
    assert {(e["name"], e["quantizer"]) for e in entries} == {
        ("tiny-leech", "leech24"), ("tiny-bsq", "bsq"), ("tiny-scalar", "scalar"), ("tiny-gainshape", "leech24gs")}
    json.dumps(entries)


def test_lean_gdn_path_matches_plain_forward(tiny_zoo, monkeypatch):
    """Large images run GDN in place over row strips: same reconstruction up to float rounding."""
    from leechcodec import tiling

    entry, model = load_model("tiny-leech", 1)
    rgb = random_image(70, 129, seed=3)
    plain = decompress(compress(model, entry, rgb).data)
    monkeypatch.setattr(tiling, "LEAN_GDN_ELEMENTS", 0)
    lean_data = compress(model, entry, rgb).data
    lean = decompress(lean_data)
    assert np.abs(lean.astype(int) - plain.astype(int)).max() <= 1


def _relabel(data: bytes, height: int, width: int) -> bytes:
    """The same chunks under a header that claims another size (valid checksum)."""
    header, chunks = container.unpack(data)
    pad_b, pad_r = (-height) % 64, (-width) % 64
    return container.pack(container.LqHeader(
        model_key=header.model_key, weights_sha256_prefix=header.weights_sha256_prefix, height=height, width=width,
        pad_bottom=pad_b, pad_right=pad_r), chunks)


def test_crafted_headers_are_refused_before_the_work(tiny_zoo, monkeypatch):
    import leechcodec.codec as codec

    entry, model = load_model("tiny-leech", 1)
    data = compress(model, entry, random_image(64, 64)).data

    def no_work(*args, **kwargs):
        raise AssertionError("the decoder started decoding")

    monkeypatch.setattr(codec, "_decode_hyper", no_work)
    with pytest.raises(container.LqFormatError, match="the encoder writes at most 67,108,864"):
        decompress(_relabel(data, 65535, 65535))
    with pytest.raises(container.LqFormatError, match="hyper chunk of .* cannot hold"):
        decompress(_relabel(data, 8192, 8192))
    with pytest.raises(ValueError, match="more than the 67,108,864 pixels"):
        compress(model, entry, np.zeros((1 << 13, (1 << 13) + 1, 3), np.uint8))


@pytest.mark.parametrize("name", MODELS + ["tiny-scalar", "tiny-gainshape"])
def test_tiles_decode_like_one_piece(tiny_zoo, monkeypatch, name):
    """Large images are coded in tiles of the latent grid with a halo: the same tokens and,
    up to float rounding (±1), the same pixels as the one-piece transforms, with no seam."""
    from leechcodec import tiling

    entry, model = load_model(name, 1)
    rgb = random_image(200, 90, seed=8)
    whole = compress(model, entry, rgb).data
    plain = decompress(whole)
    monkeypatch.setattr(tiling, "TILE_PIXELS", 0)
    monkeypatch.setattr(tiling, "TILE_BYTES", 1)  # one latent position per tile: 13 × 6 tiles
    assert tiling._tile_side(model) == 1
    # g_s in tiles on the same tokens: the one-piece pixels up to ±1.
    assert np.abs(decompress(whole).astype(int) - plain.astype(int)).max() <= 1
    # g_a in tiles: the same latents up to float rounding, so (almost always) the same file.
    tiled = compress(model, entry, rgb).data
    assert abs(len(tiled) - len(whole)) <= 0.01 * len(whole)
    assert decompress(tiled).shape == rgb.shape
