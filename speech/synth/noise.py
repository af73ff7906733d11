"""Noise for augmentation: coloured (white, pink, brown), mains hum and babble from speech clips.

:func:`make_noise` returns float32 noise at -20 dBFS RMS; ``speech synth --noise DIR``
(:func:`write_noise`) writes one WAV per kind.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from speech.synth.plan import seeded_rng
from speech.synth.postprocess import speech_span

NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")


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
        save_audio(path, make_noise(kind, seconds, sample_rate, seeded_rng(seed, "noise", kind), babble_from), sample_rate)
        written.append(path)
    return written
