"""Benchmark harness: datasets, classic codecs, metrics, RD results, BD-rate, plots.

Public API::

    from leechcodec.bench import get_codec, load_dataset, run_sweep
    report = run_sweep(["jpeg420", "hevc444"], load_dataset("kodak"), "results/kodak")

Command line: ``leechcodec bench`` / ``leechcodec plot`` (or ``python -m leechcodec.bench``).
"""

from leechcodec.bench.bdrate import bd_rate, bd_table
from leechcodec.bench.cli import add_bench_parser, add_plot_parser
from leechcodec.bench.codecs import CLASSIC_SWEEP, Codec, available_codecs, get_codec
from leechcodec.bench.curves import Curve, curve_from_compressai, curve_from_result
from leechcodec.bench.datasets import Dataset, DatasetError, load_dataset
from leechcodec.bench.metrics import ms_ssim_rgb, psnr_rgb
from leechcodec.bench.runner import SweepReport, run_sweep

__all__ = [
    "CLASSIC_SWEEP", "Codec", "Curve", "Dataset", "DatasetError", "SweepReport",
    "add_bench_parser", "add_plot_parser", "available_codecs", "bd_rate", "bd_table",
    "curve_from_compressai", "curve_from_result", "get_codec", "load_dataset", "ms_ssim_rgb",
    "psnr_rgb", "run_sweep",
]
