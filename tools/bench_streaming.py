#!/usr/bin/env python
"""Streaming benchmark (hit rate, false accepts per hour, latency, compute); same as ``speech bench streaming``."""
import sys

from speech.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "streaming", *sys.argv[1:]]))
