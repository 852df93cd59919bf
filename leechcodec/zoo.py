"""Model zoo: one declarative registry of shipped weights, verified by sha256 on load.

The registry is ``leechcodec/weights/registry.json``: a list of entries, each with
``name``, ``quality``, ``quantizer`` (``leech24``, ``bsq`` or ``scalar``), ``file``, its full
``sha256``, the training ``lmbda`` and ``budget`` and ``provenance`` (command, data, steps,
crops seen, wall time, device). A model's key inside a .lq file is ``name.qQUALITY`` (e.g. ``leech24gs-n128-v1.q3``).
Weights files hold ``{"format": 1, "config": ModelConfig dict, "state_dict": ...}``;
the architecture comes from the stored config, never from tensor shapes. Nothing is
ever downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILTIN_WEIGHTS_DIR = Path(__file__).with_name("weights")
#: Environment variable naming another zoo folder (registry.json + weights), e.g. for
#: models in development or test fixtures; it replaces the built-in zoo.
ZOO_ENV = "LEECHCODEC_ZOO"
DEFAULT_MODEL = "leech24gs-n128-v4"
DEFAULT_QUALITY = 3

__all__ = ["ZooEntry", "list_models", "get_entry", "load_model", "sha256_file", "ModelNotFoundError"]


class ModelNotFoundError(ValueError):
    """Unknown model name/quality, missing weights file or a hash mismatch."""


@dataclass(frozen=True)
class ZooEntry:
    name: str
    quality: int
    quantizer: str
    file: str
    sha256: str
    lmbda: float
    budget: dict
    provenance: dict

    @property
    def key(self) -> str:
        return f"{self.name}.q{self.quality}"

    @property
    def path(self) -> Path:
        return zoo_dir() / self.file

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "quality": self.quality, "quantizer": self.quantizer, "key": self.key,
                "file": self.file, "sha256": self.sha256, "lmbda": self.lmbda, "budget": self.budget,
                "provenance": self.provenance}


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks (``algorithm``: a :mod:`hashlib` name)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    return file_digest(path, "sha256")


def zoo_dir() -> Path:
    """The folder holding ``registry.json`` and the weights: $LEECHCODEC_ZOO or the built-in one."""
    return Path(os.environ.get(ZOO_ENV) or BUILTIN_WEIGHTS_DIR)


def list_models() -> list[ZooEntry]:
    registry = zoo_dir() / "registry.json"
    if not registry.exists():
        return []
    return [ZooEntry(**e) for e in json.loads(registry.read_text())]


def get_entry(name: str = DEFAULT_MODEL, quality: int | None = None) -> ZooEntry:
    """The registry entry for ``name`` (and ``quality``; default: the model's default or only one)."""
    entries = [e for e in list_models() if e.name == name]
    if not entries:
        known = sorted({e.name for e in list_models()})
        raise ModelNotFoundError(f"unknown model {name!r}; available: {', '.join(known) or 'none'}")
    if quality is None:
        qualities = sorted(e.quality for e in entries)
        quality = DEFAULT_QUALITY if DEFAULT_QUALITY in qualities else qualities[len(qualities) // 2]
    for e in entries:
        if e.quality == quality:
            return e
    raise ModelNotFoundError(f"model {name!r} has no quality {quality}; available: "
                             f"{', '.join(str(e.quality) for e in sorted(entries, key=lambda e: e.quality))}")


def entry_from_key(key: str) -> ZooEntry:
    name, sep, q = key.rpartition(".q")
    if not sep or not q.isdigit():
        raise ModelNotFoundError(f"malformed model key {key!r}")
    return get_entry(name, int(q))


def load_model(name: str = DEFAULT_MODEL, quality: int | None = None):
    """``(entry, model)``: a registry entry's model with its verified weights (CPU, eval mode)."""
    entry = get_entry(name, quality)
    model = _load(str(entry.path), entry.sha256)
    model.zoo_entry = entry  # its identity in .lq files (leechcodec.api.model_identity)
    return entry, model


@functools.lru_cache(maxsize=8)
def _load(path: str, sha256: str):
    import torch

    from leechcodec.models import LeechCodecModel, ModelConfig

    if not Path(path).exists():
        raise ModelNotFoundError(f"weights file {path} is missing (broken install?)")
    digest = sha256_file(path)
    if digest != sha256:
        raise ModelNotFoundError(f"weights {path} fail their sha256 check ({digest[:12]}… ≠ {sha256[:12]}…)")
    if path.endswith(".safetensors"):
        config, state = read_safetensors(path)
    else:  # the released models of format 1 (a restricted, weights-only unpickler)
        blob = torch.load(path, map_location="cpu", weights_only=True)
        config, state = blob["config"], blob["state_dict"]
    model = LeechCodecModel(ModelConfig(**config))
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) if k in model.state_dict() else v
                           for k, v in state.items()})
    model.eval()
    return model


#: Tensors with at least this many elements are stored in float16 by default (the
#: transforms' kernels); smaller ones (biases, GDN, the EntropyBottleneck) stay float32.
FLOAT16_MIN_ELEMENTS = 4096


def stored_tensor(value, float16: bool = True):
    """A state-dict tensor as a weights file stores it: on the CPU, contiguous, and rounded
    to float16 when ``float16`` and it is floating with at least :data:`FLOAT16_MIN_ELEMENTS`
    elements."""
    import torch

    value = value.detach().cpu().contiguous()
    if float16 and value.is_floating_point() and value.numel() >= FLOAT16_MIN_ELEMENTS:
        value = value.to(torch.float16)
    return value


def write_safetensors(model, path: Path, float16: bool = True) -> None:
    """The model's config and state dict as a safetensors file (no pickle: a JSON header and
    raw little-endian tensors). With ``float16``, floating tensors of at least
    :data:`FLOAT16_MIN_ELEMENTS` elements are rounded to float16. Written atomically, with the
    usual file permissions (safetensors' own ``save_file`` makes owner-only files)."""
    from safetensors.numpy import save

    from leechcodec.fileio import atomic_write_bytes

    tensors = {k: stored_tensor(v, float16).numpy() for k, v in model.state_dict().items()}
    metadata = {"format": "leechcodec-weights-2", "config": json.dumps(model.config.to_dict(), sort_keys=True)}
    atomic_write_bytes(path, _with_metadata_in_order(save(tensors, metadata=metadata), metadata))


def _with_metadata_in_order(blob: bytes, metadata: dict) -> bytes:
    """``blob`` (a safetensors file) with its ``__metadata__`` keys in ``metadata``'s order.

    safetensors serializes the metadata from a hash map, so two exports of the same model can
    differ in key order, and so in sha256. The header is re-written in one order (the tensor
    offsets count from the end of the header, so they stay valid) so an export is byte-for-byte
    reproducible."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    header = {"__metadata__": dict(metadata), **{k: v for k, v in header.items() if k != "__metadata__"}}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + n:]


def read_safetensors(path: str | Path) -> tuple[dict, dict]:
    """``(config dict, state dict of CPU tensors)`` of a file :func:`write_safetensors` wrote."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
        if meta.get("format") != "leechcodec-weights-2":
            raise ModelNotFoundError(f"{path}: not a leechcodec weights file (format {meta.get('format')!r})")
        state = {k: torch.from_numpy(f.get_tensor(k).copy()) for k in f.keys()}
    return json.loads(meta["config"]), state


def export_weights(model, out_dir: Path, name: str, quality: int, quantizer: str, lmbda: float,
                   budget: dict, provenance: dict, fmt: str = "safetensors", float16: bool = True) -> ZooEntry:
    """Freeze a trained model into ``out_dir`` (weights file + registry entry, replacing one
    with the same name and quality). The EntropyBottleneck's CDF tables are computed here
    once and stored, so every decoder uses the same integers.

    ``fmt``: ``"safetensors"`` (:func:`write_safetensors`, float16 kernels unless
    ``float16=False``) or ``"pt"``, the format of the released models (kept for the frozen
    test fixtures whose golden files record their weights' hash)."""
    import torch

    model.entropy_bottleneck.update(force=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        file = f"{name}-q{quality}.safetensors"
        write_safetensors(model, out_dir / file, float16=float16)
    elif fmt == "pt":
        file = f"{name}-q{quality}.pt"
        blob = {"format": 1, "config": model.config.to_dict(),
                "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}}
        torch.save(blob, out_dir / file)
    else:
        raise ValueError(f"unknown weights format {fmt!r}")
    entry = ZooEntry(name=name, quality=quality, quantizer=quantizer, file=file,
                     sha256=sha256_file(out_dir / file), lmbda=lmbda, budget=budget, provenance=provenance)
    registry = out_dir / "registry.json"
    entries = json.loads(registry.read_text()) if registry.exists() else []
    entries = [e for e in entries if (e["name"], e["quality"]) != (name, quality)] + [entry.to_json()]
    entries.sort(key=lambda e: (e["name"], e["quality"]))
    for e in entries:
        e.pop("key", None)
    registry.write_text(json.dumps(entries, indent=1) + "\n")
    return entry
