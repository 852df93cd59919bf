"""device_tree: what a device run would copy, and moving the zoo's weights aside and back."""

from __future__ import annotations

import json
import subprocess

import pytest

from leechcodec.bench.training import device_tree
from leechcodec.zoo import sha256_file


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    weights = root / "leechcodec" / "weights"
    weights.mkdir(parents=True)
    (weights / "m-q1.pt").write_bytes(b"w" * 5000)
    (root / "code.py").write_text("x = 1\n")
    registry = [{"file": "m-q1.pt", "sha256": sha256_file(weights / "m-q1.pt")}]
    (weights / "registry.json").write_text(json.dumps(registry))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    (root / "untracked.txt").write_text("u" * 100)
    (root / ".git" / "info" / "exclude").write_text("/carried/\n")  # ignored: travels only when carried
    (root / "carried").mkdir()
    (root / "carried" / "pack.tar").write_bytes(b"p" * 700)
    return root


def test_check_aside_restore(repo):
    total, sizes = device_tree.travelling_bytes(repo)
    assert total == 5000 + 6 + len((repo / "leechcodec/weights/registry.json").read_text()) + 100
    with_carry, _ = device_tree.travelling_bytes(repo, ["carried"])
    assert with_carry == total + 700
    assert device_tree.aside(repo) == ["m-q1.pt"]
    after, _ = device_tree.travelling_bytes(repo)
    assert after == total - 5000  # the aside folder is excluded, not copied
    assert ".aside" not in subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                                          text=True).stdout
    assert device_tree.restore(repo) == ["m-q1.pt"]
    assert device_tree.travelling_bytes(repo)[0] == total


def test_restore_refuses_changed_weights(repo):
    device_tree.aside(repo)
    (repo / ".aside" / "leechcodec" / "weights" / "m-q1.pt").write_bytes(b"x" * 5000)
    with pytest.raises(RuntimeError, match="missing or changed"):
        device_tree.restore(repo)
