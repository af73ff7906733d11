#!/usr/bin/env python
"""Features benchmark (see docs/benchmarks.md); the same as `speech bench features`."""
import argparse
import sys

from speech.bench.features import add_features_arguments, run_features


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/bench_features.py")
    add_features_arguments(parser)
    return run_features(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
