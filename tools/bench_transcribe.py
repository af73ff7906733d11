#!/usr/bin/env python
"""Transcribe benchmark (see docs/benchmarks.md); the same as `speech bench transcribe`."""
import argparse
import sys

from speech.bench.transcribe import add_transcribe_arguments, run_transcribe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/bench_transcribe.py")
    add_transcribe_arguments(parser)
    return run_transcribe(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
