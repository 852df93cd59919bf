"""Training tooling: the commands that train, carry and report the model zoo.

- :mod:`~leechcodec.bench.training.zoo_recipe`: the zoo's training recipe and budget; trains
  every (family, quality) run and exports the finished ones into the registry;
- :mod:`~leechcodec.bench.training.gpu_session`: one prepared training session on a lent CUDA
  device with a hard deadline;
- :mod:`~leechcodec.bench.training.relay`: one training run carried across short windows on
  different machines;
- :mod:`~leechcodec.bench.training.zoo_report`: the zoo's RD points and BD-rates against the
  harness's anchors;
- :mod:`~leechcodec.bench.training.device_tree`: fits the working tree under a device
  machine's transfer limit (the zoo's weights aside for a training window, and back).

Each runs as ``python -m leechcodec.bench.training.<module>``.
"""
