"""Benchmark datasets: where they live, how they are downloaded, how they are checked.

A dataset is a folder of PNG images. It is found, in this order, at ``--data-dir`` (the
dataset folder itself), at ``$LEECHCODEC_DATA/<subdir>`` (a data root holding ``kodak/``,
``clic/...``), or, after ``download=True``, in ``~/.cache/leechcodec/data/<subdir>``.
Nothing downloads unless asked.

Checks against the lists committed in ``bench/checksums/``:

- ``kodak``: SHA256 of each of the 24 files (``kodak.sha256``). A listed file whose hash
  differs is an error; a folder with files missing or extra is used but marked
  non-canonical (results record it).
- ``clic2020-pro-valid`` (41 images): the archive's MD5 (recorded by NeuralCompression)
  is checked on download; names and pixel counts are checked against
  ``clic2020-pro-valid.tsv`` (from Cool-Chic's published per-image results). No SHA256
  list of the images is committed yet: no copy was available when this was written.
  ``python -m leechcodec.bench checksums DIR`` writes one from a verified download.
- ``clic2020-pro-test`` (250) and ``clic2020-mobile-test`` (178): downloaded from the
  CLIC server; only the image count is checked (no published checksums known).

Every result records the dataset name, whether the set is canonical, how it was
verified, and a SHA256 over the per-file SHA256s of the images used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path

from leechcodec.zoo import file_digest

log = logging.getLogger(__name__)

DATA_ENV = "LEECHCODEC_DATA"
"""Environment variable naming the data root (holds ``kodak/``, ``clic/...``)."""

IMAGE_SUFFIXES = (".png",)


class DatasetError(RuntimeError):
    """A dataset folder is missing, incomplete or corrupt (a user error: no traceback)."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a public dataset comes from and how to check it."""

    name: str
    subdir: str
    """Folder under the data root."""
    count: int
    """Number of images in the canonical set."""
    sha256_file: str | None = None
    """``sha256  name`` lines in ``bench/checksums/``."""
    names_file: str | None = None
    """``name<TAB>n_pixels`` TSV in ``bench/checksums/`` (first line a header)."""
    file_url: str | None = None
    """Per-file download address with ``{name}``."""
    archive_url: str | None = None
    """Zip archive with all images."""
    archive_md5: str | None = None


DATASETS: dict[str, DatasetSpec] = {
    "kodak": DatasetSpec(
        "kodak", "kodak", 24, sha256_file="kodak.sha256",
        file_url="http://r0k.us/graphics/kodak/kodak/{name}"),
    "clic2020-pro-valid": DatasetSpec(
        "clic2020-pro-valid", "clic/professional_valid_2020", 41,
        names_file="clic2020-pro-valid.tsv",
        archive_url="https://data.vision.ee.ethz.ch/cvl/clic/professional_valid_2020.zip",
        archive_md5="7111ee240435911db04dbc5f40d50272"),
    "clic2020-pro-test": DatasetSpec(
        "clic2020-pro-test", "clic/professional_test_2020", 250,
        archive_url="https://data.vision.ee.ethz.ch/cvl/clic/test/CLIC2020Professional_test.zip"),
    "clic2020-mobile-test": DatasetSpec(
        "clic2020-mobile-test", "clic/mobile_test_2020", 178,
        archive_url="https://data.vision.ee.ethz.ch/cvl/clic/test/CLIC2020Mobile_test.zip"),
}
ALIASES = {"clic": "clic2020-pro-valid"}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """The images one benchmark run uses."""

    name: str
    root: Path
    paths: tuple[Path, ...]
    sha256: tuple[str, ...]
    """Per-file SHA256, aligned with ``paths``."""
    canonical: bool
    """All of the public set, each file verified as far as the committed lists allow."""
    verified: str
    """``sha256``, ``names+pixels`` or ``none``."""

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]

    @property
    def file_list_hash(self) -> str:
        """SHA256 of the ``sha256  name`` lines of the images used, in order."""
        lines = "".join(f"{h}  {p.name}\n" for h, p in zip(self.sha256, self.paths))
        return hashlib.sha256(lines.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def file_md5(path: Path) -> str:
    return file_digest(path, "md5")


def _checksum_text(filename: str) -> str:
    return resources.files("leechcodec.bench").joinpath("checksums", filename).read_text()


def read_sha256_list(filename: str) -> dict[str, str]:
    """``name -> sha256`` from a committed ``sha256  name`` list."""
    out: dict[str, str] = {}
    for line in _checksum_text(filename).splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.strip().lstrip("*")] = digest.lower()
    return out


def read_names_list(filename: str) -> dict[str, int]:
    """``name -> pixel count`` from a committed TSV with a header line."""
    out: dict[str, int] = {}
    for line in _checksum_text(filename).splitlines()[1:]:
        if line.strip():
            name, pixels = line.split("\t")
            out[name] = int(pixels)
    return out


def sha256_lines(folder: Path) -> str:
    """``sha256  name`` lines for the images in ``folder``, to commit as a checksum list."""
    return "".join(f"{file_sha256(p)}  {p.name}\n" for p in list_images(folder))


def list_images(folder: Path) -> list[Path]:
    """PNG files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def default_folder(spec: DatasetSpec) -> Path:
    """``$LEECHCODEC_DATA/<subdir>`` if the variable is set, else the user cache."""
    root = os.environ.get(DATA_ENV)
    if root:
        return Path(root) / spec.subdir
    return Path.home() / ".cache" / "leechcodec" / "data" / spec.subdir


def fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (through ``dest.part``, renamed when complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)
    part.replace(dest)


def download(spec: DatasetSpec, folder: Path) -> None:
    """Download ``spec``'s public images into ``folder`` and check them."""
    folder.mkdir(parents=True, exist_ok=True)
    if spec.file_url and spec.sha256_file:
        for name, digest in read_sha256_list(spec.sha256_file).items():
            dest = folder / name
            if dest.exists() and file_sha256(dest) == digest:
                continue
            fetch(spec.file_url.format(name=name), dest)
            got = file_sha256(dest)
            if got != digest:
                dest.unlink()
                raise DatasetError(f"{name} from {spec.file_url.format(name=name)}: "
                                   f"SHA256 {got} does not match the committed {digest}")
        return
    if not spec.archive_url:
        raise DatasetError(f"no download address known for {spec.name}")
    archive = folder / ".download" / Path(spec.archive_url).name
    if not archive.exists():
        fetch(spec.archive_url, archive)
    if spec.archive_md5:
        got = file_md5(archive)
        if got != spec.archive_md5:
            archive.unlink()
            raise DatasetError(f"{spec.archive_url}: MD5 {got} does not match the known "
                               f"{spec.archive_md5}")
    else:
        log.warning("%s: no checksum known for the archive; only the image count is checked",
                    spec.name)
    _extract_images(archive, folder)
    n = len(list_images(folder))
    if n != spec.count:
        raise DatasetError(f"{spec.name}: archive gave {n} images, expected {spec.count}")


def _extract_images(archive: Path, folder: Path) -> None:
    """Extract the PNGs of ``archive`` flat into ``folder`` (no paths from the archive)."""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            base = Path(info.filename).name
            if (info.is_dir() or "__MACOSX" in info.filename or base.startswith(".")
                    or Path(base).suffix.lower() not in IMAGE_SUFFIXES):
                continue
            with z.open(info) as src, open(folder / base, "wb") as dst:
                shutil.copyfileobj(src, dst)


def resolve_spec(name: str) -> DatasetSpec | None:
    """The spec for a dataset name or alias; ``None`` for a custom (unknown) name."""
    return DATASETS.get(ALIASES.get(name, name))


def load_dataset(name: str, data_dir: str | Path | None = None, images: int | None = None,
                 download_missing: bool = False, verify: bool = True) -> Dataset:
    """Find, optionally download, and check the dataset ``name``.

    ``data_dir`` is the dataset folder itself. A name without a spec needs ``data_dir``
    and is a custom set (never canonical). ``images`` keeps the first N images (by name).
    """
    spec = resolve_spec(name)
    if spec is None and data_dir is None:
        known = ", ".join(list(DATASETS) + list(ALIASES))
        raise DatasetError(f"unknown dataset {name!r} (known: {known}); "
                           "a custom dataset needs --data-dir")
    canonical_name = spec.name if spec else name
    folder = Path(data_dir) if data_dir is not None else default_folder(spec)
    if not folder.is_dir() or not list_images(folder):
        if spec is None or not download_missing:
            hint = "" if spec is None else (
                f"; set --data-dir, or {DATA_ENV} to a folder holding {spec.subdir}/, "
                "or pass --download")
            raise DatasetError(f"no images for {canonical_name} in {folder}{hint}")
        download(spec, folder)
    paths = list_images(folder)
    digests = [file_sha256(p) for p in paths]
    canonical, verified = _verify(spec, paths, digests) if verify else (False, "none")
    if images is not None:
        if images < 1:
            raise DatasetError("--images must be at least 1")
        canonical = canonical and images >= len(paths)
        paths, digests = paths[:images], digests[:images]
    return Dataset(canonical_name, folder, tuple(paths), tuple(digests), canonical, verified)


def _verify(spec: DatasetSpec | None, paths: list[Path], digests: list[str]) -> tuple[bool, str]:
    if spec is None:
        return False, "none"
    names = [p.name for p in paths]
    if spec.sha256_file:
        expected = read_sha256_list(spec.sha256_file)
        for name, digest in zip(names, digests):
            if name in expected and expected[name] != digest:
                raise DatasetError(f"{spec.name}: {name} has SHA256 {digest}, the committed "
                                   f"list says {expected[name]} (corrupt or different file)")
        canonical = set(names) == set(expected)
        if not canonical:
            log.warning("%s: folder holds %d images, %d of the %d listed; results are marked "
                        "non-canonical", spec.name, len(names), len(set(names) & set(expected)),
                        len(expected))
        return canonical, "sha256"
    if spec.names_file:
        from PIL import Image

        expected_px = read_names_list(spec.names_file)
        canonical = set(names) == set(expected_px)
        for path in paths:
            if path.name in expected_px:
                with Image.open(path) as im:
                    pixels = im.width * im.height
                if pixels != expected_px[path.name]:
                    raise DatasetError(f"{spec.name}: {path.name} has {pixels} pixels, "
                                       f"expected {expected_px[path.name]}")
        if not canonical:
            log.warning("%s: folder does not hold the %d listed images; results are marked "
                        "non-canonical", spec.name, len(expected_px))
        return canonical, "names+pixels"
    canonical = len(paths) == spec.count
    return canonical, "count"
