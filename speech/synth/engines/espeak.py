"""espeak-ng: ``espeak``, its English accents, and ``espeak-accent``, accented English.

Either the ``espeak-ng`` binary (``apt-get install espeak-ng``) or, without it, libespeak-ng from the
PyPI wheel ``espeakng-loader`` through ctypes (:mod:`speech.synth.engines.espeak_library`): the same
calls, voices and phonemes; the binary is used when both are present.

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

from speech.synth.engines import espeak_library
from speech.synth.engines.base import ENGINE_TIMEOUT_SECONDS, Engine, SynthError, first_line, run_engine
from speech.synth.engines.espeak_library import library_missing
from speech.synth.plan import ClipSpec

ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3", "klatt4")
ESPEAK_DEFAULT_SPEED = 175  # words per minute
ESPEAK_ACCENT_LANGUAGES = ("de", "fr-fr", "it", "pt", "sv", "tr", "hi", "nl")
ESPEAK_ACCENT_SUBSTITUTIONS = (("3:", "@r"), ("V", "a"))
ESPEAK_MISSING = "espeak-ng not installed (apt-get install espeak-ng, or pip install espeakng-loader)"


def espeak_binary() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def espeak_missing() -> str | None:
    """Why neither the binary nor the library is usable (one line), or None."""
    return None if espeak_binary() or library_missing() is None else ESPEAK_MISSING


def espeak_phonemes(text: str, voice: str = "en-us", ipa: bool = False, tie: str | None = None) -> str:
    """What ``espeak-ng -q -v VOICE -x TEXT`` prints (phoneme mnemonics, ``"zero"`` -> ``"z'i@roU"``),
    or with ``ipa`` what ``--ipa [--tie=TIE]`` prints (``"zˈi^əɹo^ʊ"``), words space-separated; from
    the binary, else the library. ``[[...]]`` in ``text`` is phoneme input."""
    return _phonemes(espeak_binary(), text, voice, ipa, tie)


@lru_cache(maxsize=4096)
def _phonemes(binary: str | None, text: str, voice: str, ipa: bool, tie: str | None) -> str:
    if binary is None:
        if library_missing():
            raise SynthError(f"espeak:{voice}: {text!r}: {ESPEAK_MISSING}")
        try:
            return " ".join(espeak_library.phonemes(voice, text, ipa, tie).split())
        except RuntimeError as err:
            raise SynthError(f"espeak:{voice}: {text!r}: {err}") from None
    options = (["--ipa"] + ([f"--tie={tie}"] if tie else [])) if ipa else ["-x"]
    proc = subprocess.run([binary, "-v", voice, "-q", *options, text], capture_output=True, text=True, timeout=ENGINE_TIMEOUT_SECONDS)
    if proc.returncode != 0:
        raise SynthError(f"espeak:{voice}: {text!r}: {binary} exited with {proc.returncode}: {first_line(proc.stderr)}")
    return " ".join(proc.stdout.split())


def english_phonemes(text: str) -> str:
    """espeak-ng's en-us phoneme mnemonics of ``text`` (``"zero"`` -> ``"z'i@roU"``), words space-separated."""
    return espeak_phonemes(text, "en-us")


def accent_phonemes(text: str) -> str:
    """The phonemes an ``espeak-accent`` voice is given: English ones with the learners' substitutions."""
    phonemes = english_phonemes(text)
    for english, replacement in ESPEAK_ACCENT_SUBSTITUTIONS:
        phonemes = phonemes.replace(english, replacement)
    return phonemes


def listed_languages(option: str = "--voices") -> set[str]:
    """The Language column of ``espeak-ng --voices`` (or ``--voices=en``: the English ones)."""
    binary = espeak_binary()
    if binary is None:
        languages = {language for language, _ in espeak_library.voice_languages()}
        return languages if option == "--voices" else {language for language in languages if language.split("-")[0] == "en"}
    listing = subprocess.run([binary, option], capture_output=True, text=True).stdout.split("\n")
    return {line.split()[1] for line in listing[1:] if len(line.split()) > 1}


def listed_variants() -> set[str]:
    """The variant file names espeak-ng has (``m1``, ``f2``, ``klatt``, ...)."""
    binary = espeak_binary()
    if binary is None:
        identifiers = [identifier for _, identifier in espeak_library.voice_languages(variants=True)]
    else:
        identifiers = subprocess.run([binary, "--voices=variant"], capture_output=True, text=True).stdout.split()
    return {Path(token).name for token in identifiers if token.startswith("!v/")}


def speak(spec: ClipSpec, text: str, workdir: Path) -> tuple[np.ndarray, int]:
    """``text`` (``[[...]]`` for phonemes) said with the voice, speed and pitch of ``spec``:
    ``(float32 samples, sample rate)``, by the binary (``-w``) or else the library."""
    speed = round(ESPEAK_DEFAULT_SPEED * spec.rate)
    pitch = int(np.clip(round(50 + 8 * spec.semitones), 0, 99))
    binary = espeak_binary()
    if binary:
        out = workdir / "espeak.wav"
        cmd = [binary, "-v", spec.voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), "--stdin"]
        return run_engine(spec, cmd, out, stdin=text)
    where = f"{spec.engine}:{spec.voice}: {spec.text!r}"
    if library_missing():
        raise SynthError(f"{where}: {ESPEAK_MISSING}")
    try:
        audio, rate = espeak_library.synthesize(spec.voice, text, speed, pitch)
    except RuntimeError as err:
        raise SynthError(f"{where}: {err}") from None
    if len(audio) == 0:
        raise SynthError(f"{where}: libespeak-ng gave no audio")
    return audio, rate


class Espeak(Engine):
    """espeak-ng's English accents times its voice variants (``en-gb+f2``, ``en-us+m3``, ``en-029+klatt2``, ...)."""

    name = "espeak"
    no_voices = "espeak-ng lists no English voices"
    languages: ClassVar[tuple[str, ...]] = ESPEAK_ACCENTS
    voices_option: ClassVar[str] = "--voices=en"  # the listing the languages are looked up in

    def missing(self) -> str | None:
        return espeak_missing()

    def voices(self) -> list[str]:
        """``LANG[+variant]`` for each of :attr:`languages` espeak-ng lists, times each of
        :data:`ESPEAK_VARIANTS` it has."""
        listed = listed_languages(self.voices_option)
        variant_files = listed_variants()
        variants = [v for v in ESPEAK_VARIANTS if not v or v in variant_files]
        return [f"{a}+{v}" if v else a for a in self.languages if a in listed for v in variants]

    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        audio, rate = speak(spec, spec.text, workdir)
        return audio, rate, True


class EspeakAccent(Espeak):
    """Accented English: the text's English phonemes spoken by other languages' voices (module docstring)."""

    name = "espeak-accent"
    no_voices = "espeak-ng lists none of its accent languages"
    default = False  # only when named in --engines
    languages = ESPEAK_ACCENT_LANGUAGES
    voices_option = "--voices"

    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        where = f"{spec.engine}:{spec.voice}: {spec.text!r}"
        phonemes = accent_phonemes(spec.text)
        if not phonemes:
            raise SynthError(f"{where}: espeak-ng gave no English phonemes")
        text = "[[" + phonemes + "]]"
        said = espeak_phonemes(text, spec.voice).split()
        given = phonemes.split()
        # a language's table that lacks a phoneme silently drops the rest of the word: refuse such a clip
        if len(said) != len(given) or any(len(a) < 0.75 * len(b) for a, b in zip(said, given)):
            raise SynthError(f"{where}: the voice cannot say [[{phonemes}]] (it said [[{' '.join(said)}]])")
        audio, rate = speak(spec, text, workdir)
        return audio, rate, True
