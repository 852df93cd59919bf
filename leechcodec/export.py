"""Freeze a training checkpoint into the model zoo: ``python -m leechcodec.export``.

Writes ``<zoo>/<name>-q<quality>.pt`` (config + weights, with the EntropyBottleneck's CDF
tables computed once) and its registry entry: full sha256, λ, training budget and
provenance (the training configuration, steps, crops seen, wall time, data, and the
device, number of processes and mixed-precision mode that the checkpoint records).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

from leechcodec.models import LeechCodecModel, ModelConfig
from leechcodec.zoo import BUILTIN_WEIGHTS_DIR, ZooEntry, export_weights, zoo_dir

__all__ = ["export_checkpoint", "training_device", "pixels_seen", "main"]


def training_device(state: dict) -> str:
    """Where a checkpoint was trained, from its ``segments`` (one per start or resume);
    checkpoints from before they were recorded name this machine's CPU."""
    segments = state.get("segments")
    if not segments:
        return f"CPU ({platform.machine()}), {torch.get_num_threads()} torch threads at export"
    parts: list[str] = []
    for seg in segments:
        part = seg["device"] if seg["world_size"] == 1 else f"{seg['world_size']} processes × {seg['device']}"
        part += "" if seg["amp"] == "off" else f", {seg['amp']} autocast"
        if part not in parts:
            parts.append(part)
    return "; ".join(parts)


def pixels_seen(state: dict) -> int:
    """Pixels of training crops a checkpoint saw (recorded since runs could change their crop
    size; before that, crops seen times the crop²)."""
    return state.get("pixels_seen", state["crops_seen"] * state["train_config"]["crop"] ** 2)


def export_checkpoint(checkpoint: Path, name: str, quality: int, out_dir: Path, command: str | None = None,
                      data_note: str | None = None) -> ZooEntry:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = ModelConfig(**state["model_config"])
    model = LeechCodecModel(cfg)
    model.load_state_dict(state["model"])
    model.eval()
    tc = state["train_config"]
    budget = {"steps": state["step"], "batch": tc["batch"], "crop": tc["crop"], "crops_seen": state["crops_seen"],
              "pixels_seen": pixels_seen(state), "wall_s": round(state["elapsed_s"], 1),
              "device": training_device(state), "world_size": state.get("world_size", 1)}
    provenance = {"train_config": tc, "command": command, "data": data_note or tc["data"],
                  "torch": torch.__version__, "python": platform.python_version()}
    if len(state.get("segments") or ()) > 1:  # resumed: each start's device, crops, λ and schedule
        provenance["segments"] = state["segments"]
    return export_weights(model, out_dir, name, quality, cfg.quantizer, tc["lmbda"], budget, provenance)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.export", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--quality", type=int, required=True)
    p.add_argument("--zoo", type=Path, default=None, help=f"zoo folder (default: $LEECHCODEC_ZOO or {BUILTIN_WEIGHTS_DIR})")
    p.add_argument("--command", default=None, help="the exact training command, recorded in the registry")
    p.add_argument("--data-note", default=None, help="what the training data was")
    args = p.parse_args(argv)
    entry = export_checkpoint(args.checkpoint, args.name, args.quality, args.zoo or zoo_dir(), args.command, args.data_note)
    print(f"{entry.key}: {(args.zoo or zoo_dir()) / entry.file} sha256 {entry.sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
