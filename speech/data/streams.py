"""Long streams of speech in background noise, built from clips: what a live recognizer hears.

:func:`build_stream` places clips (commands and other speech) one after another with random pauses in a
noise track made of real noise recordings, each word at a given SNR over the noise under it, and returns
the audio with the list of :class:`StreamEvent` (where each spoken part lies, its word, whether it is a
command, speaker and source). It is a plain function of the clips, the noise and the seed: the same
inputs give the same stream. The detection benchmark (``speech bench detection``) scores a live
recognizer on such streams; the events are what training windows are cut and labelled by.

Pieces: :func:`active_span` (the spoken part of a clip), :func:`noise_track` (random stretches of noise
recordings at one RMS level). numpy is imported inside the functions, so importing this module is cheap.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Clip:
    """One spoken clip to place in a stream: ``audio`` ``(samples,)`` float32 at the stream's rate,
    the ``word`` (or sentence) it holds, whether it is a command, its ``speaker`` and ``source`` (the data
    set it came from, e.g. ``"speech_commands_v2"``)."""

    audio: np.ndarray
    word: str
    is_command: bool
    speaker: str | None = None
    source: str = ""


@dataclass(frozen=True)
class StreamEvent:
    """A clip placed in a stream. ``start``/``end``: its spoken part (seconds from the stream's start);
    ``index``: the clip's position in the list given to :func:`build_stream`; ``clip_start``: where the
    whole clip begins; ``gain``: the factor applied to the clip; ``snr_db``:
    the SNR of the spoken part over the noise under it (the asked one unless the gain was capped so the
    clip does not clip)."""

    start: float
    end: float
    word: str
    is_command: bool
    speaker: str | None
    source: str
    index: int
    clip_start: float
    gain: float
    snr_db: float

    def to_json(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def active_span(wave: np.ndarray, sample_rate: int, frame_ms: float = 20.0, below_peak_db: float = 25.0) -> tuple[int, int]:
    """``(first, last)`` samples of a clip's spoken part: 20 ms frames within ``below_peak_db`` of the
    loudest frame."""
    import numpy as np

    frame = max(1, int(sample_rate * frame_ms / 1000))
    n = max(1, len(wave) // frame)
    energy = 10 * np.log10(np.mean(np.square(wave[: n * frame].reshape(n, frame), dtype=np.float64), axis=1) + 1e-12)
    loud = np.nonzero(energy >= energy.max() - below_peak_db)[0]
    return int(loud[0] * frame), int(min((loud[-1] + 1) * frame, len(wave)))


def noise_track(recordings: Sequence[np.ndarray], samples: int, rms: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """``(samples,)`` of background noise: random 5-20 s stretches of the recordings, each scaled to
    ``rms``, joined with 20 ms fades."""
    import numpy as np

    recordings = [r for r in recordings if len(r) > 0]
    if not recordings and samples > 0:
        raise ValueError("no noise recording holds any samples")
    out = np.zeros(samples, dtype=np.float32)
    fade = int(0.02 * sample_rate)
    pos = 0
    while pos < samples:
        rec = recordings[rng.integers(len(recordings))]
        length = min(int(rng.uniform(5, 20) * sample_rate), len(rec), samples - pos)
        a = int(rng.integers(0, len(rec) - length + 1))
        piece = rec[a : a + length].astype(np.float64)
        piece = piece * rms / max(float(np.sqrt(np.mean(piece**2))), 1e-8)
        ramp = np.ones(length)
        k = min(fade, length // 2)
        if k:
            ramp[:k], ramp[length - k :] = np.linspace(0, 1, k), np.linspace(1, 0, k)
        out[pos : pos + length] = piece * ramp
        pos += length
    return out


def build_stream(
    clips: Sequence[Clip],
    noise: Sequence[np.ndarray],
    *,
    sample_rate: int,
    seed: int,
    snr_db: float = 10.0,
    seconds: float | None = None,
    gap: tuple[float, float] = (0.5, 1.5),
    lead: float = 1.0,
    noise_rms: float = 0.01,
) -> tuple[np.ndarray, list[StreamEvent]]:
    """A stream of ``clips`` in background noise: ``(audio (samples,) float32, events)``.

    The clips come in a seeded random order (commands and other speech interleaved), each once when
    ``seconds`` is ``None`` (the stream is as long as they need); with ``seconds``, the stream has that
    length and the clips come round after round (a fresh order each round) until the next one does not
    fit. The pause from one spoken part to the next is drawn uniformly from ``gap`` seconds (longer where
    a clip's own padding needs it: clips never overlap); the first spoken part starts after ``lead`` s
    plus a pause, so the first model window is all stream. ``noise``: recordings ``(samples,)`` at
    ``sample_rate``, cut by :func:`noise_track` at ``noise_rms``. Each clip is scaled so its spoken part
    (:func:`active_span`) is ``snr_db`` over the noise under it (capped at a peak of 0.99). Deterministic
    for a seed: the same clips, noise and seed give the same samples and events.
    """
    import numpy as np

    if not clips:
        raise ValueError("build_stream: no clips")
    if not noise:
        raise ValueError("build_stream: no noise recordings")
    if gap[0] < 0 or gap[1] < gap[0]:
        raise ValueError(f"build_stream: bad gap {gap}")
    rng = np.random.default_rng(seed)
    limit = None if seconds is None else int(round(seconds * sample_rate))
    spans = [active_span(c.audio, sample_rate) for c in clips]

    # where each clip goes: (clip index, first sample of the clip)
    placed: list[tuple[int, int]] = []
    spoken_end = int(lead * sample_rate)  # end of the previous spoken part
    clip_end = 0  # end of the previous clip
    done = False
    while not done:
        for i in rng.permutation(len(clips)):
            a, b = spans[i]
            pause = int(rng.uniform(*gap) * sample_rate)
            at = max(clip_end, spoken_end + pause - a)
            if limit is not None and at + len(clips[i].audio) > limit:
                done = True
                break
            placed.append((int(i), at))
            spoken_end, clip_end = at + b, at + len(clips[i].audio)
        if limit is None:
            done = True
        elif not placed:
            raise ValueError(f"build_stream: no clip fits in {seconds} s")
    total = limit if limit is not None else clip_end + int((lead + gap[1]) * sample_rate)

    audio = noise_track(noise, total, noise_rms, rng, sample_rate)
    events = []
    for i, at in placed:
        clip, (a, b) = clips[i], spans[i]
        wave = np.asarray(clip.audio, dtype=np.float32)
        word_power = max(float(np.mean(np.square(wave[a:b], dtype=np.float64))), 1e-12)
        noise_power = float(np.mean(np.square(audio[at + a : at + b], dtype=np.float64))) or noise_rms**2
        gain = math.sqrt(noise_power * 10 ** (snr_db / 10) / word_power)
        gain = min(gain, 0.99 / max(float(np.abs(wave).max()), 1e-6))
        audio[at : at + len(wave)] += (wave * gain).astype(np.float32)
        achieved = 10 * math.log10(gain**2 * word_power / max(noise_power, 1e-20))
        events.append(StreamEvent((at + a) / sample_rate, (at + b) / sample_rate, clip.word, clip.is_command,
                                  clip.speaker, clip.source, i, at / sample_rate, gain, achieved))
    return audio, events
