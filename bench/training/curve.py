"""A run's training curve: real files on Kodak (or any image folder) against pixels seen.

``add`` codes every image of ``--data-dir`` with a checkpoint of a run (a ``checkpoint.pt``, or
a relay window's folder of checkpoint parts) through the real encoder and decoder, and adds
one point to the run's curve file: the step, the crops and pixels seen, the training step
time and device, the mean whole-file bpp, PSNR and MS-SSIM, and PSNR against JPEG 4:2:0
WebP and HEVC 4:4:4 at the same bpp when their harness result files (on the same images) are given. A point at the same step
replaces the old one. ``against`` sets the points against other result curves (a zoo family, say)
without coding anything again. ``plot`` draws bpp, PSNR and PSNR minus JPEG's against Gpixel seen, one line per curve file::

    python -m leechcodec.bench.training.curve add runs/flagship/leg-001 --data-dir ../shared/data/kodak \\
        --out bench/results/training/flagship/curve.json --refs bench/results/kodak
    python -m leechcodec.bench.training.curve plot bench/results/training/flagship/curve{,-lmbda0.004,-lmbda0.002}.json \\
        -o bench/results/training/flagship/curve.png

The training loop's own validation (``leechcodec train --val-dir``) reports the model's
estimated rate on a few images; this is what a user of that checkpoint would get.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["REFS", "load_state", "model_of", "float_code", "measure", "estimate", "add_point", "plot_curve",
           "plot_title", "main"]


def load_state(source: Path) -> dict:
    """A checkpoint's state: a ``checkpoint.pt``, or a relay window's folder of checkpoint parts."""
    import torch

    if source.is_dir():
        from leechcodec.bench.training.relay import load_checkpoint

        return load_checkpoint(source)[1]
    return torch.load(source, map_location="cpu", weights_only=False)


def model_of(state: dict):
    """A checkpoint's model (``model_config`` and ``model`` of its state), in eval mode."""
    from leechcodec.models import LeechCodecModel, ModelConfig

    model = LeechCodecModel(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def _means(state: dict, images: list[Path], progress, code) -> dict:
    """Mean bpp, PSNR (dB) and MS-SSIM over ``images`` of ``code(model, rgb) -> (bpp, image)``
    with ``state``'s model."""
    from leechcodec.bench.metrics import ms_ssim_rgb, psnr_rgb
    from leechcodec.bench.runner import load_rgb

    model = model_of(state)
    bpp, psnr, msssim = [], [], []
    for path in images:
        rgb = load_rgb(path)
        rate, out = code(model, rgb)
        bpp.append(rate)
        psnr.append(psnr_rgb(rgb, out))
        msssim.append(ms_ssim_rgb(rgb, out))
        if progress is not None:
            progress.update(1)
    return {"bpp": float(np.mean(bpp)), "psnr": float(np.mean(psnr)),
            "ms_ssim": float(np.mean(msssim)) if None not in msssim else None}


def measure(state: dict, images: list[Path], progress=None) -> dict:
    """Mean whole-file bpp, PSNR (dB) and MS-SSIM of ``state``'s model over ``images``."""
    from leechcodec import api

    def real(model, rgb):
        data = api.compress(rgb, model, name="curve", lmbda=state["train_config"]["lmbda"])
        return 8 * len(data) / (rgb.shape[0] * rgb.shape[1]), api.decompress(data, model)

    return _means(state, images, progress, real)


def float_code(model, rgb: np.ndarray) -> tuple[float, np.ndarray]:
    """``(bpp, image)`` of the float model on ``rgb`` (uint8 ``(H, W, 3)``): the rate its prior
    estimates (tokens under the exact prior, ẑ under the factorized density) and its
    reconstruction rounded to 8 bits."""
    import torch

    from leechcodec.models import pad_to_multiple

    h, w = rgb.shape[:2]
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255  # a writable copy
    with torch.no_grad():
        out = model(pad_to_multiple(x, model.stride))
    x_hat = out.x_hat[0, :, :h, :w].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return float(out.token_bits.sum() + out.hyper_bits.sum()) / (h * w), x_hat


def estimate(state: dict, images: list[Path], progress=None) -> dict:
    """The same means as :func:`measure` from the float model instead of real files
    (:func:`float_code`): what training's validation reports, without the coder. Real files
    differ from these by the coder's tables, the integer prior and the container (``add`` and
    ``add --estimate`` of one checkpoint measure by how much)."""
    return _means(state, images, progress, float_code)


#: The reference codecs a point is compared with by default (harness result files in ``--refs``).
REFS = ("jpeg420", "webp", "hevc444")


def _against(point: dict, refs: Path | None, images: list[str], names: tuple[str, ...] = REFS) -> dict:
    """PSNR minus each reference curve's, interpolated in log(bpp), at the point's bpp; only
    for references measured on exactly the same images."""
    from leechcodec.bench.curves import curve_from_result
    from leechcodec.bench.results import load_result
    from leechcodec.bench.sanity import metric_at

    out = {}
    for name in names:
        path = refs / f"{name}.json" if refs else None
        if path is None or not path.exists() or load_result(path)["dataset"]["images"] != images:
            continue
        at = metric_at(curve_from_result(path), point["bpp"])
        if at is not None:
            out[name] = round(point["psnr"] - at, 3)
    return out


def add_point(source: Path, data_dir: Path, out: Path, refs: Path | None = None, images: int | None = None,
              label: str | None = None, estimated: bool = False) -> dict:
    """Measure ``source`` (a checkpoint or a relay folder) and add its point to ``out``; ``label``
    names the curve in plots (default: its λ). ``estimated``: the float model's estimate
    (:func:`estimate`) instead of real files; a curve file holds one kind of point only."""
    from leechcodec.bench.datasets import list_images
    from leechcodec.export import pixels_seen, training_device
    from leechcodec.fileio import atomic_write_bytes
    from leechcodec.traincheckpoint import state_sha256
    from tqdm import tqdm

    state = load_state(source)
    paths = list_images(data_dir)[:images]
    if not paths:
        raise ValueError(f"no images in {data_dir}")
    tc = state["train_config"]
    t0 = time.perf_counter()
    with tqdm(total=len(paths), desc=f"step {state['step']}", unit="img", disable=None) as progress:
        metrics = (estimate if estimated else measure)(state, paths, progress)
    point = {"step": state["step"], "crops_seen": state["crops_seen"],
             "pixels_seen": pixels_seen(state), "train_s": round(state["elapsed_s"], 1),
             "device": training_device(state), "weights_sha256": state_sha256(state["model"]),
             **{k: (round(v, 5) if v is not None else None) for k, v in metrics.items()},
             "eval_s": round(time.perf_counter() - t0, 1)}
    point["psnr_minus"] = _against(point, refs, [p.name for p in paths])
    record = json.loads(out.read_text()) if out.exists() else {
        "model_config": state["model_config"], "lmbda": tc["lmbda"], "batch": tc["batch"], "crop": tc["crop"],
        "steps_target": tc["steps"], "images": [p.name for p in paths], "data_dir": str(data_dir),
        **({"estimated": True} if estimated else {}), "points": []}
    if record.get("estimated", False) != estimated:
        raise ValueError(f"{out} holds {'estimated' if record.get('estimated') else 'real-file'} points; "
                         f"this one is {'estimated' if estimated else 'from real files'}: use another curve file")
    if record["model_config"] != state["model_config"]:
        raise ValueError(f"{out} is the curve of another model ({record['model_config']})")
    if record["images"] != [p.name for p in paths]:
        raise ValueError(f"{out} was measured on other images ({len(record['images'])}: {record['images'][:3]}…)")
    if label is not None:
        record["label"] = label
    record["points"] = sorted([p for p in record["points"] if p["step"] != point["step"]] + [point],
                              key=lambda p: p["step"])
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(record, indent=1) + "\n").encode())
    return point


def plot_title(records: list[dict]) -> str:
    """The figure's title: every model configuration drawn (in order, once each), what kind of
    points, and the images."""
    models = []
    for r in records:
        cfg = r["model_config"]
        text = f"{cfg['quantizer']}, {cfg['channels']} channels, k = {cfg['tokens']}"
        if text not in models:
            models.append(text)
    kinds = {r.get("estimated", False) for r in records}
    kind = "real files" if kinds == {False} else "estimated (dashed)" if kinds == {True} else "real files, estimated dashed"
    return (f"{'; '.join(models)}: {kind}, "
            f"{len(records[0]['images'])} images of {Path(records[0]['data_dir']).name}")


def plot_curve(curves: Path | list[Path], out: Path) -> None:
    """bpp, PSNR and PSNR minus optimized JPEG at the same bpp of every point against Gpixel
    seen, side by side; one line per curve file (a run and its branches at other λ)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(c.read_text()) for c in ([curves] if isinstance(curves, Path) else curves)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = ((axes[0], lambda p: p["bpp"], "bits per pixel (whole file)"),
              (axes[1], lambda p: p["psnr"], "PSNR (RGB) [dB]"),
              (axes[2], lambda p: p.get("psnr_minus", {}).get("jpeg420"), "PSNR − optimized JPEG 4:2:0 [dB]"))
    for record in records:
        pts = sorted(record["points"], key=lambda p: p["pixels_seen"])
        for ax, value, label in panels:
            xy = [(p["pixels_seen"] / 1e9, value(p)) for p in pts if value(p) is not None]
            if xy:
                name = record.get("label") or f"λ = {record['lmbda']}"
                est = record.get("estimated", False)
                ax.plot(*zip(*xy), "o--" if est else "o-", label=f"{name} (estimated)" if est else name)
    for ax, _, label in panels:
        ax.set_xlabel("Gpixel of training crops seen")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[2].axhline(0.0, color="0.4", lw=0.8)
    handles, labels = axes[1].get_legend_handles_labels()  # below the panels: the curves fill them
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(plot_title(records))
    rows = -(-len(labels) // 3)
    fig.set_size_inches(14, 3.8 + 0.22 * rows)
    fig.tight_layout(rect=(0, 0.06 * rows, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leechcodec.bench.training.curve", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("add", help="measure a checkpoint and add its point")
    a.add_argument("source", type=Path, help="a checkpoint.pt, or a relay window's folder")
    a.add_argument("--data-dir", type=Path, required=True, help="the images (e.g. ../shared/data/kodak)")
    a.add_argument("--out", type=Path, required=True, help="the curve file (JSON)")
    a.add_argument("--refs", type=Path, default=None, help="folder of harness results (jpeg420.json, webp.json, …)")
    a.add_argument("--images", type=int, default=None, help="the first N images only")
    a.add_argument("--label", default=None, help="the curve's name in plots (default: λ = its λ)")
    a.add_argument("--estimate", action="store_true",
                   help="the float model's estimated rate and its reconstruction instead of real files "
                        "(what training's validation reports; a curve file holds one kind)")
    c = sub.add_parser("against", help="PSNR of every point minus other result curves' at the same bpp")
    c.add_argument("curve", type=Path)
    c.add_argument("--refs", type=Path, required=True, help="folder of harness results")
    c.add_argument("--names", required=True, help="comma-separated result names, e.g. leech24gs,scalar")
    q = sub.add_parser("plot", help="draw curve files (a run and its branches) in one figure")
    q.add_argument("curve", type=Path, nargs="+")
    q.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        if args.cmd == "add":
            pt = add_point(args.source, args.data_dir, args.out, args.refs, args.images, args.label, args.estimate)
            vs = ", ".join(f"{v:+.2f} dB vs {k}" for k, v in pt["psnr_minus"].items())
            print(f"step {pt['step']}: {pt['pixels_seen'] / 1e9:.2f} Gpixel, {pt['bpp']:.4f} bpp, "
                  f"{pt['psnr']:.2f} dB{'; ' + vs if vs else ''} -> {args.out}")
        elif args.cmd == "against":
            record = json.loads(args.curve.read_text())
            for pt in record["points"]:
                vs = _against(pt, args.refs, record["images"], tuple(args.names.split(",")))
                print(f"step {pt['step']}: {pt['bpp']:.4f} bpp, {pt['psnr']:.2f} dB; "
                      + (", ".join(f"{v:+.2f} dB vs {k}" for k, v in vs.items()) or "no reference covers its bpp"))
        else:
            plot_curve(args.curve, args.out)
            print(f"wrote {args.out}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"curve {args.cmd}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
