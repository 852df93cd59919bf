"""Benchmark harness: datasets, classic codecs, metrics, RD results, BD-rate, plots."""
