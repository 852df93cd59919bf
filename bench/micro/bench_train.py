"""Training-step throughput per quantizer family and configuration, old step against new.

    python -m leechcodec.bench.micro.bench_train [--device auto] [--families leech24 bsq scalar]
        [--configs default zoo] [--steps 3] [--warmup 2] [--rounds 2] [--data DIR_OR_TAR]
        [--max-images 64] [--threads N] [--batch N] [--crop N] [--batches 16 32 64] [--heap keep|glibc]
        [--out FILE]

For every configuration and family, three steps are built in the same run, each on its own
copy of the same seeded model and the same training images (:mod:`leechcodec.trainstep`):

- ``old``: the old step (``--legacy-step``: crops cut on the host, CompressAI's
  EntropyBottleneck forward, the logged numbers read back every step), in float32
  (``--old-amp``, default off, as the last GPU window ran). On CUDA it also takes the
  previous torch Λ24 search (``quantizers._leech_search_torch_reference``) where that exists;
- ``new``: the device-resident step with the device's defaults (CUDA: bf16 autocast,
  channels_last, fused Adam, ``torch.compile``; CPU: float32, none of them);
- ``new_without_quantizer_prior``: ``new`` with the quantizer and the prior replaced by
  stand-ins of negligible cost (normalized tokens for codewords, the prior's logits
  without its partition function; scalar: no rounding, a sigmoid for the Gaussian
  likelihood). ``1 − time(this) / time(new)`` is the share of quantizer + prior in the step;
- ``new_bf16_nhwc``: ``new`` with bf16 autocast for the transforms and channels_last, whatever
  the device's defaults (on CUDA they are the defaults; on a CPU with bf16 matrix units,
  oneDNN needs both to use them). ``bf16_nhwc_over_new`` is its speed-up;
- ``new_bf16_nhwc_fused``: ``new_bf16_nhwc`` with fused Adam (``--fused-adam on``; CUDA's
  default). ``fused_over_bf16_nhwc`` is its speed-up.

The process keeps the memory it frees (``--heap keep``, as ``leechcodec train`` does;
:func:`leechcodec.runtime.keep_freed_memory`) unless ``--heap glibc``; each variant records
its page faults per timed step (``minflt_per_step``). ``bench_heap.py`` compares the two.

Each is warmed up (``--warmup`` steps; compilation, cuDNN's choices), then timed for
``--steps`` steps in ``--rounds`` rounds that take the three in turn (a shared machine's
load falls on all of them alike); the fastest round counts (``step_ms``; every round's in
``step_ms_rounds``, and the process's CPU time per step, median over rounds, in ``cpu_ms``:
steadier than wall time on a shared machine; on the CPU the ratios are given from both,
``_cpu`` from CPU time). On CUDA the device is synchronized before and after each timed
round only. Mpixel/s = batch · crop² / step time.
The ``flagship`` configuration is the 128-channel model of issue 15 (train it with
``--families leech24gs``). ``--batches`` adds, for the default configuration's Λ24 model, the new step at those batch
sizes (the best batch for the device).

The record (JSON, ``--out``; default ``bench/results/bench_train_<cpu|cuda>.json``) names the
device, threads, load average, versions and commit.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch import nn

from leechcodec import quantizers
from leechcodec.bench.results import write_record
from leechcodec.runtime import add_heap_argument
from leechcodec.latent_codecs import LATENT_CODECS, Leech24Codec, ScalarCodec
from leechcodec.models import LeechCodecModel, ModelConfig
from leechcodec.quantizers import QuantizerOutput, normalize_tokens
from leechcodec.traindata import CropSampler, DeviceCropSampler, load_training_images
from leechcodec.trainstep import TrainStep, compile_transforms, step_options

__all__ = ["CONFIGS", "measure", "main"]

#: name -> (architecture, crop, batch on CPU, batch on CUDA)
CONFIGS = {
    "default": ({"tokens": 8, "channels": 64, "hyper_channels": 64}, 256, 8, 32),  # leech24-hyper
    "zoo": ({"tokens": 8, "channels": 48, "hyper_channels": 48}, 128, 8, 8),  # zoo recipe, q2/q3
    "flagship": ({"tokens": 8, "channels": 128, "hyper_channels": 128}, 256, 16, 32),  # issue 15's run
}
FAMILIES = tuple(LATENT_CODECS)
VARIANTS = ("old", "new", "new_without_quantizer_prior", "new_bf16_nhwc", "new_bf16_nhwc_fused")


class _NoQuantizer(nn.Module):
    """Stand-in: the normalized tokens as codewords (scalar: the latent itself), index 0."""

    def __init__(self, dim: int | None, scale: float) -> None:
        super().__init__()
        self.dim, self.scale = dim, scale

    def forward(self, y: torch.Tensor) -> QuantizerOutput:
        if self.dim is None:
            return QuantizerOutput(y, y, torch.zeros_like(y, dtype=torch.int64))
        u = normalize_tokens(y, self.dim)
        bsz, c, h, w = y.shape
        return QuantizerOutput(u, u * self.scale, torch.zeros(bsz, c // self.dim, h, w, dtype=torch.int64,
                                                               device=y.device))


class _NoGaussian(nn.Module):
    def likelihood(self, y, scales, means):
        return torch.sigmoid(scales - (y - means).abs())

    def forward(self, y, scales, means):
        return y, self.likelihood(y, scales, means)


def strip_quantizer_and_prior(model: LeechCodecModel) -> None:
    """Replace ``model``'s quantizer and prior by the stand-ins (module docstring): the scalar
    family's Gaussian conditional, or the token prior of the spherical families (Λ24, BSQ).
    The stand-ins are the benchmark's own, so they stay here rather than on the latent codecs."""
    if isinstance(model.latent_codec, ScalarCodec):
        model.quantizer = _NoQuantizer(None, 1.0)
        model.gaussian_conditional = _NoGaussian()
    else:
        model.quantizer = _NoQuantizer(model.quantizer.dim, model.quantizer.scale)
        # (B, k·h·w), one value per token, as the real prior (the gain–shape rate masks it per token).
        model.token_log_prob = lambda a, b, codes: model.tokens_of(a * codes - b * codes * codes).sum(-1)


@contextmanager
def _old_search(device: torch.device):
    """On CUDA, the previous torch search for the old step (where the module still has it)."""
    ref = getattr(quantizers, "_leech_search_torch_reference", None)
    if device.type == "cpu" or ref is None:
        yield None
        return
    saved = quantizers._leech_search
    quantizers._leech_search = lambda tokens: ref(tokens.detach(), chunk=4096)
    try:
        yield "quantizers._leech_search_torch_reference"
    finally:
        quantizers._leech_search = saved


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(variant: str, base: LeechCodecModel, images, crop: int, batch: int, device: torch.device,
           amp: str, old_amp: str, compile: str) -> tuple[TrainStep, dict]:
    model = copy.deepcopy(base).to(device)
    if variant == "old":
        options, amp = step_options(device, legacy=True), old_amp
        sampler = CropSampler(images, crop, 0)
    else:
        forced = variant.startswith("new_bf16_nhwc")  # bf16 autocast and NHWC, whatever the device's defaults
        fused = "on" if variant == "new_bf16_nhwc_fused" else "auto"
        options = step_options(device, channels_last="on" if forced else "auto", compile=compile, fused=fused)
        amp = "bf16" if forced else amp
        sampler = DeviceCropSampler(images, crop, 0, device)
    if variant == "new_without_quantizer_prior":
        strip_quantizer_and_prior(model)
    step = TrainStep(model, model, sampler, batch, 0.01, 1e-4, device, amp, options)
    info = {"options": options.describe(), "amp": amp}
    if options.compile:
        t = time.perf_counter()

        def probe() -> None:
            step()
            _sync(device)

        ok = compile_transforms(model, probe)
        info.update(compile_s=round(time.perf_counter() - t, 1), compiled=ok)
        if not ok:
            info["options"] = info["options"].replace("+compile", "")
    return step, info


def _minor_faults() -> int:
    """Minor page faults of this process so far (0 where ``resource`` is missing)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(config: str, family: str, images, device: torch.device, steps: int, warmup: int, rounds: int,
            amp: str, old_amp: str, compile: str, batch: int | None = None,
            variants: tuple[str, ...] = VARIANTS, crop: int | None = None) -> dict:
    """Step times of ``variants`` for one configuration and family (module docstring)."""
    arch, config_crop, cpu_batch, cuda_batch = CONFIGS[config]
    batch = batch or (cuda_batch if device.type == "cuda" else cpu_batch)
    crop = crop or config_crop
    torch.manual_seed(0)
    base = LeechCodecModel(ModelConfig(quantizer=family, **arch))
    built = {}
    for v in variants:
        with _old_search(device) if v == "old" else nullcontext() as search:
            built[v] = _build(v, base, images, crop, batch, device, amp, old_amp, compile)
            if search:
                built[v][1]["search"] = search
            for _ in range(warmup):
                built[v][0]()
            built[v][0].take_stats()
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    faults: dict[str, int] = {v: 0 for v in variants}
    for _ in range(rounds):
        for v in variants:
            step = built[v][0]
            with _old_search(device) if v == "old" else nullcontext():
                _sync(device)
                t, c, f = time.perf_counter(), time.process_time(), _minor_faults()
                for _ in range(steps):
                    step()
                _sync(device)
                times[v].append((time.perf_counter() - t) / steps)
                cpu[v].append((time.process_time() - c) / steps)
                faults[v] += _minor_faults() - f
            step.take_stats()
    pixels = batch * crop * crop
    out = {"config": config, "family": family, "batch": batch, "crop": crop, **arch, "pixels_per_step": pixels,
           "variants": {}}
    for v in variants:
        best = min(times[v])
        out["variants"][v] = {**built[v][1], "step_ms": round(1e3 * best, 2),
                              "step_ms_rounds": [round(1e3 * t, 2) for t in times[v]],
                              "cpu_ms": round(1e3 * statistics.median(cpu[v]), 2),
                              "minflt_per_step": round(faults[v] / (rounds * steps), 1),
                              "mpix_per_s": round(pixels / best / 1e6, 4)}
    kinds = [("", "step_ms")] + ([("_cpu", "cpu_ms")] if device.type == "cpu" else [])
    for suffix, key in kinds:  # on the CPU also from CPU time (steadier on a shared machine)
        ms = {v: out["variants"][v][key] for v in variants}
        if "old" in ms and "new" in ms:
            out["new_over_old" + suffix] = round(ms["old"] / ms["new"], 3)
        if "new" in ms and "new_bf16_nhwc" in ms:
            out["bf16_nhwc_over_new" + suffix] = round(ms["new"] / ms["new_bf16_nhwc"], 3)
        if "new_bf16_nhwc" in ms and "new_bf16_nhwc_fused" in ms:
            out["fused_over_bf16_nhwc" + suffix] = round(ms["new_bf16_nhwc"] / ms["new_bf16_nhwc_fused"], 3)
        if "new" in ms and "new_without_quantizer_prior" in ms:
            out["quantizer_prior_share" + suffix] = round(1 - ms["new_without_quantizer_prior"] / ms["new"], 4)
    return out


def _device_record(device: torch.device) -> dict:
    from leechcodec.bench.results import git_state, package_versions
    from leechcodec.train import device_name

    commit, dirty = git_state()
    rec = {"device": device_name(device), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "load_average": list(os.getloadavg()), "platform": platform.platform(), "git_commit": commit,
           "git_dirty": dirty, "packages": package_versions(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if device.type == "cuda":
        rec["cuda"] = torch.version.cuda
    return rec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.micro.bench_train", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch", type=int, default=None, help="override every configuration's batch")
    p.add_argument("--crop", type=int, default=None, help="override every configuration's crop")
    p.add_argument("--batches", type=int, nargs="*", default=[], help="batch sweep of the default Λ24 new step")
    add_heap_argument(p, " (as leechcodec train)")
    p.add_argument("--amp", default=None, choices=["off", "bf16", "fp16"], help="new step (default: bf16 CUDA, off CPU)")
    p.add_argument("--old-amp", default="off", choices=["off", "bf16", "fp16"])
    p.add_argument("--compile", default="auto", choices=["auto", "on", "off"], help="new step (auto: on CUDA)")
    p.add_argument("--data", default=None, help="training images, folder or pack (default $LEECHCODEC_DATA/train)")
    p.add_argument("--max-images", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    from leechcodec.runtime import set_heap, set_threads
    from leechcodec.train import resolve_amp, resolve_device

    set_threads(args.threads)
    heap_kept = set_heap(args.heap)
    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device)
    data = args.data or str(Path(os.environ.get("LEECHCODEC_DATA", "../shared/data")) / "train")
    crops = {args.crop or CONFIGS[c][1] for c in [*args.configs, *(["default"] if args.batches else [])]}
    images = load_training_images(data, max(crops), 1024, limit=args.max_images)
    record = {"schema": "leechcodec.bench.train", "schema_version": 1, **_device_record(device),
              "settings": {"steps": args.steps, "warmup": args.warmup, "rounds": args.rounds, "amp": amp,
                           "old_amp": args.old_amp, "compile": args.compile, "data": data, "images": len(images),
                           "heap": args.heap, "heap_kept": heap_kept,
                           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")},
              "results": []}
    out = args.out or Path(__file__).resolve().parents[1] / "results" / f"bench_train_{device.type}.json"
    for config in args.configs:
        for family in args.families:
            r = measure(config, family, images, device, args.steps, args.warmup, args.rounds, amp, args.old_amp,
                        args.compile, args.batch, tuple(args.variants), args.crop)
            record["results"].append(r)
            line = ", ".join(f"{v} {d['mpix_per_s']:.3f} Mpix/s ({d['step_ms']:.0f} ms)" for v, d in r["variants"].items())
            keys = ("new_over_old", "quantizer_prior_share", "new_over_old_cpu", "quantizer_prior_share_cpu")
            extra = "".join(f", {k} {r[k]}" for k in keys if k in r)
            print(f"{config} {family} b{r['batch']}×{r['crop']}²: {line}{extra}", flush=True)
    family = Leech24Codec.name  # the default model's
    for batch in args.batches:
        r = measure("default", family, images, device, args.steps, args.warmup, args.rounds, amp, args.old_amp,
                    args.compile, batch, ("new",))
        record.setdefault("batch_sweep", []).append(r)
        print(f"default {family} new b{batch}: {r['variants']['new']['mpix_per_s']:.3f} Mpix/s", flush=True)
    write_record(out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
