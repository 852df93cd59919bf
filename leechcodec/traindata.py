"""Training images and the crops drawn from them.

A training set is a folder of images (searched recursively) or a packed ``.tar`` of them
(:mod:`leechcodec.bench.training.relay` writes one; members in the order a folder's files sort). Either
way every image is decoded once, converted to RGB and downscaled so that its long side is at
most ``max_side``; images whose short side is below the crop are left out.

Crops. Every crop takes four draws from a seeded numpy generator — the image, the top row,
the left column, a horizontal flip — in that order, crop after crop. Two samplers share that
sequence, so they cut the very same crops and their generator states are interchangeable in
checkpoints:

- :class:`CropSampler` (the original) cuts and converts the crops on the host;
- :class:`DeviceCropSampler` keeps the whole set on the training device as one flat uint8
  tensor and cuts, flips and converts the crops there (one gather); the host only draws the
  4 integers per crop and sends ``(B, 3)`` int64 — pinned and asynchronous on CUDA, so the
  step needs no host synchronization. The draws are the same on every device, so a run
  continued on another machine cuts the crops the uninterrupted run would have cut.

Both return ``(n, 3, crop, crop)`` float32 in [0, 1] with channels-last strides (a permuted
``(n, crop, crop, 3)`` array), bit-identical to each other.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

__all__ = ["IMAGE_SUFFIXES", "list_images", "downscaled", "load_training_images", "pack_members", "CropSampler",
           "DeviceCropSampler"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(folder: str | Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images found under {folder}")
    return files


def pack_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The image members of a packed training set, in the order :func:`list_images` sorts paths."""
    members = [m for m in tar.getmembers() if m.isfile() and PurePosixPath(m.name).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(members, key=lambda m: PurePosixPath(m.name))


def downscaled(im: Image.Image, max_side: int) -> Image.Image:
    """``im`` in RGB, downscaled (Lanczos) so that its long side is at most ``max_side``."""
    im = im.convert("RGB")
    scale = max_side / max(im.size)
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    return im


def _decode(source: Path | bytes, min_side: int, max_side: int) -> np.ndarray | None:
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        im = downscaled(im, max_side)
        return np.asarray(im) if min(im.size) >= min_side else None


def load_training_images(source: str | Path, min_side: int, max_side: int, workers: int | None = None,
                         limit: int | None = None) -> list[np.ndarray]:
    """All images of a folder or ``.tar`` pack (the first ``limit`` of them) as uint8 ``(H, W, 3)``,
    downscaled so the long side ≤ ``max_side``, without those whose short side is below ``min_side``.

    Decoded by ``workers`` threads (default: the CPU count, at most 16); the order and the
    pixels do not depend on it.
    """
    source = Path(source)
    if source.is_file():
        with tarfile.open(source) as tar:
            items: Sequence[Path | bytes] = [tar.extractfile(m).read() for m in pack_members(tar)[:limit]]
        if not items:
            raise ValueError(f"no images found in {source}")
    else:
        items = list_images(source)[:limit]
    workers = workers or min(16, os.cpu_count() or 1)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        images = list(pool.map(lambda s: _decode(s, min_side, max_side), items))
    return [im for im in images if im is not None]


class CropSampler:
    """Random crops with random horizontal flips, cut on the host from a fixed, seeded generator."""

    def __init__(self, images: list[np.ndarray], crop: int, seed: int | Sequence[int]) -> None:
        self.images, self.crop = images, crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        """``n`` crops as ``(n, 3, crop, crop)`` float32 in [0, 1]."""
        out = np.empty((n, self.crop, self.crop, 3), dtype=np.uint8)
        for k in range(n):
            img = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(img.shape[0] - self.crop + 1)
            x = self.rng.integers(img.shape[1] - self.crop + 1)
            patch = img[y : y + self.crop, x : x + self.crop]
            out[k] = patch[:, ::-1] if self.rng.integers(2) else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


class DeviceCropSampler:
    """:class:`CropSampler`'s crops, cut on ``device`` from the set held there as uint8.

    The images are stored row-major one after another in a flat ``(P, 3)`` uint8 tensor
    (P = all pixels of the set; 123 Mpixel, 369 MB, for the packed 560-image set).
    """

    def __init__(self, images: list[np.ndarray], crop: int, seed: int | Sequence[int],
                 device: torch.device | str = "cpu") -> None:
        self.crop, self.device = crop, torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.heights = np.array([im.shape[0] for im in images], dtype=np.int64)
        self.widths = np.array([im.shape[1] for im in images], dtype=np.int64)
        sizes = self.heights * self.widths
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.pixels = torch.empty(int(sizes.sum()), 3, dtype=torch.uint8, device=self.device)
        for im, off, size in zip(images, self.offsets, sizes):
            self.pixels[off : off + size] = torch.from_numpy(im.reshape(-1, 3).copy())
        self._cols = torch.arange(crop, device=self.device)
        self._pin = self.device.type == "cuda"

    @property
    def num_images(self) -> int:
        return len(self.heights)

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` crops' ``(first pixel, image width, flip)``, ``(n, 3)`` int64 (host)."""
        out = np.empty((n, 3), dtype=np.int64)
        c = self.crop
        for k in range(n):
            i = self.rng.integers(self.num_images)
            y = self.rng.integers(self.heights[i] - c + 1)
            x = self.rng.integers(self.widths[i] - c + 1)
            out[k] = self.offsets[i] + y * self.widths[i] + x, self.widths[i], self.rng.integers(2)
        return out

    def batch(self, n: int) -> torch.Tensor:
        """``n`` crops as ``(n, 3, crop, crop)`` float32 in [0, 1] on the device (channels-last strides)."""
        params = torch.from_numpy(self.draw(n))
        if self._pin:  # the caching host allocator keeps a pinned block until its copy has run
            params = params.pin_memory()
        first, width, flip = params.to(self.device, non_blocking=True).unbind(1)
        c = self.crop
        cols = torch.where(flip[:, None].bool(), c - 1 - self._cols, self._cols)  # (n, crop)
        idx = first[:, None, None] + self._cols[None, :, None] * width[:, None, None] + cols[:, None, :]
        crops = self.pixels.index_select(0, idx.view(-1)).view(n, c, c, 3)
        return crops.permute(0, 3, 1, 2).float().div_(255)
