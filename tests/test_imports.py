"""Installed import names resolve to this repository, and the torch-free layers stay so."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "module,folder",
    [
        ("leechcodec", "leechcodec"),
        ("leechcodec.kernels", "kernels"),
        ("leechcodec.bitstream", "bitstream"),
        ("leechcodec.bench", "bench"),
        ("leechcodec.bench.micro", "bench/micro"),
        ("leechcodec.bench.training", "bench/training"),
    ],
)
def test_packages_resolve_to_repo(module, folder):
    mod = __import__(module, fromlist=["__file__"])
    assert Path(mod.__file__).resolve() == REPO / folder / "__init__.py"


def test_torch_free_layers_do_not_import_torch():
    code = (
        "import sys\n"
        "import leechcodec.kernels, leechcodec.kernels.golay, leechcodec.kernels.leech\n"
        "import leechcodec.bitstream, leechcodec.lattice\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
