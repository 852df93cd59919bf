"""The ``.lq`` container: format specification and reader/writer.

This docstring *is* the specification of formats 1.0, 1.1 and 1.2 (like numpy's ``.npy`` module).
The format version is independent of the package version. All integers are unsigned
and little-endian; offsets are in bytes from the start of the file.

Layout of formats 1.0, 1.1 and 1.2
----------------------------------

======  ==========  =======  ===========================================================
offset  size        type     field
======  ==========  =======  ===========================================================
0       4           bytes    magic ``b"LQ24"``
4       1           u8       format version major (1)
5       1           u8       format version minor (0, 1 or 2)
6       2           u16      ``header_size``: offset of the chunk table (31 + L in 1.0);
                             at most 256
8       1           u8       coder profile: 1 (format 1.0), 2 (format 1.1 and later) or
                             3 (format 1.2 and later); see "Coder profiles" below
9       1           u8       channel mode: 3 = RGB, 8 bits per sample; 1 = grey (format
                             1.1 and later): coded as RGB with equal channels, and
                             decoded to one channel, ``(R + G + B + 1) // 3``
10      4           u32      image height in pixels, 1..65535
14      4           u32      image width in pixels, 1..65535
18      1           u8       pad top    \\
19      1           u8       pad bottom  | rows/columns the encoder added around the image;
20      1           u8       pad left    | the decoder crops them away. Padded size is
21      1           u8       pad right  /  height + top + bottom by width + left + right
22      8           bytes    first 8 bytes of the sha256 of the model weights
30      1           u8       model key length L, 1..48
31      L           ascii    model key, characters ``A-Z a-z 0-9 . _ -``
31+L    ...         bytes    (format 1.1 and later only) extension fields; 1.x readers
                             skip everything up to ``header_size``
hs      1           u8       chunk count N, 0..16  (hs = ``header_size``)
hs+1    4N          u32[N]   chunk lengths in bytes
hs+1+4N sum(len)    bytes    chunk payloads, concatenated in table order
end-4   4           u32      CRC-32 (zlib/PNG polynomial) of every preceding byte
======  ==========  =======  ===========================================================

The file ends right after the CRC; anything after it is an error. The container says
nothing about what the chunks contain: the model named by the key defines that, and
``coder profile`` says how its entropy-coded chunks are coded.

Coder profiles
--------------
All code their chunks with constriction's stack ANS coder, 32-bit words, 24-bit
probabilities (``leechcodec.bitstream.ans``). They differ in how the model computes the
probabilities (``leechcodec.coding`` specifies them):

1. *float prior* (format 1.0): the hyper-synthesis runs in float32, so the probabilities can
   depend on the machine (thread count, convolution backend, device). Still decoded; no
   longer written by default.
2. *exact prior* (format 1.1): the prior network runs in integer arithmetic
   (``leechcodec.intprior``), identical on every machine; the probabilities are then
   float64 functions of those integers that use the platform's libm (``exp``, ``log``,
   ``log1p``, ``erf``, ``erfc``), whose last bit can differ between libms and CPUs. Still
   decoded; no longer written by default.
3. *portable prior* (format 1.2): profile 2 with every one of those functions computed
   by ``leechcodec.kernels.xmath`` from IEEE ``+ − × ÷`` alone, so every number that
   decides a probability is the same on every IEEE-754 machine. Written by default.

A reader rejects a profile it does not know by value ("unknown coder profile"): 1.0
readers reject 2 and 3, 1.1 readers reject 3. Writers write profile 1 as format 1.0,
profile 2 as format 1.1 and profile 3 as format 1.2.

Overhead: ``31 + L + 1 + 4N + 4`` bytes, i.e. 62 bytes for a 14-character model key
and 3 chunks.

Versioning
----------
A reader of format 1.x reads every 1.y file: minor versions may only add extension
fields between the model key and the chunk table (and new coder profiles or channel
modes, which older readers reject by value). A different major version is rejected.

Reader guarantees
-----------------
:func:`unpack` raises :class:`LqFormatError` (a ``ValueError``) with a one-line message
for an empty file, a wrong magic, an unknown major version, a header claiming more than
256 bytes, truncation at any byte, chunk lengths that exceed the file, trailing bytes,
a checksum mismatch, and out-of-range field values. Structure is checked first, then
the checksum, then field values, so a flipped bit anywhere reports a checksum mismatch
unless it breaks the structure. No buffer is ever sized from a length in the file
before that length has been checked against the bytes actually present.
"""

from __future__ import annotations

import operator
import re
import struct
import zlib
from dataclasses import dataclass

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "MAX_HEADER_SIZE",
    "MAX_MODEL_KEY_LEN",
    "MAX_CHUNKS",
    "MAX_SIDE",
    "MAX_PAD",
    "PROFILE_ANS32_P24",
    "PROFILE_EXACT_ANS32_P24",
    "PROFILE_PORTABLE_ANS32_P24",
    "PROFILE_DEFAULT",
    "WRITABLE_VERSIONS",
    "CODER_PROFILES",
    "CHANNELS_RGB",
    "CHANNELS_GREY",
    "CHANNEL_MODES",
    "LqFormatError",
    "LqHeader",
    "pack",
    "unpack",
    "peek_header",
    "weights_hash_prefix",
    "container_overhead",
]

MAGIC = b"LQ24"
FORMAT_VERSION = (1, 2)
#: Format versions this writer can write (1.0 only with coder profile 1).
WRITABLE_VERSIONS = ((1, 0), (1, 1), (1, 2))
MAX_HEADER_SIZE = 256
MAX_MODEL_KEY_LEN = 48
MAX_CHUNKS = 16
MAX_SIDE = 65535
MAX_PAD = 255
HASH_PREFIX_LEN = 8

PROFILE_ANS32_P24 = 1
PROFILE_EXACT_ANS32_P24 = 2
PROFILE_PORTABLE_ANS32_P24 = 3
#: The profile written unless another is asked for.
PROFILE_DEFAULT = PROFILE_PORTABLE_ANS32_P24
CODER_PROFILES = {
    PROFILE_ANS32_P24: "constriction stack ANS, 32-bit words, 24-bit probabilities; float prior (format 1.0)",
    PROFILE_EXACT_ANS32_P24: "constriction stack ANS, 32-bit words, 24-bit probabilities; exact integer prior, "
                             "platform libm (format 1.1)",
    PROFILE_PORTABLE_ANS32_P24: "constriction stack ANS, 32-bit words, 24-bit probabilities; exact integer prior, "
                                "portable arithmetic (format 1.2)",
}
#: The first format minor version that may carry each profile.
_PROFILE_MIN_MINOR = {PROFILE_ANS32_P24: 0, PROFILE_EXACT_ANS32_P24: 1, PROFILE_PORTABLE_ANS32_P24: 2}
CHANNELS_RGB = 3
CHANNELS_GREY = 1
CHANNEL_MODES = {CHANNELS_RGB: "RGB", CHANNELS_GREY: "grey"}
#: The first format minor version that may carry each channel mode.
_CHANNELS_MIN_MINOR = {CHANNELS_RGB: 0, CHANNELS_GREY: 1}

# magic, major, minor, header_size, profile, channels, height, width, 4 pads, hash, key length
_FIXED = struct.Struct("<4sBBHBBII4B8sB")
_CRC = struct.Struct("<I")
_KEY_RE = re.compile(r"[A-Za-z0-9._-]+")
_INT_FIELDS = (
    ("height", 1, MAX_SIDE),
    ("width", 1, MAX_SIDE),
    ("pad_top", 0, MAX_PAD),
    ("pad_bottom", 0, MAX_PAD),
    ("pad_left", 0, MAX_PAD),
    ("pad_right", 0, MAX_PAD),
    ("channel_mode", 0, 255),
    ("coder_profile", 0, 255),
)


class LqFormatError(ValueError):
    """The bytes are not a valid ``.lq`` file this reader can decode."""


@dataclass(frozen=True)
class LqHeader:
    """Everything in a ``.lq`` file except the chunks.

    ``weights_sha256_prefix`` is the first 8 bytes (not hex) of the weights' sha256;
    see :func:`weights_hash_prefix`. ``format_version`` is what the file says; the
    writer writes :data:`WRITABLE_VERSIONS`. Invalid values raise ``ValueError``.
    """

    model_key: str
    weights_sha256_prefix: bytes
    height: int
    width: int
    pad_top: int = 0
    pad_bottom: int = 0
    pad_left: int = 0
    pad_right: int = 0
    channel_mode: int = CHANNELS_RGB
    coder_profile: int = PROFILE_DEFAULT
    format_version: tuple[int, int] = FORMAT_VERSION

    def __post_init__(self) -> None:
        key = self.model_key
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(f"model key {key!r} must be 1..{MAX_MODEL_KEY_LEN} characters from A-Z a-z 0-9 . _ -")
        if len(key) > MAX_MODEL_KEY_LEN:
            raise ValueError(f"model key is {len(key)} characters; at most {MAX_MODEL_KEY_LEN} are allowed")
        prefix = self.weights_sha256_prefix
        if not isinstance(prefix, bytes) or len(prefix) != HASH_PREFIX_LEN:
            raise ValueError(f"weights_sha256_prefix must be {HASH_PREFIX_LEN} bytes, got {prefix!r}")
        for name, low, high in _INT_FIELDS:
            value = getattr(self, name)
            try:
                value = operator.index(value)
            except TypeError:
                raise ValueError(f"{name} must be an integer, got {value!r}") from None
            if not low <= value <= high:
                raise ValueError(f"{name} {value} is outside {low}..{high}")
            object.__setattr__(self, name, value)
        if self.channel_mode not in CHANNEL_MODES:
            raise ValueError(f"unknown channel mode {self.channel_mode!r} (known: {_known(CHANNEL_MODES)})")
        if self.coder_profile not in CODER_PROFILES:
            raise ValueError(f"unknown coder profile {self.coder_profile!r} (known: {_known(CODER_PROFILES)})")
        major, minor = self.format_version
        if major != FORMAT_VERSION[0] or not 0 <= minor <= 255:
            raise ValueError(f"format version {major}.{minor} is not 1.x")
        if minor < _CHANNELS_MIN_MINOR[self.channel_mode]:
            raise ValueError(f"channel mode {self.channel_mode} needs format 1.1 or later, not {major}.{minor}")
        if minor < _PROFILE_MIN_MINOR[self.coder_profile]:
            raise ValueError(f"coder profile {self.coder_profile} needs format 1.{_PROFILE_MIN_MINOR[self.coder_profile]}"
                             f" or later, not {major}.{minor}")

    @property
    def padded_height(self) -> int:
        return self.height + self.pad_top + self.pad_bottom

    @property
    def padded_width(self) -> int:
        return self.width + self.pad_left + self.pad_right


def _known(table: dict[int, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in table.items())


def weights_hash_prefix(sha256_hex: str) -> bytes:
    """The 8-byte prefix stored in the header, from a full sha256 hex digest."""
    digest = bytes.fromhex(sha256_hex)
    if len(digest) != 32:
        raise ValueError(f"expected a 64-hex-digit sha256, got {len(sha256_hex)} characters")
    return digest[:HASH_PREFIX_LEN]


def container_overhead(model_key_len: int, n_chunks: int) -> int:
    """Bytes a format-1.x file adds on top of its chunk payloads."""
    return _FIXED.size + model_key_len + 1 + 4 * n_chunks + _CRC.size


def pack(header: LqHeader, chunks: list[bytes]) -> bytes:
    """Serialize ``header`` and ``chunks`` (at most 16, each < 4 GiB) to ``header.format_version``."""
    if header.format_version not in WRITABLE_VERSIONS:
        raise ValueError(f"this writer writes formats {', '.join(map(_v, WRITABLE_VERSIONS))}, "
                         f"not {_v(header.format_version)}")
    if len(chunks) > MAX_CHUNKS:
        raise ValueError(f"{len(chunks)} chunks; at most {MAX_CHUNKS} are allowed")
    chunks = [bytes(c) for c in chunks]
    for i, chunk in enumerate(chunks):
        if len(chunk) >= 1 << 32:
            raise ValueError(f"chunk {i} is {len(chunk)} bytes; at most 2**32 - 1 are allowed")
    key = header.model_key.encode("ascii")
    fixed = _FIXED.pack(
        MAGIC,
        *header.format_version,
        _FIXED.size + len(key),
        header.coder_profile,
        header.channel_mode,
        header.height,
        header.width,
        header.pad_top,
        header.pad_bottom,
        header.pad_left,
        header.pad_right,
        header.weights_sha256_prefix,
        len(key),
    )
    table = struct.pack(f"<B{len(chunks)}I", len(chunks), *(len(c) for c in chunks))
    body = b"".join([fixed, key, table, *chunks])
    return body + _CRC.pack(zlib.crc32(body))


def _v(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


class _Raw:
    """Fields parsed with structural checks only (no value validation yet)."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        n = len(view)
        if n == 0:
            raise LqFormatError("empty file (0 bytes): not a .lq file")
        head = bytes(view[: len(MAGIC)])
        if head != MAGIC[: len(head)]:
            raise LqFormatError(f"not a .lq file (starts with {head!r}, expected {MAGIC!r})")
        self.view, self.size = view, n
        major, minor = self._need(len(MAGIC), 2, "format version")
        if major != FORMAT_VERSION[0]:
            if major > FORMAT_VERSION[0]:
                raise LqFormatError(
                    f"written by a newer leechcodec: format {major}.{minor}, "
                    f"this reader supports {FORMAT_VERSION[0]}.x"
                )
            raise LqFormatError(f"unsupported format {major}.{minor}, this reader supports {FORMAT_VERSION[0]}.x")
        (header_size,) = struct.unpack_from("<H", self._need(6, 2, "header size"))
        if header_size > MAX_HEADER_SIZE:
            raise LqFormatError(f"header claims {header_size} bytes; at most {MAX_HEADER_SIZE} are allowed")
        self.version = (major, minor)
        self.header_size = header_size
        fields = _FIXED.unpack_from(self._need(0, _FIXED.size, "header"))
        key_len = fields[-1]
        if not 1 <= key_len <= MAX_MODEL_KEY_LEN:
            raise LqFormatError(f"model key length {key_len} is outside 1..{MAX_MODEL_KEY_LEN}")
        key_end = _FIXED.size + key_len
        if header_size < key_end or (minor == 0 and header_size != key_end):
            raise LqFormatError(f"header size {header_size} does not match a {key_len}-byte model key")
        self.fields = fields[4:-1]
        self.key = bytes(self._need(_FIXED.size, key_len, "model key"))
        self._need(0, header_size, "header")

    def _need(self, offset: int, length: int, what: str) -> memoryview:
        if offset + length > self.size:
            raise LqFormatError(
                f"truncated .lq file: {what} needs bytes {offset}..{offset + length}, file has {self.size}"
            )
        return self.view[offset : offset + length]

    def chunk_table(self) -> list[tuple[int, int]]:
        """(offset, length) of every chunk, checked against the file size and CRC."""
        pos = self.header_size
        (count,) = self._need(pos, 1, "chunk count")
        if count > MAX_CHUNKS:
            raise LqFormatError(f"chunk count {count} exceeds {MAX_CHUNKS}")
        lengths = struct.unpack_from(f"<{count}I", self._need(pos + 1, 4 * count, "chunk table"))
        pos += 1 + 4 * count
        available = self.size - pos - _CRC.size
        claimed = sum(lengths)
        if available < 0:
            raise LqFormatError(f"truncated .lq file: missing {-available} of the 4 checksum bytes")
        if claimed > available:
            raise LqFormatError(
                f"chunk lengths ({claimed} bytes) exceed the file ({available} bytes left): truncated or corrupt"
            )
        if claimed < available:
            raise LqFormatError(f"trailing garbage: {available - claimed} bytes after the last chunk")
        (stored,) = _CRC.unpack_from(self.view, self.size - _CRC.size)
        actual = zlib.crc32(self.view[: self.size - _CRC.size])
        if stored != actual:
            raise LqFormatError(f"checksum mismatch (stored {stored:08x}, computed {actual:08x}): file is corrupt")
        table = []
        for length in lengths:
            table.append((pos, length))
            pos += length
        return table

    def header(self) -> LqHeader:
        profile, channels, height, width, top, bottom, left, right, prefix = self.fields
        try:
            key = self.key.decode("ascii")
            return LqHeader(
                model_key=key,
                weights_sha256_prefix=prefix,
                height=height,
                width=width,
                pad_top=top,
                pad_bottom=bottom,
                pad_left=left,
                pad_right=right,
                channel_mode=channels,
                coder_profile=profile,
                format_version=self.version,
            )
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise LqFormatError(f"invalid header: {exc}") from None


def unpack(data: bytes | bytearray | memoryview) -> tuple[LqHeader, list[bytes]]:
    """Parse and verify a whole ``.lq`` file; returns its header and chunk payloads."""
    raw = _Raw(data)
    table = raw.chunk_table()
    header = raw.header()
    return header, [bytes(raw.view[offset : offset + length]) for offset, length in table]


def peek_header(data: bytes | bytearray | memoryview) -> LqHeader:
    """Parse only the header (for ``leechcodec info``); chunks and checksum are not verified.

    ``data`` may be the first bytes of a file: ``MAX_HEADER_SIZE`` bytes always suffice.
    """
    return _Raw(data).header()
