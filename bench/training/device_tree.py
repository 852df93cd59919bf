"""Fit the working tree under the device machine's transfer limit for a training window.

The device machine receives a copy of the working tree (tracked and untracked, not ignored
files) plus the carried paths, at most 64 MiB in all. A training window needs the code, the
packed training set and a checkpoint, not the zoo's released weights (131 MB), so they are
moved aside for the run and put back after it:

    python -m leechcodec.bench.training.device_tree check --carry .relay   # what would travel
    python -m leechcodec.bench.training.device_tree aside                  # weights -> .aside/
    ... the device run ...
    python -m leechcodec.bench.training.device_tree restore                # back, sha256 checked

``.aside/`` is listed in ``.git/info/exclude`` so that it neither travels nor shows in
``git status``. ``restore`` checks every weights file against the registry's sha256.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIMIT = 64 << 20
WEIGHTS = Path("leechcodec") / "weights"
ASIDE = Path(".aside")


def _git(*args: str, root: Path = REPO) -> list[str]:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout
    return [line for line in out.split("\0") if line]


def travelling_bytes(root: Path = REPO, carry: list[str] = ()) -> tuple[int, list[tuple[int, str]]]:
    """``(total, [(bytes, path), ...] largest first)`` of what a device run would copy:
    tracked files present on disk, untracked files git does not ignore, and ``carry``."""
    files = set(_git("ls-files", "-z", root=root)) | set(_git("ls-files", "-z", "--others", "--exclude-standard",
                                                                root=root))
    sizes = []
    for rel in files:
        path = root / rel
        if path.is_file() and not path.is_symlink():
            sizes.append((path.stat().st_size, rel))
    for rel in carry:
        path = root / rel
        items = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
        sizes += [(p.stat().st_size, str(p.relative_to(root))) for p in items]
    sizes.sort(reverse=True)
    return sum(s for s, _ in sizes), sizes


def _exclude(root: Path) -> None:
    exclude = root / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    if f"/{ASIDE}/" not in lines:
        exclude.write_text("\n".join([*lines, f"/{ASIDE}/"]) + "\n")


def aside(root: Path = REPO) -> list[str]:
    """Move the zoo's weights files to ``.aside/``; returns the moved names."""
    _exclude(root)
    dst = root / ASIDE / WEIGHTS
    dst.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in sorted((root / WEIGHTS).iterdir()):
        if path.suffix in (".pt", ".safetensors"):
            shutil.move(str(path), dst / path.name)
            moved.append(path.name)
    return moved


def restore(root: Path = REPO) -> list[str]:
    """Move the weights back and check each against the registry's sha256."""
    from leechcodec.zoo import sha256_file

    src = root / ASIDE / WEIGHTS
    moved = []
    if src.exists():
        for path in sorted(src.iterdir()):
            shutil.move(str(path), root / WEIGHTS / path.name)
            moved.append(path.name)
    registry = json.loads((root / WEIGHTS / "registry.json").read_text())
    bad = [e["file"] for e in registry if not (root / WEIGHTS / e["file"]).exists()
           or sha256_file(root / WEIGHTS / e["file"]) != e["sha256"]]
    if bad:
        raise RuntimeError(f"weights missing or changed after restore: {', '.join(bad)}")
    return moved


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="what a device run would copy, against the 64 MiB limit")
    c.add_argument("--carry", nargs="*", default=[])
    sub.add_parser("aside", help="move the zoo's weights to .aside/")
    sub.add_parser("restore", help="move them back (sha256 checked)")
    args = p.parse_args(argv)
    if args.cmd == "check":
        total, sizes = travelling_bytes(REPO, args.carry)
        for size, rel in sizes[:8]:
            print(f"{size / 2**20:8.1f} MiB  {rel}")
        verdict = "fits" if total <= LIMIT else "too large"
        print(f"{total / 2**20:.1f} MiB in {len(sizes)} files: {verdict} (limit {LIMIT / 2**20:.0f} MiB)")
        return 0 if total <= LIMIT else 1
    names = aside() if args.cmd == "aside" else restore()
    print(f"{args.cmd}: {len(names)} weights files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
