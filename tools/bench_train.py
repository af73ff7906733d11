#!/usr/bin/env python
"""Train benchmark (see docs/benchmarks.md); the same as `speech bench train`."""
import argparse
import sys

from speech.bench.train import add_train_arguments, run_train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/bench_train.py")
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
