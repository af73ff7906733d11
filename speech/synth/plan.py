"""What to synthesize: the items (label, text) and one :class:`ClipSpec` per clip.

Each clip's parameters come from a hash, never from a shared random stream, so a run is
reproducible for a seed whatever ``--jobs`` is:

* a *speaker* (variant index ``i`` of an engine) has a voice, a pitch offset and a base speaking
  rate drawn from ``hash(seed, engine, i)``, so ``engine:voice:i`` sounds alike across words and
  speaker-disjoint splits make sense; voices are dealt out so ``--variants N`` covers ``N``
  different voices (up to the number the engine has);
* each clip jitters rate and level (and Piper's sampling noise) from
  ``hash(seed, engine, label, i)``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

SPEECH_COMMANDS_WORDS = (
    "backward bed bird cat dog down eight five follow forward four go happy house learn left marvin nine no "
    "off on one right seven sheila six stop three tree two up visual wow yes zero"
).split()

# Parameter ranges.
# A speaker's pitch offset from the voice's default. Not lower than -2: sox-shifting Piper's low male
# voice down 2-3 semitones cut PocketSphinx's word accuracy on it from ~77 % to ~48 %.
SEMITONE_RANGE = (-2.0, 3.0)
SPEAKER_RATE_RANGE = (0.85, 1.2)  # a speaker's speaking rate (1 = engine default, > 1 faster)
CLIP_RATE_JITTER = (0.92, 1.08)  # per clip, multiplies the speaker's rate
PEAK_DB_RANGE = (-12.0, -1.0)  # peak level of a saved clip, dBFS
PIPER_NOISE_RANGE = (0.45, 0.8)  # Piper's noise_scale (its default is 0.667)


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


def seeded_rng(*keys: object) -> np.random.Generator:
    """A generator seeded from a hash of ``keys``: the same keys give the same numbers in any process."""
    digest = hashlib.sha256(repr(keys).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def speaker_voice(voices: Sequence[str], seed: int, engine: str, variant: int) -> str:
    """The voice of speaker ``variant``: voices are dealt in a seeded order, each once per round."""
    n = len(voices)
    order = seeded_rng(seed, engine, "voice-order", variant // n).permutation(n)
    return voices[int(order[variant % n])]


def clip_spec(voices: Sequence[str], seed: int, engine: str, label: str, text: str, variant: int) -> ClipSpec:
    """The parameters of one clip, from hashes of (seed, engine, variant) and (seed, engine, label, variant)."""
    speaker = seeded_rng(seed, engine, "speaker", variant)
    semitones = float(speaker.uniform(*SEMITONE_RANGE))
    speaker_rate = float(speaker.uniform(*SPEAKER_RATE_RANGE))
    clip = seeded_rng(seed, engine, label, variant)
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
