"""Synthesized training data (``speech synth``): labelled command clips and noise from offline
text-to-speech engines (flite, festival, espeak-ng, espeak-accent, Piper, Kokoro).

Inside: ``plan`` (items and each clip's parameters, from hashes), ``engines/`` (one module per engine
behind one :class:`~speech.synth.engines.base.Engine` interface, and the ``ENGINES`` registry),
``postprocess`` (resample, trim, filter, level, centre), ``runner`` (the resumable parallel run and
its progress bar), ``noise`` (white, pink, brown, hum, babble) and ``cli`` (``speech synth``).
The names below are the package's face; the rest is imported from its module.
"""
from speech.synth.cli import add_arguments, main, run
from speech.synth.engines import DEFAULT_ENGINES, ENGINES, SynthError, available_voices, render
from speech.synth.noise import NOISE_KINDS, make_noise, write_noise
from speech.synth.plan import SPEECH_COMMANDS_WORDS, ClipSpec, items_from_phrases, items_from_words
from speech.synth.postprocess import ClipSettings
from speech.synth.runner import SynthSummary, synthesize

__all__ = [
    "synthesize", "SynthSummary", "ClipSettings", "ClipSpec", "SynthError",
    "items_from_words", "items_from_phrases", "SPEECH_COMMANDS_WORDS",
    "ENGINES", "DEFAULT_ENGINES", "available_voices", "render",
    "make_noise", "write_noise", "NOISE_KINDS",
    "add_arguments", "run", "main",
]
