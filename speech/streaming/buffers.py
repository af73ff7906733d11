"""Audio buffers of a stream: :class:`RingBuffer` (the last seconds, by absolute sample index),
:class:`StreamResampler` (block-by-block resampling equal to resampling the whole signal),
:func:`level_db` / :func:`frame_levels_db` (RMS levels) and :class:`NoiseFloor` (minimum statistics)."""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import torch


class RingBuffer:
    """The last ``capacity`` samples of a mono stream, addressed by absolute sample index.

    ``write(samples (n,))`` appends; ``read(start, end)`` -> ``(end - start,)`` float32 copy. Indices
    before the stream's start read as zeros (as a clip's zero padding); indices already overwritten raise
    ``IndexError``. ``total`` is the number of samples written since the start.
    """

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError("RingBuffer capacity must be positive")
        self.capacity = int(capacity)
        self.data = np.zeros(self.capacity, dtype=np.float32)
        self.total = 0

    def write(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if len(samples) > self.capacity:
            self.total += len(samples) - self.capacity
            samples = samples[-self.capacity :]
        pos = self.total % self.capacity
        first = min(len(samples), self.capacity - pos)
        self.data[pos : pos + first] = samples[:first]
        self.data[: len(samples) - first] = samples[first:]
        self.total += len(samples)

    def read(self, start: int, end: int) -> np.ndarray:
        if end > self.total or start > end:
            raise IndexError(f"RingBuffer.read({start}, {end}): only {self.total} samples written")
        if start < self.total - self.capacity and end > 0:
            raise IndexError(f"RingBuffer.read({start}, {end}): samples before {self.total - self.capacity} are gone")
        out = np.zeros(end - start, dtype=np.float32)
        a = max(start, 0)
        if a < end:  # at most two slices of the circular array
            pos, n = a % self.capacity, end - a
            first = min(n, self.capacity - pos)
            out[a - start : a - start + first] = self.data[pos : pos + first]
            out[a - start + first :] = self.data[: n - first]
        return out

    def latest(self, n: int) -> np.ndarray:
        """The last ``n`` samples ``(n,)`` (zeros before the stream's start)."""
        return self.read(self.total - n, self.total)


class StreamResampler:
    """Block-by-block resampling with the same windowed-sinc kernel as :func:`speech.audio.resample`.

    ``process(block (n,))`` -> the output samples now complete; ``flush()`` -> the rest. Input is
    converted in units of ``orig`` samples (the reduced rate ratio) with ``context`` samples of history
    and look-ahead, so the concatenated output equals resampling the whole signal at once.
    """

    def __init__(self, orig_rate: int, new_rate: int):
        import torchaudio.transforms as T

        g = math.gcd(int(orig_rate), int(new_rate))
        self.orig, self.new = int(orig_rate) // g, int(new_rate) // g
        self.passthrough = self.orig == self.new
        self.kernel = None if self.passthrough else T.Resample(self.orig, self.new)
        width = 0 if self.passthrough else self.kernel.width
        self.context = self.orig * max(1, math.ceil(width / self.orig))
        self.buffer = np.zeros(self.context, dtype=np.float32)  # zeros before the stream, as offline padding
        self.total_in = 0
        self.total_out = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self.total_in += len(block)
        if self.passthrough:
            self.total_out += len(block)
            return block
        self.buffer = np.concatenate([self.buffer, block])
        units = (len(self.buffer) - 2 * self.context) // self.orig
        if units <= 0:
            return np.zeros(0, dtype=np.float32)
        segment = torch.from_numpy(self.buffer[: 2 * self.context + units * self.orig])
        with torch.inference_mode():
            out = self.kernel(segment[None])[0].numpy()
        skip = self.context // self.orig * self.new
        result = out[skip : skip + units * self.new]
        self.buffer = self.buffer[units * self.orig :]
        self.total_out += len(result)
        return result

    def flush(self) -> np.ndarray:
        """The remaining output (the end of the stream is padded with zeros, as offline resampling does)."""
        if self.passthrough:
            return np.zeros(0, dtype=np.float32)
        target = math.ceil(self.new * self.total_in / self.orig)
        total_in, done = self.total_in, self.total_out
        tail = self.process(np.zeros(self.context + self.orig, dtype=np.float32))
        self.total_in = total_in
        tail = tail[: max(0, target - done)]
        self.total_out = done + len(tail)
        return tail


def level_db(samples: np.ndarray) -> float:
    """RMS level of a block in dB relative to full scale (-100 for silence)."""
    if len(samples) == 0:
        return -100.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * math.log10(max(rms, 1e-5))


def frame_levels_db(samples: np.ndarray, frame: int) -> np.ndarray:
    """RMS level in dBFS of each whole ``frame``-sample frame of ``samples`` ``(n,)`` -> ``(n // frame,)``."""
    n = len(samples) // frame
    frames = np.asarray(samples[: n * frame], dtype=np.float64).reshape(n, frame)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


class NoiseFloor:
    """Minimum statistics: the floor is the lowest frame level of the current section and of the sections
    of the last ``window_s`` seconds (sections of ``section_frames`` frames), so it follows louder or
    quieter noise within that time and is not lifted by sounds shorter than it. ``update(level)`` -> the
    floor after this frame."""

    def __init__(self, section_frames: int, window_s: float, sections_per_second: float):
        self.section = max(1, section_frames)
        self.minima: deque[float] = deque(maxlen=max(1, round(window_s * sections_per_second)))
        self.current, self.frames = math.inf, 0
        self.floor: float | None = None

    def update(self, level: float) -> float:
        self.current = min(self.current, level)
        self.frames += 1
        self.floor = min([self.current, *self.minima])
        if self.frames == self.section:
            self.minima.append(self.current)
            self.current, self.frames = math.inf, 0
        return self.floor
