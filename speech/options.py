"""Command-line options that several verbs share (``--engine``, ``--threads``). Imports nothing heavy, so
a verb's ``--help`` stays fast."""
from __future__ import annotations

import argparse


def add_engine_argument(parser: argparse.ArgumentParser, default: str = "torch") -> None:
    parser.add_argument("--engine", choices=("auto", "torch", "onnx"), default=default,
                        help="run the model in PyTorch or onnxruntime (exported in memory at start, about 1 s; "
                             f"then about half the compute); auto: onnx where onnxruntime is installed (default: {default})")


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="threads for the model on the CPU (torch, or onnxruntime with --engine onnx; default: 1: the small GRU batches run "
                             "fastest on one thread, and more threads stall when the cores are busy)")
