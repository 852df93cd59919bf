"""The .lq container: round trip, golden bytes, and rejection of every kind of bad input."""

from __future__ import annotations

import os
import struct
import tracemalloc
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import leechcodec.bitstream.container as lq
from leechcodec.bitstream.container import LqFormatError, LqHeader, pack, peek_header, unpack

GOLDEN = Path(__file__).parent / "golden" / "container_v1_0.bin"
GOLDEN_1_1 = Path(__file__).parent / "golden" / "container_v1_1.bin"
GOLDEN_1_2 = Path(__file__).parent / "golden" / "container_v1_2.bin"
HASH = bytes.fromhex("0123456789abcdef")


def make_header(**changes) -> LqHeader:
    fields = dict(
        model_key="leech-hyper-q3",
        weights_sha256_prefix=HASH,
        height=512,
        width=768,
        pad_top=0,
        pad_bottom=0,
        pad_left=0,
        pad_right=0,
    )
    fields.update(changes)
    return LqHeader(**fields)


CHUNKS = [b"\x01\x02\x03", b"", bytes(range(256)) * 2]


def small_file() -> bytes:
    return pack(make_header(height=5, width=7, pad_bottom=3, pad_right=1), [b"ab", b"cde"])


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_imports_resolve_to_this_project():
    assert Path(lq.__file__).resolve().parent.name == "bitstream"
    assert (Path(lq.__file__).resolve().parent.parent / "pyproject.toml").exists()


def test_round_trip():
    header = make_header(height=65535, width=1, pad_top=1, pad_bottom=254, pad_left=255, pad_right=0)
    data = pack(header, CHUNKS)
    got_header, got_chunks = unpack(data)
    assert got_header == header
    assert got_chunks == CHUNKS
    assert peek_header(data) == header
    assert peek_header(data[: lq.MAX_HEADER_SIZE]) == header
    assert (header.padded_height, header.padded_width) == (65535 + 255, 256)


def test_round_trip_extremes():
    for key in ("a", "k" * lq.MAX_MODEL_KEY_LEN, "Az09._-"):
        for chunks in ([], [b""] * lq.MAX_CHUNKS, [b"x" * 70000]):
            header = make_header(model_key=key, height=1, width=1)
            assert unpack(pack(header, chunks)) == (header, chunks)


def test_overhead_for_14_char_key_and_3_chunks():
    header = make_header()
    assert len(header.model_key) == 14
    chunks = [b"a" * 10, b"b" * 1000, b"c" * 5]
    overhead = len(pack(header, chunks)) - sum(map(len, chunks))
    assert overhead == lq.container_overhead(14, 3) == 62
    assert overhead <= 64


@pytest.mark.parametrize("golden, version, profile", [(GOLDEN, (1, 0), lq.PROFILE_ANS32_P24),
                                                      (GOLDEN_1_1, (1, 1), lq.PROFILE_EXACT_ANS32_P24),
                                                      (GOLDEN_1_2, (1, 2), lq.PROFILE_PORTABLE_ANS32_P24)])
def test_golden_bytes(golden, version, profile):
    data = pack(make_header(pad_bottom=2, pad_right=16, format_version=version, coder_profile=profile), CHUNKS)
    if os.environ.get("LEECHCODEC_REGEN_GOLDEN") == "1" and version == lq.FORMAT_VERSION:
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(data)
    assert golden.exists(), f"missing golden file {golden}; regenerate with LEECHCODEC_REGEN_GOLDEN=1"
    assert data == golden.read_bytes()
    # magic, version, header size 31 + 14, coder profile
    assert data[:9] == b"LQ24" + bytes(version) + b"\x2d\x00" + bytes([profile])
    assert unpack(data)[0] == make_header(pad_bottom=2, pad_right=16, format_version=version, coder_profile=profile)


def test_profile_needs_its_format_version():
    assert make_header().coder_profile == lq.PROFILE_DEFAULT == lq.PROFILE_PORTABLE_ANS32_P24
    assert make_header().format_version == lq.FORMAT_VERSION == (1, 2)
    with pytest.raises(ValueError, match="coder profile 3 needs format 1.2"):
        make_header(format_version=(1, 1))
    with pytest.raises(ValueError, match="coder profile 2 needs format 1.1"):
        make_header(format_version=(1, 0), coder_profile=lq.PROFILE_EXACT_ANS32_P24)
    assert make_header(format_version=(1, 1), coder_profile=lq.PROFILE_EXACT_ANS32_P24).coder_profile == 2
    assert make_header(format_version=(1, 0), coder_profile=lq.PROFILE_ANS32_P24).coder_profile == 1
    with pytest.raises(ValueError, match="channel mode 1 needs format 1.1"):
        make_header(format_version=(1, 0), coder_profile=lq.PROFILE_ANS32_P24, channel_mode=lq.CHANNELS_GREY)
    grey = make_header(channel_mode=lq.CHANNELS_GREY)
    assert unpack(pack(grey, CHUNKS))[0] == grey


def test_header_validation_on_write():
    with pytest.raises(ValueError, match="height 65536 is outside 1..65535"):
        make_header(height=65536)
    with pytest.raises(ValueError, match="width 0"):
        make_header(width=0)
    with pytest.raises(ValueError, match="at most 48"):
        make_header(model_key="k" * 49)
    with pytest.raises(ValueError, match="model key"):
        make_header(model_key="with space")
    with pytest.raises(ValueError, match="model key"):
        make_header(model_key="")
    with pytest.raises(ValueError, match="8 bytes"):
        make_header(weights_sha256_prefix=b"short")
    with pytest.raises(ValueError, match="pad_left 256"):
        make_header(pad_left=256)
    with pytest.raises(ValueError, match="coder profile"):
        make_header(coder_profile=9)
    with pytest.raises(ValueError, match="channel mode"):
        make_header(channel_mode=4)
    with pytest.raises(ValueError, match="at most 16"):
        pack(make_header(), [b""] * 17)
    with pytest.raises(ValueError, match="writes formats 1.0, 1.1, 1.2"):
        pack(make_header(format_version=(1, 3)), [])
    assert make_header(height=np.int64(3)).height == 3


def test_weights_hash_prefix():
    digest = "ab" * 32
    assert lq.weights_hash_prefix(digest) == b"\xab" * 8
    with pytest.raises(ValueError):
        lq.weights_hash_prefix("abcd")


def test_empty_file():
    with pytest.raises(LqFormatError, match="empty file"):
        unpack(b"")
    with pytest.raises(LqFormatError, match="empty file"):
        peek_header(b"")


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n" + b"\x00" * 60, b"LQ25" + small_file()[4:], b"X"])
def test_wrong_magic(data):
    with pytest.raises(LqFormatError, match="not a .lq file"):
        unpack(data)


def test_future_major_version():
    data = bytearray(small_file())
    data[4:6] = bytes([2, 0])
    with pytest.raises(LqFormatError, match=r"written by a newer leechcodec: format 2\.0, this reader supports 1\.x"):
        unpack(bytes(data))
    with pytest.raises(LqFormatError, match="newer leechcodec"):
        peek_header(bytes(data[:8]))
    data[4] = 0
    with pytest.raises(LqFormatError, match="unsupported format 0.0"):
        unpack(bytes(data))


def test_newer_minor_version_with_extension_fields_is_read():
    header = make_header()
    data = pack(header, CHUNKS)
    key_end = 31 + len(header.model_key)
    extension = b"\x07future"
    body = bytearray(data[:key_end] + extension + data[key_end:-4])
    body[5] = 3  # minor
    body[6:8] = struct.pack("<H", key_end + len(extension))
    got_header, got_chunks = unpack(with_crc(bytes(body)))
    assert got_header == replace(header, format_version=(1, 3))
    assert got_chunks == CHUNKS


def test_every_truncation_raises():
    data = small_file()
    with pytest.raises(LqFormatError, match="empty file"):
        unpack(data[:0])
    for n in range(1, len(data)):
        with pytest.raises(LqFormatError, match="truncated|exceed"):
            unpack(data[:n])


def test_trailing_garbage():
    with pytest.raises(LqFormatError, match="trailing garbage: 1 bytes"):
        unpack(small_file() + b"\x00")


def test_bad_checksum():
    data = bytearray(small_file())
    data[-6] ^= 0x01  # inside the last chunk
    with pytest.raises(LqFormatError, match="checksum mismatch"):
        unpack(bytes(data))
    data = bytearray(small_file())
    data[-1] ^= 0x80  # the CRC itself
    with pytest.raises(LqFormatError, match="checksum mismatch"):
        unpack(bytes(data))


def test_flipped_header_field_reports_checksum_not_field():
    data = bytearray(small_file())
    data[9] = 7  # channel mode
    with pytest.raises(LqFormatError, match="checksum mismatch"):
        unpack(bytes(data))
    with pytest.raises(LqFormatError, match="unknown channel mode 7"):
        unpack(with_crc(bytes(data[:-4])))


def test_chunk_lengths_exceeding_file():
    data = bytearray(small_file())
    table = 31 + len("leech-hyper-q3") + 1
    data[table : table + 4] = struct.pack("<I", 0xFFFFFFFF)
    with pytest.raises(LqFormatError, match="exceed the file"):
        unpack(bytes(data))


def test_oversize_header_claims_do_not_allocate():
    data = bytearray(small_file())
    data[6:8] = struct.pack("<H", 0xFFFF)
    with pytest.raises(LqFormatError, match="header claims 65535 bytes; at most 256"):
        unpack(bytes(data))
    data = bytearray(small_file())
    data[30] = 200  # model key length
    with pytest.raises(LqFormatError, match="model key length 200"):
        peek_header(bytes(data))
    data = bytearray(small_file())
    data[31 + len("leech-hyper-q3")] = 255  # chunk count
    with pytest.raises(LqFormatError, match="chunk count 255 exceeds 16"):
        unpack(bytes(data))

    # Chunk lengths claiming 8 GiB are compared with the data, never used to size a buffer.
    table = 31 + len("leech-hyper-q3") + 1
    data = bytearray(small_file())
    data[table : table + 8] = struct.pack("<II", 0xFFFFFFF0, 0xFFFFFFF0)
    tracemalloc.start()
    try:
        with pytest.raises(LqFormatError, match="exceed the file"):
            unpack(bytes(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_random_byte_flips_only_raise_lq_format_error():
    rng = np.random.default_rng(20240607)
    data = pack(make_header(pad_bottom=2), CHUNKS)
    for _ in range(400):
        corrupt = bytearray(data)
        for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
            corrupt[pos] ^= int(rng.integers(1, 256))
        if rng.random() < 0.2:
            corrupt = corrupt[: rng.integers(0, len(corrupt))]
        with pytest.raises(LqFormatError):
            unpack(bytes(corrupt))
        try:
            peek_header(bytes(corrupt))  # no checksum here: may succeed, may only raise LqFormatError
        except LqFormatError:
            pass


def test_error_messages_are_one_line():
    bad = [b"", b"nope", small_file()[:20], small_file() + b"x"]
    for data in bad:
        with pytest.raises(LqFormatError) as info:
            unpack(data)
        assert "\n" not in str(info.value)
