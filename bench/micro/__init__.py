"""Micro-benchmarks: each module times one part of the codec and writes a JSON record.

- :mod:`~leechcodec.bench.micro.bench_search`: the Λ24 structured search against brute force
  (``--torch``: the torch search against the numba kernel);
- :mod:`~leechcodec.bench.micro.bench_prior`: exact prior tables for coding (``--torch``: the
  training step's prior);
- :mod:`~leechcodec.bench.micro.bench_codec`: the codec targets (encode/decode time, large
  images, crafted inputs);
- :mod:`~leechcodec.bench.micro.bench_train`: training steps per second per family;
- :mod:`~leechcodec.bench.micro.bench_startup`: wall time of the CLI as a user meets it;
- :mod:`~leechcodec.bench.micro.portability`: files decode identically under other thread
  counts, backends and devices.
- :mod:`~leechcodec.bench.micro.bench_weights`: what float16 weights cost in bpp and PSNR.

Each runs as ``python -m leechcodec.bench.micro.<module>``; records go to ``bench/results/``.
"""
