#!/usr/bin/env python
"""Synthesize a labelled command data set offline; same options as ``speech synth`` (see --help)."""
import sys

from speech.synth import main

if __name__ == "__main__":
    sys.exit(main())
