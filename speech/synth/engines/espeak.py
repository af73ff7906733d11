"""espeak-ng (``apt-get install espeak-ng``): ``espeak``, its English accents, and ``espeak-accent``,
accented English.

``espeak-accent`` speaks English phonemes (espeak-ng's en-us transcription of the text) with another
language's voice, whose phoneme table realizes them its own way (German uvular r and final devoicing,
French vowels...): English with a foreign accent rather than foreign spelling rules ("five" read by
German rules is "fiːvə"). Its languages are those whose tables keep every English phoneme once STRUT (V)
and NURSE (3:) are replaced by a and @r, the substitutions learners make; a rendering that still drops a
sound is refused (SynthError). Both engines set rate by ``-s`` and pitch by ``-p``.
"""
from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from speech.synth.engines.base import ENGINE_TIMEOUT_SECONDS, Engine, SynthError, first_line, run_engine
from speech.synth.plan import ClipSpec

ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3", "klatt4")
ESPEAK_DEFAULT_SPEED = 175  # words per minute
ESPEAK_ACCENT_LANGUAGES = ("de", "fr-fr", "it", "pt", "sv", "tr", "hi", "nl")
ESPEAK_ACCENT_SUBSTITUTIONS = (("3:", "@r"), ("V", "a"))


def espeak_binary() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


@lru_cache(maxsize=1024)
def english_phonemes(text: str) -> str:
    """espeak-ng's en-us phoneme mnemonics of ``text`` (``"zero"`` -> ``"z'i@roU"``), words space-separated."""
    proc = subprocess.run([espeak_binary() or "espeak-ng", "-v", "en-us", "-q", "-x", text], capture_output=True,
                          text=True, timeout=ENGINE_TIMEOUT_SECONDS)
    return " ".join(proc.stdout.split())


def accent_phonemes(text: str) -> str:
    """The phonemes an ``espeak-accent`` voice is given: English ones with the learners' substitutions."""
    phonemes = english_phonemes(text)
    for english, replacement in ESPEAK_ACCENT_SUBSTITUTIONS:
        phonemes = phonemes.replace(english, replacement)
    return phonemes


class Espeak(Engine):
    """espeak-ng's English accents times its voice variants (``en-gb+f2``, ``en-us+m3``, ``en-029+klatt2``, ...)."""

    name = "espeak"
    no_voices = "espeak-ng lists no English voices"
    languages: ClassVar[tuple[str, ...]] = ESPEAK_ACCENTS
    voices_option: ClassVar[str] = "--voices=en"  # the listing the languages are looked up in

    def missing(self) -> str | None:
        return None if espeak_binary() else "espeak-ng not installed (apt-get install espeak-ng)"

    def voices(self) -> list[str]:
        """``LANG[+variant]`` for each of :attr:`languages` espeak-ng lists, times each of
        :data:`ESPEAK_VARIANTS` it has."""
        binary = espeak_binary()
        listing = subprocess.run([binary, self.voices_option], capture_output=True, text=True).stdout.split("\n")
        listed = {line.split()[1] for line in listing[1:] if len(line.split()) > 1}
        variants_listing = subprocess.run([binary, "--voices=variant"], capture_output=True, text=True).stdout
        variant_files = {Path(tok).name for tok in variants_listing.split() if tok.startswith("!v/")}
        variants = [v for v in ESPEAK_VARIANTS if not v or v in variant_files]
        return [f"{a}+{v}" if v else a for a in self.languages if a in listed for v in variants]

    @staticmethod
    def voice_command(spec: ClipSpec) -> list[str]:
        """espeak-ng with the voice, speed and pitch of ``spec`` (the text and output still to add)."""
        speed = round(ESPEAK_DEFAULT_SPEED * spec.rate)
        pitch = int(np.clip(round(50 + 8 * spec.semitones), 0, 99))
        return [espeak_binary() or "espeak-ng", "-v", spec.voice, "-s", str(speed), "-p", str(pitch)]

    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        out = workdir / "espeak.wav"
        audio, rate = run_engine(spec, self.voice_command(spec) + ["-w", str(out), "--stdin"], out, stdin=spec.text)
        return audio, rate, True


class EspeakAccent(Espeak):
    """Accented English: the text's English phonemes spoken by other languages' voices (module docstring)."""

    name = "espeak-accent"
    no_voices = "espeak-ng lists none of its accent languages"
    default = False  # only when named in --engines
    languages = ESPEAK_ACCENT_LANGUAGES
    voices_option = "--voices"

    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        out = workdir / "espeak.wav"
        where = f"{spec.engine}:{spec.voice}: {spec.text!r}"
        phonemes = accent_phonemes(spec.text)
        if not phonemes:
            raise SynthError(f"{where}: espeak-ng gave no English phonemes")
        voice = self.voice_command(spec)
        text = "[[" + phonemes + "]]"
        probe = subprocess.run(voice + ["-q", "-x", text], capture_output=True, text=True, timeout=ENGINE_TIMEOUT_SECONDS)
        if probe.returncode != 0:
            raise SynthError(f"{where}: {voice[0]} exited with {probe.returncode}: {first_line(probe.stderr)}")
        said = probe.stdout.split()
        given = phonemes.split()
        # a language's table that lacks a phoneme silently drops the rest of the word: refuse such a clip
        if len(said) != len(given) or any(len(a) < 0.75 * len(b) for a, b in zip(said, given)):
            raise SynthError(f"{where}: the voice cannot say [[{phonemes}]] (it said [[{' '.join(said)}]])")
        audio, rate = run_engine(spec, voice + ["-w", str(out), text], out)
        return audio, rate, True
