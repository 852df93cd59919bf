"""Training checkpoints: what is saved, how ranks agree on it, and how it loads back.

A checkpoint holds the model's weights, both optimizers, the AMP scaler, every rank's RNG
states (crop sampler, torch, CUDA) and the sha256 of every rank's weights, which must agree.
It is written to a temporary file and renamed, so a crash never leaves half a checkpoint.
While a run trains, its folder's ``train.lock`` is held (:func:`run_lock`): a second trainer
of the same folder is refused, and an export can tell a finished run from one still writing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist

__all__ = ["state_sha256", "save_checkpoint", "rank_rng", "load_optimizer", "checkpoint", "run_lock", "is_training"]

LOCK_NAME = "train.lock"


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/train.lock`` for the block (released when the
    process ends, however it ends); raises ``ValueError`` if another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{folder} is being trained by another process") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def is_training(folder: Path) -> bool:
    """Whether a process holds ``folder``'s training lock right now."""
    if not (Path(folder) / LOCK_NAME).exists():
        return False
    try:
        with run_lock(folder):
            return False
    except ValueError:
        return True


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and bytes of a state dict (compares the ranks' weights)."""
    h = hashlib.sha256()
    for name, value in state.items():
        h.update(name.encode())
        # reshape(-1): a channels-last 1 × 1 kernel counts as contiguous with a last stride ≠ 1
        h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def rank_rng(state: dict) -> list[dict]:
    """Per-rank RNG states of a checkpoint (single-process checkpoints before DDP kept one)."""
    if "rank_rng" in state:
        return state["rank_rng"]
    return [{"sampler": state["sampler_rng"], "torch": state["torch_rng"], "cuda": None}]


def save_checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_optimizer(opt: torch.optim.Optimizer, state: dict) -> None:
    """Load an optimizer state, its per-parameter tensors in their parameter's memory format
    (a fused Adam needs them alike; checkpoints may come from a run with another layout).
    How the optimizer runs (fused, for-each) stays this run's: ``load_state_dict`` would
    bring back the saving run's choice with its hyperparameters."""
    how = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in opt.param_groups]
    opt.load_state_dict(state)
    for group, kept in zip(opt.param_groups, how):
        group.update(kept)
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if torch.is_tensor(value) and value.shape == p.shape:
                    opt.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def checkpoint(path: Path, model: torch.nn.Module, step_fn, sampler, where: torch.device, is_main: bool,
                **record) -> None:
    """Check that every rank holds the same weights and save the resumable state (rank 0)."""
    weights = model.state_dict()
    mine = ({"sampler": sampler.rng.bit_generator.state, "torch": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state(where) if where.type == "cuda" else None},
            state_sha256(weights))
    ranks = [mine]
    if step_fn.distributed:
        ranks = [None] * step_fn.world
        dist.all_gather_object(ranks, mine)
    hashes = [h for _, h in ranks]
    if len(set(hashes)) > 1:
        raise RuntimeError(f"the ranks' weights differ at step {record['step']} (sha256 {hashes})")
    if is_main:
        save_checkpoint(path, model=weights, opt=step_fn.opt.state_dict(), aux_opt=step_fn.aux_opt.state_dict(),
                        scaler=step_fn.scaler.state_dict(), rank_rng=[r for r, _ in ranks], rank_state_sha256=hashes,
                        **record)
