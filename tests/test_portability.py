"""Files decode on another machine: encode once, then decode in fresh processes with 1, 2,
3, 8 and 16 threads (torch, numba and BLAS), with oneDNN off, through the torch integer
path instead of the numpy one, and on CUDA when there is a GPU. Every decode succeeds,
every coding parameter is identical, and pixels differ by at most ±1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from leechcodec.bitstream import container
from leechcodec.codec import coding_parameters, compress
from leechcodec.zoo import load_model

from .conftest import random_image

_DECODER = r"""
import hashlib, json, os, sys
import numpy as np
import numba, torch
from leechcodec.codec import _decode
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
numba.set_num_threads(cfg["threads"])
if cfg["onednn_off"]:
    torch.backends.mkldnn.enabled = False
out = {}
for path in cfg["files"]:
    image, params = _decode(open(path, "rb").read(), cfg["prior_device"])
    h = hashlib.sha256()
    for key in sorted(params):
        h.update(key.encode() + np.ascontiguousarray(params[key]).tobytes())
    np.save(path + "." + cfg["name"] + ".npy", image)
    out[path] = h.hexdigest()
print(json.dumps(out))
"""

CONFIGS = [
    {"name": f"t{n}", "threads": n, "onednn_off": False, "prior_device": None} for n in (1, 2, 3, 8, 16)
] + [
    {"name": "no-onednn-torch-prior", "threads": 2, "onednn_off": True, "prior_device": "cpu"},
]
if torch.cuda.is_available():
    CONFIGS.append({"name": "cuda-prior", "threads": 2, "onednn_off": False, "prior_device": "cuda"})


def _param_digest(params: dict[str, np.ndarray]) -> str:
    import hashlib

    h = hashlib.sha256()
    for key in sorted(params):
        h.update(key.encode() + np.ascontiguousarray(params[key]).tobytes())
    return h.hexdigest()


def test_decode_matrix(tiny_zoo, tmp_path):
    files, expected = [], {}
    for name in ("tiny-leech", "tiny-bsq", "tiny-scalar"):
        entry, model = load_model(name, 1)
        for k, (h, w) in enumerate([(70, 129), (33, 17)]):
            data = compress(model, entry, random_image(h, w, seed=10 + k)).data
            assert container.peek_header(data).coder_profile == container.PROFILE_EXACT_ANS32_P24
            path = tmp_path / f"{name}-{k}.lq"
            path.write_bytes(data)
            files.append(str(path))
            expected[str(path)] = _param_digest(coding_parameters(data))
    for cfg in CONFIGS:
        env = dict(os.environ, **{v: str(cfg["threads"]) for v in (
            "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")})
        run = subprocess.run([sys.executable, "-c", _DECODER, json.dumps({**cfg, "files": files})],
                             capture_output=True, text=True, env=env)
        assert run.returncode == 0, f"{cfg['name']}: {run.stderr[-2000:]}"
        assert json.loads(run.stdout.splitlines()[-1]) == expected, cfg["name"]
    for path in files:
        images = [np.load(f"{path}.{cfg['name']}.npy").astype(int) for cfg in CONFIGS]
        assert all(np.abs(im - images[0]).max() <= 1 for im in images), path
