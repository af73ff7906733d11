"""Post-processing of one engine output, and the filter.

Resampling to ``--sample-rate``, an energy-based trim of leading/trailing silence (with a raised-cosine
fade at the cuts), the intelligibility proxy filter (silent, clipped, single-word speech shorter than
``--min-speech`` or longer than ``--max-speech``), peak normalization to the clip's level and centring
in ``--clip-seconds`` (longer clips are kept whole and marked ``over_clip`` in the stats).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech.synth.plan import ClipSpec

TRIM_THRESHOLD_DB = -40.0  # frames quieter than the loudest frame by more than this are silence
SILENCE_FLOOR_DB = -60.0  # a clip whose loudest 10 ms frame is below this (dBFS) is silent
TRIM_MARGIN_SECONDS = 0.02
FADE_SECONDS = 0.005  # raised-cosine fade at the cut edges
CLIPPED_FRACTION = 0.001  # more than this fraction of samples at full scale -> clipped


@dataclass(frozen=True)
class ClipSettings:
    """Post-processing and filter settings shared by every clip of a run."""

    sample_rate: int = 16000
    clip_seconds: float | None = 1.0  # None or 0: no padding
    min_speech: float = 0.15  # seconds of trimmed speech, any item
    max_speech: float | None = 1.5  # seconds, single words only
    use_sox: bool = True


def frame_energy_db(audio: np.ndarray, sample_rate: int, frame_seconds: float = 0.01) -> np.ndarray:
    """Mean power of consecutive ``frame_seconds`` frames, in dBFS."""
    hop = max(1, int(round(frame_seconds * sample_rate)))
    n = len(audio) // hop
    if n == 0:
        return np.full(1, -120.0)
    power = np.mean(np.square(audio[: n * hop].reshape(n, hop), dtype=np.float64), axis=1)
    return 10 * np.log10(power + 1e-12)


def rms_db(audio: np.ndarray) -> float:
    """Root-mean-square level of ``audio`` in dBFS, to 0.1 dB."""
    return round(float(10 * np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-12)), 1)


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


def peak_normalize(audio: np.ndarray, peak_db: float) -> np.ndarray:
    """Scale ``audio`` so its peak is ``peak_db`` dBFS (silence is returned as is)."""
    peak = float(np.abs(audio).max())
    return audio * (10 ** (peak_db / 20) / peak) if peak > 0 else audio


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
    stats["speech_seconds"] = round((stop - start) / sr, 3)
    stats["rms_db"] = rms_db(audio[start:stop])
    single_word = " " not in spec.text.strip()
    if stats["reason"] is None:
        if stats["speech_seconds"] < settings.min_speech:
            stats["reason"] = "too_short"
        elif single_word and settings.max_speech and stats["speech_seconds"] > settings.max_speech:
            stats["reason"] = "too_long"
    margin = int(TRIM_MARGIN_SECONDS * sr)
    audio = fade(audio[max(0, start - margin) : stop + margin], int(FADE_SECONDS * sr))
    audio = peak_normalize(audio, spec.peak_db)
    if settings.clip_seconds:
        length = int(round(settings.clip_seconds * sr))
        stats["over_clip"] = len(audio) > length
        audio = center_in_clip(audio, length)
    return audio.astype(np.float32), stats
