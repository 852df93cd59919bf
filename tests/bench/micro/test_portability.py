"""Files decode on another machine: encode once, then decode in fresh processes with 1, 2,
3, 8 and 16 threads (torch, numba and BLAS), with oneDNN off through the torch integer
prior instead of the numpy one, and on CUDA when there is a GPU (the settings of
``bench/micro/portability.py``, whose decoder processes this test runs). Every decode succeeds,
every coding parameter is identical, and pixels differ by at most ±1."""

from __future__ import annotations

import numpy as np

from leechcodec.bench.micro import portability
from leechcodec.bitstream import container
from leechcodec.codec import coding_parameters, compress, decompress
from leechcodec.zoo import load_model

from ...conftest import random_image


def test_decode_matrix(tiny_zoo, tmp_path):
    files, expected = [], {}
    for name in ("tiny-leech", "tiny-bsq", "tiny-scalar", "tiny-gainshape"):
        entry, model = load_model(name, 1)
        for k, (h, w) in enumerate([(70, 129), (33, 17)]):
            data = compress(model, entry, random_image(h, w, seed=10 + k)).data
            assert container.peek_header(data).coder_profile == container.PROFILE_DEFAULT
            path = tmp_path / f"{name}-{k}.lq"
            path.write_bytes(data)
            np.save(f"{path}.ref.npy", decompress(data))
            files.append(str(path))
            expected[str(path)] = portability.param_digest(coding_parameters(data))
    configs = portability._configs(str(tmp_path))  # with the libm shims where Linux has a compiler
    assert [c["threads"] for c in configs[:5]] == [1, 2, 3, 8, 16] and configs[5]["onednn_off"]
    for cfg in configs:
        records = portability._run_config(cfg, files, compare=True)
        assert portability._summarize(records, expected) == {
            "files": len(files), "decode_failures": 0, "parameter_mismatches": 0,
            "max_pixel_diff": max(r["max_pixel_diff"] for r in records)}, cfg["name"]
        assert max(r["max_pixel_diff"] for r in records) <= 1, cfg["name"]


def test_main_measures_families_without_the_float_prior(tiny_zoo, tmp_path, monkeypatch):
    """The gain–shape family has no format-1.0 files: its rate row says so, and the exact
    prior's rate cost is taken over the models that have both."""
    import json

    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(random_image(40, 56, seed=3)).save(folder / "a.png")
    one = portability._configs()[:1]  # one decoder setting (threads=1) is enough here
    monkeypatch.setattr(portability, "_configs", lambda folder=None: one)
    out = tmp_path / "p.json"
    assert portability.main(["--images", str(folder), "--models", "tiny-gainshape.q1,tiny-leech.q1",
                             "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    gs, leech = record["rate"]["tiny-gainshape.q1"], record["rate"]["tiny-leech.q1"]
    assert gs["profile1_bytes"] is None and gs["profile2_over_profile1"] is None and gs["profile2_bytes"] > 0
    assert record["rate_total_profile2_over_profile1"] == leech["profile2_over_profile1"]
    assert record["decode_failures"] == 0 and record["parameter_mismatches"] == 0
