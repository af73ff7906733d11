"""Audio input: one function turns any file soundfile can read into mono float32 at a target rate.

Every entry point (training data, ``speech transcribe``, the live tool's ``--input-file``) loads audio
through :func:`load_audio`, so validation and resampling happen in one place.
"""
from __future__ import annotations

import math
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

# torch-free pieces shared with speech.lite (the cold-start path of speech transcribe)
from speech.lite import AUDIO_EXTENSIONS, DEFAULT_MAX_DURATION, check_path, find_audio_files  # noqa: F401
from speech.lite import soundfile_cause as _soundfile_cause


class AudioError(ValueError):
    """A file that cannot be used as audio. ``str(err)`` is one line: ``path: cause``."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


@lru_cache(maxsize=64)
def _resample_kernel_key(orig: int, new: int) -> tuple[int, int]:
    g = math.gcd(orig, new)
    return orig // g, new // g


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample ``(..., samples)`` from ``orig_rate`` to ``new_rate`` with torchaudio's windowed sinc."""
    if orig_rate == new_rate:
        return waveform
    orig, new = _resample_kernel_key(int(orig_rate), int(new_rate))
    return AF.resample(waveform, orig, new)


def to_mono(data: np.ndarray) -> np.ndarray:
    """``(samples,)`` or ``(samples, channels)`` -> ``(samples,)`` by averaging the channels."""
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return data


def check_samples(waveform: np.ndarray | torch.Tensor, path: str | os.PathLike) -> None:
    """Raise :class:`AudioError` when a decoded signal is empty or holds NaN/Inf."""
    if len(waveform) == 0:
        raise AudioError(path, "no audio samples (zero-length signal)")
    finite = np.isfinite(waveform).all() if isinstance(waveform, np.ndarray) else bool(torch.isfinite(waveform).all())
    if not finite:
        raise AudioError(path, "contains NaN or Inf samples")


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(sample_rate, frames, channels)`` from the header, without decoding; raises :class:`AudioError`."""
    _check_path(path)
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises LibsndfileError/RuntimeError with a multi-line message
        raise AudioError(path, _soundfile_cause(err)) from None
    # libsndfile quietly shortens a WAV whose data chunk claims more bytes than the file holds and only
    # logs "data : <claimed> (should be <present>)"; a size >= 0x7F000000 is a streaming placeholder.
    short = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", info.extra_info or "", re.MULTILINE)
    if short and int(short.group(1)) < 0x7F000000:
        raise AudioError(
            path, f"truncated audio data: header says {short.group(1)} bytes of samples, the file holds {short.group(2)}"
        )
    return info.samplerate, info.frames, info.channels


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = 16000,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    max_duration: float | None = DEFAULT_MAX_DURATION,
) -> torch.Tensor:
    """Load an audio file as a mono float32 tensor ``(samples,)`` in [-1, 1] at ``sample_rate``.

    Reads anything soundfile reads (WAV of 8/16/24/32-bit int or float, FLAC, OGG, ...), averages
    the channels and resamples with torchaudio. ``sample_rate=None`` keeps the file's rate.
    ``offset``/``duration`` (seconds) read a part of the file. Raises :class:`AudioError` naming the
    file and the cause for: a missing file, a directory, an empty file, a file that is not audio, a
    truncated header or data, zero samples, NaN/Inf samples, or a duration over ``max_duration``.
    """
    waveform, rate = load_audio_native(path, offset=offset, duration=duration, max_duration=max_duration)
    tensor = torch.from_numpy(waveform)
    if sample_rate is not None and rate != sample_rate:
        tensor = resample(tensor, rate, sample_rate)
    return tensor


def load_audio_native(
    path: str | os.PathLike,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    mono: bool = True,
) -> tuple[np.ndarray, int]:
    """Like :func:`load_audio` but without resampling: ``(float32 array (samples,), file's rate)``;
    ``mono=False`` keeps the channels apart: ``(channels, samples)``."""
    rate, frames, _ = audio_info(path)
    if frames <= 0:
        raise AudioError(path, "no audio samples (zero-length signal)")
    total = frames / rate
    if max_duration is not None and (duration if duration is not None else total - offset) > max_duration:
        raise AudioError(path, f"duration {total:.1f} s is over the limit of {max_duration:g} s")
    start = int(round(offset * rate))
    stop = None if duration is None else start + int(round(duration * rate))
    try:
        data, rate = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(path, _soundfile_cause(err)) from None
    if stop is not None and data.shape[0] < stop - start and start + data.shape[0] < frames:
        raise AudioError(path, "truncated audio data")
    if data.shape[0] < min(frames, stop or frames) - start:
        raise AudioError(path, f"truncated audio data: header says {frames} frames, read {start + data.shape[0]}")
    data = to_mono(data) if mono else data.T
    check_samples(data.reshape(-1), path)
    return np.ascontiguousarray(np.clip(data, -1.0, 1.0), dtype=np.float32), rate


def save_audio(path: str | os.PathLike, waveform: torch.Tensor | np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write ``(samples,)`` float audio to ``path`` atomically (temp file, then rename)."""
    path = Path(path)
    data = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # per process: concurrent writers never share it
    try:
        sf.write(str(tmp), np.clip(data, -1.0, 1.0), sample_rate, subtype=subtype, format=_format_for(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write leaves neither a temp file nor a half-written target
        raise


def _format_for(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    return {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}.get(ext, "WAV")


def _check_path(path: str | os.PathLike) -> None:
    check_path(path, AudioError)
