"""``python -m speech.synth``: the same as ``speech synth``."""
import sys

from speech.synth.cli import main

sys.exit(main())
