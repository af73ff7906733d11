"""The interface every engine implements, and the pieces engines share.

An engine is a subclass of :class:`Engine` in its own module, listed in
:data:`speech.synth.engines.ENGINES`. It says whether it can run here (:meth:`Engine.missing`, with
what to install), which of its voices are installed (:meth:`Engine.voices`) and renders one
:class:`~speech.synth.plan.ClipSpec` (:meth:`Engine.render`); trimming, level and resampling are
done afterwards for every engine alike (:mod:`speech.synth.postprocess`).
"""
from __future__ import annotations

import shutil
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    from speech.synth.plan import ClipSpec

ENGINE_TIMEOUT_SECONDS = 60


class SynthError(RuntimeError):
    """An engine failed on one clip; ``str(err)`` is one line naming the engine, voice and text."""


class Engine(ABC):
    """One text-to-speech engine. Subclasses set the class attributes and implement the three methods."""

    name: ClassVar[str]  # as given to --engines and written in ``speaker`` (engine:voice:variant)
    no_voices: ClassVar[str]  # the one-line reason it is skipped when installed without any of its voices
    default: ClassVar[bool] = True  # used when --engines is not given

    @abstractmethod
    def missing(self) -> str | None:
        """Why the engine cannot run here, with what to install (one line); None when it can."""

    @abstractmethod
    def voices(self) -> list[str]:
        """The engine's voices installed here (asked only when :meth:`missing` is None)."""

    @abstractmethod
    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        """Say ``spec.text`` with ``spec.voice`` at ``spec.rate``, writing scratch files in ``workdir``.

        Returns ``(float32 mono samples, sample rate, pitched)``: ``pitched`` is true when the engine
        itself moved the pitch by ``spec.semitones`` (else sox shifts it afterwards). Raises
        :class:`SynthError` (one line) when the engine fails.
        """

    def available_voices(self) -> tuple[list[str], str | None]:
        """``(voices, None)`` when usable, else ``([], one-line reason it is skipped)``."""
        reason = self.missing()
        if reason:
            return [], reason
        voices = self.voices()
        return (voices, None) if voices else ([], self.no_voices)


def first_line(text: str | None) -> str:
    """The first non-blank line of an engine's stderr ('' when there is none)."""
    return next((line for line in (text or "").splitlines() if line.strip()), "")


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """``(float32 samples averaged over channels, sample rate)`` of a sound file."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def run_engine(spec: ClipSpec, cmd: list[str], out: Path, stdin: str | None = None) -> tuple[np.ndarray, int]:
    """Run an engine command that writes ``out``; raise :class:`SynthError` with one line on failure."""
    where = f"{spec.engine}:{spec.voice}: {spec.text!r}"
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=ENGINE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise SynthError(f"{where}: {cmd[0]} timed out after {ENGINE_TIMEOUT_SECONDS} s") from None
    except OSError as err:
        raise SynthError(f"{where}: cannot run {cmd[0]} ({err.strerror})") from None
    stderr = first_line(proc.stderr)
    if proc.returncode != 0:
        raise SynthError(f"{where}: {cmd[0]} exited with {proc.returncode}: {stderr}")
    if not out.is_file() or out.stat().st_size <= 44:
        raise SynthError(f"{where}: {cmd[0]} wrote no audio {stderr}".rstrip())
    return read_mono(out)


def sox_pitch(audio: np.ndarray, sample_rate: int, semitones: float, workdir: Path) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping the tempo (sox ``pitch``); returns the audio unchanged without sox."""
    if not shutil.which("sox"):
        return audio
    src, dst = workdir / "pitch_in.wav", workdir / "pitch_out.wav"
    sf.write(str(src), audio, sample_rate, subtype="FLOAT")
    proc = subprocess.run(["sox", "-V1", str(src), str(dst), "pitch", f"{100 * semitones:.0f}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SynthError(f"sox pitch {semitones:+.2f}: exited with {proc.returncode}: {proc.stderr.strip()[:200]}")
    return read_mono(dst)[0]
