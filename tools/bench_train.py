#!/usr/bin/env python
"""Train benchmark (see docs/benchmarks.md); the same as `speech bench train` once that is wired."""
import argparse
import sys

from speech.benchmarks import add_train_arguments, run_train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/bench_train.py")
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
