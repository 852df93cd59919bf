"""The training step: one optimizer step of λ·255²·MSE + bpp, and how it runs on a device.

:class:`TrainStep` owns the optimizers, the grad scaler and the running sums of the logged
numbers. Per step it draws a batch, runs the model (transforms under autocast, quantizer,
EntropyBottleneck and prior in float32), steps the main optimizer (gradients clipped to norm
1) and the EntropyBottleneck's aux optimizer, and adds loss, bpp, MSE and aux loss to sums
that stay on the device. Nothing in a step reads a value back to the host: the loop takes
the sums (:meth:`TrainStep.take_stats`, one synchronization) only when it logs.

:class:`StepOptions` says how the step runs. The defaults per device (:func:`step_options`):

=================  =====================================  ==============================
option             CUDA                                   CPU
=================  =====================================  ==============================
batches            :class:`DeviceCropSampler` (uint8 set  the same, on the host
                   on the GPU, crops cut there)
EntropyBottleneck  sync-free ``forward``                  the same
channels_last      weights and activations NHWC           off (inputs are NHWC-strided
                                                          as they always were)
Adam               ``fused=True``                         plain (one tensor at a time)
torch.compile      g_a, g_s, h_a, h_s (probe, fallback)   off
=================  =====================================  ==============================

On CPU the new step computes exactly what the old one did (tested: bit-identical weights).
Fused Adam can be asked for on the CPU too (``--fused-adam on``): the 128-channel model's step
1.07× faster there (``bench_train``'s ``new_bf16_nhwc_fused``), but not bit-identical to it (last-bit
differences), so the CPU default stays plain and the recorded commands train as they did.
Gradient clipping takes the for-each norm everywhere: on the CPU it gives the same bits as
the per-tensor one (tested), with fewer Python-level calls.
``legacy=True`` is the old step, kept to measure it side by side
(:mod:`leechcodec.bench.micro.bench_train`): crops cut on the host and copied from pageable memory,
CompressAI's EntropyBottleneck ``forward`` (12 device-to-host copies), the logged numbers
read back every step, none of the options above.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist

from leechcodec.models import LeechCodecModel

__all__ = ["AMP_DTYPES", "StepOptions", "step_options", "TrainStep", "compile_transforms", "eager"]

log = logging.getLogger("leechcodec.train")

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: The submodules ``torch.compile`` compiles: the transforms (fixed shapes while training).
COMPILED = ("g_a", "g_s", "h_a", "h_s")
#: The logged sums, in this order.
STATS = ("loss", "bpp", "mse", "aux")


@dataclass(frozen=True)
class StepOptions:
    legacy: bool = False  # the old step (module docstring)
    channels_last: bool = False  # model weights (and so activations) in NHWC
    fused: bool = False  # fused Adam (CUDA by default; --fused-adam on elsewhere)
    compile: bool = False  # torch.compile the transforms

    def describe(self) -> str:
        if self.legacy:
            return "legacy"
        on = [name for name in ("channels_last", "fused", "compile") if getattr(self, name)]
        return "+".join(["device-resident", *on])


def _switch(value: str, flag: str) -> bool | None:
    if value not in ("auto", "on", "off"):
        raise ValueError(f"unknown {flag} {value!r}; use auto, on or off")
    return None if value == "auto" else value == "on"


def step_options(device: torch.device, legacy: bool = False, channels_last: str = "auto",
                 compile: str = "auto", fused: str = "auto") -> StepOptions:
    """The step's options for ``device``: ``auto`` turns channels_last, fused Adam and
    torch.compile on for CUDA and off for the CPU; ``legacy`` turns everything off."""
    cuda = device.type == "cuda"
    cl, co = _switch(channels_last, "--channels-last"), _switch(compile, "--compile")
    fu = _switch(fused, "--fused-adam")
    if legacy:
        if cl or co or fu:
            raise ValueError("--legacy-step is the old step: it takes no --channels-last, --compile or --fused-adam")
        return StepOptions(legacy=True)
    return StepOptions(channels_last=cuda if cl is None else cl, fused=cuda if fu is None else fu,
                       compile=cuda if co is None else co)


@contextmanager
def eager():
    """Run compiled modules eagerly inside (validation sees new shapes; no recompiles)."""
    stance = getattr(torch.compiler, "set_stance", None)
    with stance("force_eager") if stance else nullcontext():
        yield


def compile_transforms(model: LeechCodecModel, probe) -> bool:
    """``torch.compile`` the transforms in place (state-dict keys unchanged), then call
    ``probe()`` (one forward and backward) to compile them. If that fails, undo the
    compilation, log why and return False: training goes on eagerly."""
    for name in COMPILED:
        getattr(model, name).compile(dynamic=False)
    try:
        probe()
        return True
    except Exception as exc:  # noqa: BLE001 — any compiler failure falls back to eager
        for name in COMPILED:
            getattr(model, name)._compiled_call_impl = None
        torch._dynamo.reset()
        log.warning("torch.compile failed (%s: %s); training without it", type(exc).__name__, str(exc)[:200])
        return False


class TrainStep:
    """One training step of ``model`` (``net``: the model or its DDP wrapper) on ``sampler``'s
    batches; see the module docstring."""

    def __init__(self, model: LeechCodecModel, net: torch.nn.Module, sampler, batch: int, lmbda: float,
                 lr: float, device: torch.device, amp: str, options: StepOptions, world: int = 1,
                 lr_scales: dict[str, float] | None = None) -> None:
        self.model, self.net, self.sampler, self.batch, self.lmbda = model, net, sampler, batch, lmbda
        self.device, self.options, self.world = device, options, world
        self.distributed = world > 1
        aux_names = {n for n, _ in model.named_parameters() if n.endswith(".quantiles")}
        self.aux_params = [p for n, p in model.named_parameters() if n in aux_names]
        self.main_params = [p for n, p in model.named_parameters() if n not in aux_names]
        fused = {"fused": True} if options.fused else {}
        # lr_scales: parameters whose names start with a prefix train at that multiple of lr
        scales = lr_scales or {}
        groups: dict[float, list] = {}
        for n, p in model.named_parameters():
            if n not in aux_names:
                groups.setdefault(next((v for k, v in scales.items() if n.startswith(k)), 1.0), []).append(p)
        self.opt = torch.optim.Adam([{"params": ps, "lr": lr * f, "lr_scale": f} for f, ps in groups.items()],
                                    lr=lr, **fused)
        self.aux_opt = torch.optim.Adam(self.aux_params, lr=1e-3, **fused)
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
        self.autocast = torch.autocast(device.type, dtype=AMP_DTYPES[amp]) if amp != "off" else nullcontext()
        model.entropy_bottleneck.sync_free = not options.legacy
        if options.channels_last:
            model.to(memory_format=torch.channels_last)
        self._sums = torch.zeros(len(STATS), dtype=torch.float64, device=device)
        self.pending = 0  # steps in the sums

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr * group["lr_scale"]

    def __call__(self, quant_mix: float = 1.0) -> None:
        """One optimizer step; its loss, bpp, MSE and aux loss are added to the device sums."""
        x = self.sampler.batch(self.batch)
        if self.options.legacy:
            x = x.to(self.device, non_blocking=True)
        with self.autocast:
            out = self.net(x, quant_mix=quant_mix)
        npix = x.shape[0] * x.shape[2] * x.shape[3]
        bpp = (out.token_bits.sum() + out.hyper_bits.sum()) / npix
        mse = torch.mean((out.x_hat.float() - x) ** 2)
        loss = self.lmbda * 255**2 * mse + bpp
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.main_params, 1.0, foreach=True)  # CPU: the same bits, faster
        self.scaler.step(self.opt)
        self.scaler.update()
        aux_loss = self.model.entropy_bottleneck.loss()
        self.aux_opt.zero_grad(set_to_none=True)
        aux_loss.backward()
        if self.distributed:
            for p in self.aux_params:
                dist.all_reduce(p.grad)
                p.grad /= self.world
        self.aux_opt.step()
        self._sums += torch.stack([loss.detach(), bpp.detach(), mse.detach(), aux_loss.detach()]).double()
        self.pending += 1
        if self.options.legacy:  # the old step read its numbers back at once
            self._sums.tolist()

    def take_stats(self, extra: list[float] | None = None) -> tuple[dict[str, float], list[float]]:
        """Means of the logged numbers over the steps since the last call (over all ranks),
        and ``extra`` summed over the ranks; one host synchronization. Resets the sums."""
        extra = extra or []
        sums = torch.cat([self._sums / max(1, self.pending), torch.tensor(extra, dtype=torch.float64).to(self.device)])
        if self.distributed:
            dist.all_reduce(sums)
            sums[: len(STATS)] /= self.world
        values = sums.tolist()
        self._sums.zero_()
        self.pending = 0
        return dict(zip(STATS, values[: len(STATS)])), values[len(STATS):]
