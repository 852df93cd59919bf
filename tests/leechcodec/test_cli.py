"""The command line, called in-process through main(argv)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from leechcodec.cli import main

from ..conftest import random_image


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(random_image(40, 52)).save(path)
    return path


def test_encode_decode_info_json(tiny_zoo, png, tmp_path, capsys):
    lq, out = tmp_path / "x.lq", tmp_path / "out.png"
    assert main(["encode", str(png), str(lq), "--model", "tiny-leech", "--quality", "1", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["bytes"] == lq.stat().st_size and rec["bpp"] == pytest.approx(8 * rec["bytes"] / (40 * 52))
    assert main(["decode", str(lq), str(out)]) == 0
    assert "40" in capsys.readouterr().out
    assert np.asarray(Image.open(out)).shape == (40, 52, 3)
    assert main(["info", str(lq), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "tiny-leech.q1" and (info["width"], info["height"]) == (52, 40)
    assert (info["coder_profile"], info["prior"]) == (3, "exact integer prior, portable arithmetic (format 1.2)")
    assert main(["info", str(lq)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("coder profile 3: exact integer prior, portable arithmetic (format 1.2)")


BUDGET_KEYS = {"steps", "batch", "crop", "crops_seen", "pixels_seen", "wall_s", "device"}


def test_models_json(tiny_zoo, capsys):
    assert main(["models", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {(e["name"], e["quality"], e["quantizer"]) for e in entries} == {
        ("tiny-leech", 1, "leech24"), ("tiny-bsq", 1, "bsq"), ("tiny-scalar", 1, "scalar"),
        ("tiny-gainshape", 1, "leech24gs")}
    for e in entries:
        assert BUDGET_KEYS <= set(e["budget"]) and e["key"] == f"{e['name']}.q{e['quality']}"


def test_models_table(tiny_zoo, capsys):
    assert main(["models"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["model", "quality", "quantizer", "λ", "steps", "file"]
    assert sorted(r.split()[:3] + r.split()[4:5] for r in rows) == [
        ["tiny-bsq", "1", "bsq", "0"], ["tiny-gainshape", "1", "leech24gs", "0"], ["tiny-leech", "1", "leech24", "0"],
        ["tiny-scalar", "1", "scalar", "0"]]


def test_shipped_registry_lists_full_budgets(monkeypatch, capsys):
    monkeypatch.delenv("LEECHCODEC_ZOO", raising=False)
    assert main(["models", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert entries
    for e in entries:
        assert e["quantizer"] in ("leech24", "bsq", "scalar", "leech24gs") and BUDGET_KEYS <= set(e["budget"])


def test_refuses_to_overwrite_without_force(tiny_zoo, png, tmp_path, capsys):
    lq = tmp_path / "x.lq"
    lq.write_bytes(b"keep me")
    assert main(["encode", str(png), str(lq), "--model", "tiny-leech"]) == 1
    assert "exists" in capsys.readouterr().err
    assert lq.read_bytes() == b"keep me"
    assert main(["encode", str(png), str(lq), "--model", "tiny-leech", "--force"]) == 0


@pytest.mark.parametrize("content", [b"", b"LQ24", b"not an lq file at all", b"LQ24\x09\x00" + b"\0" * 60])
def test_bad_lq_inputs_fail_in_one_line(tiny_zoo, tmp_path, capsys, content):
    bad, out = tmp_path / "bad.lq", tmp_path / "out.png"
    bad.write_bytes(content)
    assert main(["decode", str(bad), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("leechcodec decode: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


@pytest.mark.parametrize("args", [
    ["encode", "missing.png", "out.lq"],
    ["decode", "missing.lq", "out.png"],
    ["info", "missing.lq"],
    ["encode", "{png}", "out.lq", "--model", "no-such-model"],
    ["encode", "{png}", "out.lq", "--model", "tiny-leech", "--quality", "9"],
    ["encode", "{notimage}", "out.lq", "--model", "tiny-leech"],
])
def test_user_errors(tiny_zoo, png, tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    notimage = tmp_path / "notimage.png"
    notimage.write_text("hello")
    args = [a.format(png=png, notimage=notimage) for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err and "Traceback" not in err
    assert not (tmp_path / "out.lq").exists() and not (tmp_path / "out.png").exists()


def test_user_errors_are_reported_before_torch_loads(png, tmp_path):
    """A mistake on the command line costs a fraction of a second, not torch's import."""
    import subprocess
    import sys

    existing = tmp_path / "existing.lq"
    existing.write_bytes(b"x")
    cases = [["encode", str(png), str(existing)], ["encode", str(png), "o.lq", "--refine", "-1"],
             ["encode", "missing.png", "o.lq"], ["encode", str(png), "o.lq", "--model", "no-such-model"],
             ["decode", "missing.lq", "o.png"], ["decode", str(existing), "o.png"]]
    code = ("import json, sys\nfrom leechcodec.cli import main\n"
            "assert [main(c) for c in json.loads(sys.argv[1])] == [1] * 6\n"
            "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
            "assert not loaded, loaded[:5]\n")
    result = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 6 and all(": error: " in line for line in lines) and not list(tmp_path.glob("o.*"))


def test_modes_are_accepted(tiny_zoo, tmp_path):
    base = Image.fromarray(random_image(9, 11))
    for mode in ["L", "RGBA", "P", "CMYK", "I;16"]:
        src = tmp_path / f"in_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
        im = base.convert(mode) if mode != "I;16" else Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257))
        im.save(src)
        assert main(["encode", str(src), str(tmp_path / "o.lq"), "--model", "tiny-leech", "--force"]) == 0


def test_output_problems_are_refused_before_the_work(tiny_zoo, png, tmp_path, monkeypatch, capsys):
    import leechcodec.codec as codec

    lq = tmp_path / "x.lq"
    assert main(["encode", str(png), str(lq), "--model", "tiny-leech"]) == 0
    capsys.readouterr()

    def no_decode(data):
        raise AssertionError("the decoder ran before the output was checked")

    monkeypatch.setattr(codec, "decompress", no_decode)
    folder = tmp_path / "existing_dir"
    folder.mkdir()
    for out, message in [(tmp_path / "out.jpg", "must be a .png file"), (folder, "is a directory"),
                         (tmp_path / "missing" / "o.png", "does not exist")]:
        assert main(["decode", str(lq), str(out)]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_a_file_that_appears_during_the_encode_is_not_replaced(tiny_zoo, png, tmp_path, monkeypatch, capsys):
    """Two commands writing one path: the second to finish fails and the first file stays."""
    import leechcodec.codec as codec

    lq = tmp_path / "x.lq"
    real = codec.compress

    def slow_compress(*args, **kwargs):
        lq.write_bytes(b"the other encode")
        return real(*args, **kwargs)

    monkeypatch.setattr(codec, "compress", slow_compress)
    assert main(["encode", str(png), str(lq), "--model", "tiny-leech"]) == 1
    assert "exists; use --force" in capsys.readouterr().err
    assert lq.read_bytes() == b"the other encode"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "x.lq"]


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: "
                                                             "can't allocate memory: you tried to allocate 8 GB"),
                                 RuntimeError("something\nwith\nlines"), KeyError("x")])
def test_runtime_failures_end_in_one_line(tiny_zoo, png, tmp_path, monkeypatch, capsys, exc):
    import leechcodec.codec as codec

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(codec, "compress", fail)
    assert main(["encode", str(png), str(tmp_path / "x.lq"), "--model", "tiny-leech"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("leechcodec encode: error:") and err.count("\n") == 1 and "Traceback" not in err
    if isinstance(exc, MemoryError) or "allocate" in str(exc):
        assert "out of memory" in err
    assert not (tmp_path / "x.lq").exists()


def test_version_and_verbose_after_the_subcommand(tiny_zoo, png, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and "format 1.2" in capsys.readouterr().out
    bad = tmp_path / "bad.lq"
    bad.write_bytes(b"LQ24")
    with pytest.raises(ValueError):  # -v after the subcommand: the traceback, not one line
        main(["decode", str(bad), str(tmp_path / "o.png"), "-v"])
    assert main(["decode", str(bad), str(tmp_path / "o.png")]) == 1


def test_encode_refuses_an_image_name_for_the_bitstream(tiny_zoo, png, tmp_path, capsys):
    assert main(["encode", str(png), str(tmp_path / "x.png"), "--model", "tiny-leech"]) == 1
    err = capsys.readouterr().err
    assert "writes a .lq bitstream" in err and not (tmp_path / "x.png").exists()


def test_grey_images_come_back_grey(tiny_zoo, tmp_path, capsys):
    """A grey input is marked in the header and decoded to one channel, not tinted RGB."""
    from leechcodec.bitstream import container

    src, lq, out = tmp_path / "grey.png", tmp_path / "g.lq", tmp_path / "g.png"
    Image.fromarray(random_image(40, 52)[:, :, 1]).save(src)
    assert main(["encode", str(src), str(lq), "--model", "tiny-leech"]) == 0
    assert container.peek_header(lq.read_bytes()).channel_mode == container.CHANNELS_GREY
    assert main(["decode", str(lq), str(out)]) == 0
    assert Image.open(out).mode == "L"
    rgb_lq, colour = tmp_path / "c.lq", tmp_path / "colour.png"
    Image.fromarray(random_image(40, 52)).save(colour)
    assert main(["encode", str(colour), str(rgb_lq), "--model", "tiny-leech"]) == 0
    assert container.peek_header(rgb_lq.read_bytes()).channel_mode == container.CHANNELS_RGB



@pytest.mark.parametrize("argv", [["train", "--data", "d", "--out", "o"], ["relay", "run", "--pack", "p", "--out", "o",
                                                                         "--minutes", "1"], ["bench_train"]])
def test_heap_argument_is_one_definition(argv, capsys):
    """The trainer, the relay and bench_train take the same ``--heap`` (runtime.add_heap_argument):
    an unknown policy is refused before anything runs, naming the choices; so is it by set_heap."""
    from leechcodec.bench.micro import bench_train
    from leechcodec.bench.training import relay
    from leechcodec.runtime import HEAP_POLICIES, set_heap

    entry = {"train": lambda a: main(["train", *a]), "relay": relay.main, "bench_train": bench_train.main}[argv[0]]
    with pytest.raises(SystemExit) as exc:
        entry([*argv[1:], "--heap", "jemalloc"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "jemalloc" in err and all(p in err.split("choose from")[1] for p in HEAP_POLICIES)
    with pytest.raises(ValueError, match="unknown heap policy"):
        set_heap("jemalloc")
