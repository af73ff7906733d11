#!/usr/bin/env python
"""Recognize commands from the microphone (or --input-file); same options as ``speech listen`` (see --help)."""
import sys

from speech.cli import main

if __name__ == "__main__":
    sys.exit(main(["listen", *sys.argv[1:]]))
