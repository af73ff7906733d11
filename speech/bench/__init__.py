"""Benchmarks behind ``speech bench``, each against a reference measured in the same run.

- :mod:`speech.bench.measure`: machine, threads, interleaved timing, paired ratios, memory, tables, data files
- :mod:`speech.bench.features`, :mod:`~speech.bench.train` (with :mod:`~speech.bench.train_memory`),
  :mod:`~speech.bench.transcribe`, :mod:`~speech.bench.streaming`, :mod:`~speech.bench.detection` (DET curves
  of the live path; its streams' speakers and clips in :mod:`~speech.bench.detection_data`): one benchmark each, with its
  ``add_<name>_arguments`` / ``run_<name>`` (the subcommand) and a function returning its result dict
- :mod:`speech.bench.worker`: ``python -m speech.bench.worker NAME '<json>'``, work in its own process
- :mod:`speech.bench.cli`: the ``speech bench`` dispatcher; its ``add_arguments`` and ``run`` are this package's face
"""
from speech.bench.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
