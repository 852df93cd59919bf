from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from leechcodec.bench import datasets as ds
from leechcodec.bench.datasets import DatasetError, DatasetSpec, load_dataset
from tests.bench.conftest import smooth_image, write_png


def test_committed_kodak_list() -> None:
    listed = ds.read_sha256_list("kodak.sha256")
    assert list(listed) == [f"kodim{i:02d}.png" for i in range(1, 25)]
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in listed.values())
    clic = ds.read_names_list("clic2020-pro-valid.tsv")
    assert len(clic) == 41 and sum(clic.values()) == 91_451_931


def test_custom_folder_and_first_n(image_folder: Path) -> None:
    d = load_dataset("mine", data_dir=image_folder)
    assert d.names == ["a.png", "b.png"] and not d.canonical and d.verified == "none"
    assert d.sha256[0] == hashlib.sha256((image_folder / "a.png").read_bytes()).hexdigest()
    first = load_dataset("mine", data_dir=image_folder, images=1)
    assert first.names == ["a.png"] and first.file_list_hash != d.file_list_hash


def test_unknown_or_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("nope")
    monkeypatch.setenv(ds.DATA_ENV, str(tmp_path))
    with pytest.raises(DatasetError, match="--download"):
        load_dataset("kodak")


def test_data_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "clic" / "professional_valid_2020"
    folder.mkdir(parents=True)
    write_png(folder / "standin.png", smooth_image(20, 30, seed=1))
    monkeypatch.setenv(ds.DATA_ENV, str(tmp_path))
    d = load_dataset("clic")  # alias of clic2020-pro-valid
    assert d.name == "clic2020-pro-valid" and d.root == folder
    assert d.verified == "names+pixels" and not d.canonical


def test_clic_standin_with_a_listed_name_checks_its_pixel_count(tmp_path: Path) -> None:
    write_png(tmp_path / "zugr-108.png", smooth_image(20, 30, seed=1))
    with pytest.raises(DatasetError, match="pixels"):
        load_dataset("clic2020-pro-valid", data_dir=tmp_path)


def test_kodak_name_with_wrong_content_is_rejected(tmp_path: Path) -> None:
    write_png(tmp_path / "kodim01.png", smooth_image(20, 30, seed=1))
    with pytest.raises(DatasetError, match="SHA256"):
        load_dataset("kodak", data_dir=tmp_path)
    d = load_dataset("kodak", data_dir=tmp_path, verify=False)
    assert d.verified == "none" and not d.canonical


def _fake_list(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    real = ds._checksum_text
    monkeypatch.setattr(ds, "_checksum_text",
                        lambda name: text if name == "fake.sha256" else real(name))


def test_per_file_download_verifies_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = tmp_path / "server"
    server.mkdir()
    write_png(server / "x1.png", smooth_image(10, 12, seed=1))
    write_png(server / "x2.png", smooth_image(10, 12, seed=2))
    _fake_list(monkeypatch, ds.sha256_lines(server))
    spec = DatasetSpec("fake", "fake", 2, sha256_file="fake.sha256",
                       file_url=server.as_uri() + "/{name}")
    dest = tmp_path / "dest"
    ds.download(spec, dest)
    assert [p.name for p in ds.list_images(dest)] == ["x1.png", "x2.png"]
    # A server file that changed is refused and not kept.
    write_png(server / "x2.png", smooth_image(10, 12, seed=3))
    (dest / "x2.png").unlink()
    with pytest.raises(DatasetError, match="does not match"):
        ds.download(spec, dest)
    assert not (dest / "x2.png").exists()


def _zip(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_archive_download_verifies_md5_and_extracts_flat(tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    write_png(png, smooth_image(10, 12, seed=4))
    archive = tmp_path / "valid.zip"
    md5 = _zip(archive, {"valid/one.png": png.read_bytes(), "valid/two.png": png.read_bytes(),
                         "__MACOSX/valid/._one.png": b"junk", "valid/readme.txt": b"hi"})
    spec = DatasetSpec("fakeclic", "fakeclic", 2, archive_url=archive.as_uri(), archive_md5=md5)
    dest = tmp_path / "dest"
    ds.download(spec, dest)
    assert [p.name for p in ds.list_images(dest)] == ["one.png", "two.png"]
    bad = DatasetSpec("fakeclic", "fakeclic", 2, archive_url=archive.as_uri(),
                      archive_md5="0" * 32)
    with pytest.raises(DatasetError, match="MD5"):
        ds.download(bad, tmp_path / "dest2")


def test_archive_with_wrong_count_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "t.zip"
    _zip(archive, {"a.png": b"\x89PNG fake"})
    spec = DatasetSpec("t", "t", 3, archive_url=archive.as_uri())
    with pytest.raises(DatasetError, match="expected 3"):
        ds.download(spec, tmp_path / "d")


def test_load_dataset_downloads_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_download(spec: DatasetSpec, folder: Path) -> None:
        calls.append(spec.name)
        folder.mkdir(parents=True)
        write_png(folder / "s.png", smooth_image(8, 8, seed=5))

    monkeypatch.setattr(ds, "download", fake_download)
    d = load_dataset("clic2020-mobile-test", data_dir=tmp_path / "m", download_missing=True)
    assert calls == ["clic2020-mobile-test"] and d.names == ["s.png"] and d.verified == "count"


@pytest.mark.network
def test_real_kodak_download(tmp_path: Path) -> None:
    spec = ds.DATASETS["kodak"]
    name = "kodim23.png"
    ds.fetch(spec.file_url.format(name=name), tmp_path / name)
    assert ds.file_sha256(tmp_path / name) == ds.read_sha256_list("kodak.sha256")[name]


def test_local_kodak_copy_is_canonical_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs where a data root is configured (LEECHCODEC_DATA, or the shared folder here)."""
    import os

    root = os.environ.get(ds.DATA_ENV) or str(Path(__file__).resolve().parents[3] / "shared" / "data")
    if not (Path(root) / "kodak").is_dir():
        pytest.skip("no local Kodak copy")
    monkeypatch.setenv(ds.DATA_ENV, root)
    d = load_dataset("kodak")
    assert d.canonical and d.verified == "sha256" and len(d.paths) == 24
    assert load_dataset("kodak", images=3).names == ["kodim01.png", "kodim02.png", "kodim03.png"]
