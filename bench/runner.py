"""Rate sweeps: every (codec, rate parameter, image) is a task run in a process pool.

Each task encodes one image to a real file, counts the file's bytes, decodes the file,
and measures PSNR and MS-SSIM against the original. When all images of a point are in,
the point is added to the codec's result file, which is rewritten atomically; a sweep
that stops loses at most the points in flight. A rerun skips points already in the file
(resume), after checking that the file was made with the same codec settings and images.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from leechcodec.bench import results as res
from leechcodec.bench.codecs import Param, get_codec
from leechcodec.bench.datasets import Dataset
from leechcodec.bench.metrics import ms_ssim_rgb, psnr_rgb

log = logging.getLogger(__name__)

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS")


@dataclasses.dataclass(frozen=True)
class Task:
    codec: str
    param: Param
    image: str
    """Path of the original PNG."""


@dataclasses.dataclass
class SweepReport:
    """What a sweep did: result files written, points measured and skipped, failures."""

    files: list[Path]
    measured: int
    skipped: int
    errors: list[str]
    seconds: float


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as ``(H, W, 3) uint8`` RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


_WARM: set[tuple[str, str]] = set()


def _warm_up(codec, param: Param, rgb: np.ndarray, workdir: str | None) -> None:
    """Encode and decode a 64×64 corner once per (codec, parameter) and process, untimed, so
    that the measured times leave out loading models and numba kernels."""
    key = (codec.name, repr(param))
    if key in _WARM:
        return
    crop = np.ascontiguousarray(rgb[:64, :64])
    with tempfile.TemporaryDirectory(dir=workdir, prefix="lcbench-warm-") as tmp:
        path = Path(tmp) / ("warm" + codec.suffix)
        codec.encode(crop, param, path)
        codec.decode(path, *crop.shape[:2])
    _WARM.add(key)


def measure(task: Task, workdir: str | None = None) -> dict[str, Any]:
    """Encode, write, size, decode and score one image at one rate parameter (times after
    a warm-up of that codec and parameter in this process)."""
    codec = get_codec(task.codec)
    rgb = load_rgb(task.image)
    h, w = rgb.shape[:2]
    _warm_up(codec, task.param, rgb, workdir)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="lcbench-") as tmp:
        path = Path(tmp) / ("encoded" + codec.suffix)
        t0 = time.perf_counter()
        codec.encode(rgb, task.param, path)
        t1 = time.perf_counter()
        size = path.stat().st_size
        decoded = codec.decode(path, h, w)
        t2 = time.perf_counter()
    if decoded.shape != rgb.shape or decoded.dtype != np.uint8:
        raise RuntimeError(f"{task.codec} decoded {decoded.shape} {decoded.dtype}, "
                           f"expected {rgb.shape} uint8")
    psnr = psnr_rgb(rgb, decoded)
    return {
        "image": Path(task.image).name,
        "bytes": int(size),
        "bpp": 8.0 * size / (h * w),
        "psnr_rgb": psnr if math.isfinite(psnr) else None,
        "ms_ssim_rgb": ms_ssim_rgb(rgb, decoded),
        "enc_time_s": t1 - t0,
        "dec_time_s": t2 - t1,
    }


def _measure_or_error(task: Task) -> tuple[Task, dict[str, Any] | None, str | None]:
    try:
        return task, measure(task), None
    except Exception as exc:  # reported per task; the sweep goes on
        return task, None, f"{task.codec} {task.param} {Path(task.image).name}: {exc}"


def _init_worker() -> None:
    for var in _THREAD_ENV:
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)


def _pkey(param: Param) -> float:
    return float(param)


def run_sweep(codecs: Sequence[str], dataset: Dataset, out_dir: Path, workers: int = 1,
              params: dict[str, Sequence[Param]] | None = None, fresh: bool = False,
              progress: bool = False) -> SweepReport:
    """Sweep ``codecs`` over ``dataset``; write ``out_dir/<codec>.json`` for each.

    ``params`` overrides a codec's default rate parameters. ``workers`` > 1 runs tasks in
    a process pool (spawned; one thread each); 1 runs them in this process.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    state: dict[str, dict[str, Any]] = {}
    files: dict[str, Path] = {}
    pending: dict[tuple[str, float], list[dict[str, Any]]] = {}
    tasks: list[Task] = []
    skipped = 0
    provenance = res.run_provenance(workers)
    for name in codecs:
        codec = get_codec(name)
        path = out_dir / f"{name}.json"
        result = res.new_result(codec, dataset)
        if path.exists() and not fresh:
            existing = res.load_result(path)
            res.check_resumable(existing, result, path)
            existing["codec"]["versions"] = result["codec"]["versions"]
            result = existing
        done = res.params_done(result)
        todo = [p for p in (params or {}).get(name, codec.params()) if _pkey(p) not in done]
        skipped += len(list((params or {}).get(name, codec.params()))) - len(todo)
        state[name], files[name] = result, path
        if todo:
            result["runs"].append(provenance)
        for p in todo:
            pending[(name, _pkey(p))] = []
            tasks.extend(Task(name, p, str(img)) for img in dataset.paths)
    n_images = len(dataset.paths)
    errors: list[str] = []
    failed: set[tuple[str, float]] = set()
    measured = 0

    def collect(task: Task, record: dict[str, Any] | None, error: str | None) -> None:
        nonlocal measured
        key = (task.codec, _pkey(task.param))
        if error is not None:
            errors.append(error)
            failed.add(key)
            log.error("%s", error)
            return
        pending[key].append(record)
        if len(pending[key]) == n_images and key not in failed:
            result = state[task.codec]
            run = len(result["runs"]) - 1
            result["points"].append(res.aggregate_point(task.param, pending.pop(key), run))
            res.save_result(result, files[task.codec])
            measured += 1

    bar = _progress(len(tasks), progress)
    if workers <= 1:
        _init_worker()
        for task in tasks:
            collect(*_measure_or_error(task))
            bar.update(1)
    else:
        ctx = get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
            futures: list[Future] = [pool.submit(_measure_or_error, t) for t in tasks]
            for fut in as_completed(futures):
                collect(*fut.result())
                bar.update(1)
    bar.close()
    for name in codecs:
        if not files[name].exists():
            res.save_result(state[name], files[name])
    return SweepReport(list(files.values()), measured, skipped, errors,
                       time.perf_counter() - start)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="bench", smoothing=0.05)
