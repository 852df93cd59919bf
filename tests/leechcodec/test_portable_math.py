"""Format 1.2 under another libm: a shim preloaded in front of the C library returns every
``exp``, ``log``, ``log1p``, ``erf`` and ``erfc`` 1e-9 off (far more than any two real
libms differ). The decoder process then must compute the same format-1.2 probabilities and
decode the same files, while format 1.1's libm path visibly changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from leechcodec import coding
from leechcodec.bitstream import container
from leechcodec.codec import coding_parameters, compress, decompress
from leechcodec.kernels import leech_prior as lp
from leechcodec.zoo import load_model

from ..conftest import random_image

_CHILD = r"""
import json, math, sys
import numpy as np
from leechcodec import coding
from leechcodec.codec import coding_parameters, decompress
from leechcodec.kernels import leech_prior as lp

ref = np.load(sys.argv[1])
out = {"math_exp_1": math.exp(1.0)}
f, idx = ref["f"], ref["idx"]
for portable in (True, False):
    t = lp.coding_tables(f, idx, portable=portable)
    arrays = [lp.shape_log_probs(f, portable=portable), *t.major_probs, *t.minor_probs]
    stored = [ref[f"{portable}_{k}"] for k in range(len(arrays))]
    out[f"tables_same_{portable}"] = all(a.tobytes() == b.tobytes() for a, b in zip(arrays, stored))
for profile in (2, 3):
    portable = profile == 3
    rows = np.concatenate([coding._gaussian_row(j, portable)[1] for j in range(0, 64, 7)]
                          + [coding._gain_row(m, j, portable) for m, j in ((0, 3), (40, 20), (900, 63))])
    out[f"rows_same_{profile}"] = rows.tobytes() == ref[f"rows_{profile}"].tobytes()
files = {}
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    params = coding_parameters(data)
    files[path] = {"pixels": decompress(data).tobytes() == np.load(path + ".npy").tobytes(),
                   "symbols": params["symbols"].tobytes() == np.load(path + ".sym.npy").tobytes()}
out["files"] = files
print(json.dumps(out))
"""


def _rows(profile: int) -> np.ndarray:
    portable = profile == 3
    return np.concatenate([coding._gaussian_row(j, portable)[1] for j in range(0, 64, 7)]
                          + [coding._gain_row(m, j, portable) for m, j in ((0, 3), (40, 20), (900, 63))])


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("cc") is None,
                    reason="needs Linux's dynamic linker (LD_PRELOAD) and a C compiler")
def test_format_1_2_decodes_alike_under_another_libm(tiny_zoo, tmp_path):
    from leechcodec.bench.micro.portability import _libm_configs

    shim = next(c["preload"] for c in _libm_configs(str(tmp_path)) if "1e-9" in c["name"])

    rng = np.random.default_rng(0)
    f = rng.normal(0, 2, size=(64, 24, 9))  # sharp enough for every tier-0 path, varied shapes
    idx = rng.integers(0, lp.N_CODEWORDS, 64)
    ref = {"f": f, "idx": idx, "rows_2": _rows(2), "rows_3": _rows(3)}
    for portable in (True, False):
        t = lp.coding_tables(f, idx, portable=portable)
        for k, a in enumerate([lp.shape_log_probs(f, portable=portable), *t.major_probs, *t.minor_probs]):
            ref[f"{portable}_{k}"] = a
    np.savez(tmp_path / "ref.npz", **ref)

    files = []
    for name in ("tiny-leech", "tiny-scalar", "tiny-gainshape"):
        entry, model = load_model(name, 1)
        data = compress(model, entry, random_image(48, 80, seed=2)).data
        assert container.peek_header(data).coder_profile == container.PROFILE_PORTABLE_ANS32_P24
        path = tmp_path / f"{name}.lq"
        path.write_bytes(data)
        np.save(f"{path}.npy", decompress(data))
        np.save(f"{path}.sym.npy", coding_parameters(data)["symbols"])
        files.append(str(path))

    env = {**os.environ, "LD_PRELOAD": shim}
    res = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "ref.npz"), *files], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    # The shim is in force: libm's exp, and with it format 1.1's tables and rows, moved ...
    assert out["math_exp_1"] != pytest.approx(np.e, rel=1e-12)
    assert not out["tables_same_False"] and not out["rows_same_2"]
    # ... and format 1.2's did not, nor did what its files decode to.
    assert out["tables_same_True"] and out["rows_same_3"]
    assert all(r["pixels"] and r["symbols"] for r in out["files"].values()), out["files"]
