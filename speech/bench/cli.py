"""``speech bench SUBCOMMAND``: benchmarks, one module per subcommand.

Each subcommand ``NAME`` is the module ``speech.bench.NAME``, with ``add_NAME_arguments(parser)`` (its
options) and ``run_NAME(args) -> int`` (exit status 0, or 2 for a usage problem). Every module imports only
the standard library at load time and the rest inside its functions, so ``speech bench --help`` stays fast.

- ``features``, ``train``, ``transcribe``: see docs/benchmarks.md.
- ``streaming``: the live pipeline on a long stream of background noise with command words inserted at
  known times (several SNRs), noise alone and other words alone: hit rate, false accepts per hour,
  latency after the word's end, compute per hop (one thread). See docs/live.md.
- ``detection``: the live pipeline on streams of unseen speakers' commands among real (and synthesized)
  non-command speech, a DEV and a TEST half of the speakers: a DET curve (miss rate against false
  accepts per hour of other speech) from one model run per stream and a threshold sweep; CTC models
  (``detection_ctc``): the voice-activity gate, the grammar and a sweep of the rejection. See docs/live.md.
"""
from __future__ import annotations

import argparse
import importlib

# name -> one-line help
SUBCOMMANDS = {
    "features": "our batched front end vs librosa.feature.mfcc one clip at a time: clips/s, x real time",
    "train": "training throughput and peak memory vs a plain per-item DataLoader loop (CPU, and GPU when present)",
    "transcribe": "speech transcribe vs PocketSphinx on 1 s clips: throughput and accuracy",
    "streaming": "live pipeline on noise with inserted commands: hit rate, false accepts/hour, latency, compute",
    "detection": "live pipeline on commands among other speech, unseen speakers: DET curve (misses vs false accepts/hour); classifiers and CTC models",
    "whisper": "the commands model vs Whisper base (offline) on the same command clips: accuracy, clips/s, memory",
}


def _entry(name: str, kind: str):
    """``speech.bench.<name>.add_<name>_arguments`` (``kind`` ``add``) or ``run_<name>`` (``run``)."""
    module = importlib.import_module(f"speech.bench.{name}")
    return getattr(module, f"add_{name}_arguments" if kind == "add" else f"run_{name}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, help_ in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        _entry(name, "add")(p)
        p.set_defaults(bench_run=_entry(name, "run"))


def run(args: argparse.Namespace) -> int:
    return args.bench_run(args)
