"""First-contact behaviour: thread policy, first-compile notice, progress, subset marks, bench warm-up."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
from PIL import Image

from leechcodec import progress, runtime
from leechcodec.cli import main

from ..conftest import random_image


class Recorder:
    def __init__(self):
        self.stages: dict[str, list] = {}
        self.current = None

    def stage(self, name, total):
        self.current = name
        self.stages.setdefault(name, [total, 0])

    def advance(self, n=1):
        self.stages[self.current][1] += n


@pytest.fixture
def restore_threads():
    t, n = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(t)
    numba.set_num_threads(n)


def test_track_is_a_plain_loop_without_a_reporter():
    assert list(progress.track(range(5), "x")) == [0, 1, 2, 3, 4]


def test_track_reports_stages_and_steps():
    rec = Recorder()
    with progress.reporting(rec):
        assert list(progress.track([1, 2, 3], "a")) == [1, 2, 3]
        assert list(progress.track(iter([4, 5]), "b")) == [4, 5]
    assert rec.stages == {"a": [3, 3], "b": [None, 2]}
    assert list(progress.track(range(2), "c")) == [0, 1] and "c" not in rec.stages  # block ended


def test_codec_reports_its_stages(tiny_zoo):
    from leechcodec.codec import compress, decompress
    from leechcodec.zoo import load_model

    entry, model = load_model("tiny-leech", 1)
    enc, dec = Recorder(), Recorder()
    with progress.reporting(enc):
        data = compress(model, entry, random_image(40, 56)).data
    with progress.reporting(dec):
        decompress(data)
    assert {"analysis", "quantization", "prior", "entropy coding"} <= set(enc.stages)
    assert {"prior", "entropy decoding", "synthesis"} <= set(dec.stages)
    for total, done in [*enc.stages.values(), *dec.stages.values()]:
        assert done >= 1 and (total is None or total == done)


def test_threads_policy_sets_torch_and_numba_alike(restore_threads):
    assert runtime.set_threads(1) == 1
    assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    torch.set_num_threads(2)
    n = runtime.set_threads(None)  # default: torch's count, for numba too
    assert n == 2 and numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    with pytest.raises(ValueError, match="at least 1"):
        runtime.set_threads(0)


def test_configure_environment_keeps_a_user_setting(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    runtime.configure_environment()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    runtime.configure_environment()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_training_keeps_the_openmp_runtimes_wait_policy(monkeypatch):
    """``leechcodec train`` leaves idle threads to the runtime's default (bench_omp: PASSIVE
    made the training step 1.18× slower); every other command sets PASSIVE."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    runtime.configure_environment("train")
    assert "OMP_WAIT_POLICY" not in os.environ
    runtime.configure_environment("encode")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    code = ("import os, sys\nfrom leechcodec import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n"
            "    pass\nprint(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for argv, expected in ((["train", "--help"], "None"), (["--version"], "PASSIVE")):
        out = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True)
        assert out.stdout.strip().splitlines()[-1] == expected, (argv, out.stdout[-300:], out.stderr[-300:])


_HEAP_PROBE = """
import resource, sys
import numpy as np
from leechcodec import runtime
if sys.argv[1] == "keep":
    assert runtime.keep_freed_memory()
def step():  # a training step in small: 4 blocks of 16 MiB, written, then freed
    blocks = [np.ones(1 << 21) for _ in range(4)]
    del blocks
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc")
def test_kept_heap_reuses_the_pages_a_step_freed():
    """With glibc's defaults, 64 MiB freed and allocated again is page-faulted again every
    time (the heap's free top is trimmed); with keep_freed_memory, not once."""
    faults = {}
    for policy in ("glibc", "keep"):
        res = subprocess.run([sys.executable, "-c", _HEAP_PROBE, policy], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        faults[policy] = int(res.stdout)
    assert faults["glibc"] >= 10 * 4 * 8  # at least one fault per 2 MiB (transparent huge pages)
    assert faults["keep"] <= 50, faults


def test_train_keeps_freed_memory_unless_told(image_folder, tmp_path, monkeypatch):
    from leechcodec import train

    calls = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: calls.append(1) or True)
    base = ["--data", str(image_folder), "--crop", "64", "--batch", "1", "--channels", "8", "--hyper-channels", "8",
            "--tokens", "1", "--steps", "1", "--threads", "1", "--device", "cpu"]
    assert train.main([*base, "--out", str(tmp_path / "a")]) == 0
    assert calls == [1]
    assert train.main([*base, "--out", str(tmp_path / "b"), "--heap", "glibc"]) == 0
    assert calls == [1]


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(random_image(40, 52)).save(path)
    return path


def test_encode_threads_and_first_compile_notice(tiny_zoo, png, tmp_path, capsys, monkeypatch, restore_threads):
    import leechcodec.kernels as kernels

    monkeypatch.setattr(kernels, "uncached_kernels", lambda *a: ["leech._search_kernel"])
    assert main(["encode", str(png), str(tmp_path / "a.lq"), "--model", "tiny-leech", "--quality", "1",
                 "--threads", "1"]) == 0
    assert "compiling the numba kernels" in capsys.readouterr().err
    assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert main(["decode", str(tmp_path / "a.lq"), str(tmp_path / "a.png"), "-q"]) == 0
    assert capsys.readouterr().err == ""  # --quiet: no notice, no progress
    monkeypatch.setattr(kernels, "uncached_kernels", lambda *a: [])
    assert main(["encode", str(png), str(tmp_path / "b.lq"), "--model", "tiny-leech", "--quality", "1"]) == 0
    assert capsys.readouterr().err == ""  # cached kernels and no terminal: nothing on stderr


def test_uncached_kernels_sees_an_empty_cache(tmp_path):
    """With an empty numba cache every codec entry kernel is reported, and none after a call."""
    code = ("from leechcodec import kernels\n"
            "print(len(kernels.uncached_kernels()), len(kernels.CODEC_KERNELS))\n"
            "import numpy as np\n"
            "from leechcodec.kernels.leech import search_numba\n"
            "search_numba(np.ones((2, 24)))\n"
            "print(kernels.uncached_kernels(('leech._search_kernel',)))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    first, second = out.splitlines()
    n_missing, n_all = map(int, first.split())
    assert n_missing == n_all == 6 and second == "[]"


def _result(tmp_path: Path, n_images: int, canonical: bool) -> Path:
    from leechcodec.bench import results as res

    path = tmp_path / f"r{n_images}.json"
    data = {"schema": res.SCHEMA, "schema_version": res.SCHEMA_VERSION,
            "codec": {"name": "x", "label": "X", "param_name": "q", "settings": {}, "versions": {}},
            "dataset": {"name": "kodak", "n_images": n_images, "images": [f"kodim{i + 1:02d}.png" for i in range(n_images)],
                        "canonical": canonical, "verified": "sha256", "file_list_sha256": "0"},
            "metrics": {}, "runs": [],
            "points": [{"param": q, "bpp": 0.2 * q, "psnr_rgb": 25.0 + 2 * q, "ms_ssim_rgb": 0.9 + 0.01 * q,
                        "enc_time_s": 0.0, "dec_time_s": 0.0, "n_images": n_images, "run": 0, "per_image": []}
                       for q in range(1, 6)]}
    path.write_text(json.dumps(data))
    return path


def test_subset_results_are_marked_in_curves_and_bd_tables(tmp_path):
    from leechcodec.bench.bdrate import bd_table
    from leechcodec.bench.curves import curve_from_result

    part = curve_from_result(_result(tmp_path, 3, False))
    full = curve_from_result(_result(tmp_path, 24, True))
    assert part.label == "X [3 of 24 images]" and full.label == "X"
    assert "measured on part of the set" in bd_table([part, full], full)
    assert "part of the set" not in bd_table([full], full)


def test_bench_times_leave_out_the_warm_up(tmp_path, monkeypatch):
    from leechcodec.bench import runner

    calls = []

    class Fake:
        name, suffix = "fake", ".bin"

        def encode(self, rgb, param, path):
            calls.append(("enc", rgb.shape[:2]))
            Path(path).write_bytes(rgb.tobytes())

        def decode(self, path, h, w):
            calls.append(("dec", (h, w)))
            return np.frombuffer(Path(path).read_bytes(), dtype=np.uint8).reshape(h, w, 3)

    monkeypatch.setattr(runner, "get_codec", lambda name: Fake())
    monkeypatch.setattr(runner, "_WARM", set())
    img = tmp_path / "a.png"
    Image.fromarray(random_image(80, 96)).save(img)
    for param in (1, 1, 2):
        runner.measure(runner.Task("fake", param, str(img)))
    # one untimed 64×64 round trip per parameter, before its first measured image
    assert calls == [("enc", (64, 64)), ("dec", (64, 64)), ("enc", (80, 96)), ("dec", (80, 96)),
                     ("enc", (80, 96)), ("dec", (80, 96)),
                     ("enc", (64, 64)), ("dec", (64, 64)), ("enc", (80, 96)), ("dec", (80, 96))]


def test_models_marks_the_default(monkeypatch, capsys):
    from leechcodec.zoo import DEFAULT_MODEL, DEFAULT_QUALITY

    monkeypatch.delenv("LEECHCODEC_ZOO", raising=False)
    assert main(["models"]) == 0
    marked = [line.split()[:2] for line in capsys.readouterr().out.splitlines() if line.endswith("(default)")]
    assert marked == [[DEFAULT_MODEL, str(DEFAULT_QUALITY)]]
    assert main(["models", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["key"] for e in entries if e["default"]] == [f"{DEFAULT_MODEL}.q{DEFAULT_QUALITY}"]


def test_quality_the_default_model_lacks_names_the_models_that_have_it(monkeypatch, png, tmp_path, capsys):
    monkeypatch.delenv("LEECHCODEC_ZOO", raising=False)
    assert main(["encode", str(png), str(tmp_path / "x.lq"), "--quality", "5"]) == 1
    err = capsys.readouterr().err
    assert "has quality 3 only" in err and "--model" in err and "leech24" in err and err.count("\n") == 1
    assert not (tmp_path / "x.lq").exists()
