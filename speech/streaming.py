"""Streaming recognition: the layer between a source of audio blocks and the :class:`~speech.recognizer.Recognizer`.

One path for the microphone, ``--input-file`` and the streaming benchmark::

    audio callback / file feeder --(BlockQueue: never blocks the callback)--> run_stream():
        StreamPipeline: downmix -> StreamResampler (source rate -> model rate) -> RingBuffer
            classifier: CommandSpotter  = sliding window (model's window, hop) + RecognizeCommands smoothing
            CTC:        UtteranceTranscriber = EnergyVAD gate -> one decode per utterance (grammar, beam)
        -> Detection(time, label or text, score, audio)

:class:`StreamingModel` runs a model trained with ``model.bidirectional=false`` chunk by chunk with carried
GRU states (the front end on overlapping audio so frames line up); its outputs equal whole-clip outputs.
The streaming benchmark (``speech bench streaming``) is in :mod:`speech.bench_streaming`.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from speech.audio import to_mono

SILENCE, UNKNOWN = "_silence_", "_unknown_"
NEVER_FIRE = (SILENCE, UNKNOWN)


# ================================================================================ buffers, resampling
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
        if a < end:
            idx = np.arange(a, end) % self.capacity
            out[a - start :] = self.data[idx]
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


# ============================================================================ posterior smoothing, VAD
@dataclass
class SmoothingConfig:
    """:class:`RecognizeCommands` parameters (TensorFlow's ``recognize_commands`` names).

    ``average_window_ms``: posteriors of the windows of the last this many ms are averaged.
    ``detection_threshold``: the averaged score a command needs. ``suppression_ms``: no new detection
    this long after one. ``minimum_count``: fewer windows than this in the averaging window: no decision.
    """

    average_window_ms: float = 500.0
    detection_threshold: float = 0.5
    suppression_ms: float = 1000.0
    minimum_count: int = 3


class RecognizeCommands:
    """Posterior smoothing in the style of TensorFlow's ``RecognizeCommands``.

    ``process(time_s, probabilities (classes,))`` -> ``(label, score)`` when a new command is heard,
    else ``None``. A command fires when its averaged probability is the highest, reaches the threshold
    and the suppression time since the last detection has passed; the same command fires again only
    after its averaged score fell below the threshold in between (TensorFlow never repeats a label).
    ``_silence_`` and ``_unknown_`` (``ignore``) never fire.
    """

    def __init__(self, labels: list[str], config: SmoothingConfig | None = None, ignore: tuple[str, ...] = NEVER_FIRE):
        self.labels, self.config, self.ignore = list(labels), config or SmoothingConfig(), set(ignore)
        self.history: list[tuple[float, np.ndarray]] = []
        self.last_label: str | None = None
        self.last_time = -math.inf
        self.armed = True

    def average(self) -> np.ndarray:
        return np.mean([p for _, p in self.history], axis=0)

    def process(self, time_s: float, probabilities: np.ndarray) -> tuple[str, float] | None:
        c = self.config
        if self.history and time_s < self.history[-1][0]:
            raise ValueError(f"RecognizeCommands: time went back from {self.history[-1][0]} to {time_s}")
        self.history.append((time_s, np.asarray(probabilities, dtype=np.float64)))
        while self.history and self.history[0][0] <= time_s - c.average_window_ms / 1000:
            self.history.pop(0)
        if len(self.history) < c.minimum_count:
            return None
        avg = self.average()
        top = int(np.argmax(avg))
        label, score = self.labels[top], float(avg[top])
        if self.last_label is not None and (label != self.last_label or score < c.detection_threshold):
            self.armed = True
        if label in self.ignore or score < c.detection_threshold:
            return None
        if (time_s - self.last_time) * 1000 < c.suppression_ms:
            return None
        if label == self.last_label and not self.armed:
            return None
        self.last_label, self.last_time, self.armed = label, time_s, False
        return label, score


@dataclass
class VADConfig:
    """:class:`EnergyVAD` parameters. A frame is speech when its level is ``start_db`` above the noise
    floor (and above ``min_level_db``); an utterance starts after ``min_speech_ms`` of speech frames and
    ends after ``hangover_ms`` below ``floor + stop_db`` (or at ``max_utterance_s``). The noise floor is
    the lowest frame level of the last ``floor_window_s`` seconds (minimum statistics), so it follows
    louder or quieter noise within that time and is not lifted by utterances shorter than it."""

    frame_ms: float = 20.0
    start_db: float = 10.0
    stop_db: float = 6.0
    min_level_db: float = -55.0
    min_speech_ms: float = 60.0
    hangover_ms: float = 300.0
    min_utterance_ms: float = 150.0
    max_utterance_s: float = 8.0
    floor_window_s: float = 3.0
    pre_roll_ms: float = 200.0


class EnergyVAD:
    """Energy voice-activity gate with hangover and an adaptive noise floor.

    ``process(samples (n,))`` -> events ``[("start", sample), ("end", sample)]`` in stream order
    (absolute sample indices at ``sample_rate``). The ``start`` sample is the first speech frame; the
    ``end`` sample is where the end was declared (last speech frame + hangover, or ``max_utterance_s``).
    An utterance with less than ``min_utterance_ms`` from its start to its last speech frame ends with
    ``("cancel", sample)`` instead. ``flush()`` ends an open utterance.
    """

    def __init__(self, sample_rate: int, config: VADConfig | None = None):
        self.config = c = config or VADConfig()
        self.sample_rate = sample_rate
        self.frame = max(1, int(round(sample_rate * c.frame_ms / 1000)))
        self.pending = np.zeros(0, dtype=np.float32)
        self.position = 0  # absolute index of pending[0]
        self.floor: float | None = None
        self.in_speech = False
        self.run = 0  # consecutive speech frames (before a start)
        self.quiet = 0  # consecutive non-speech frames (in an utterance)
        self.start = 0
        self.last_speech = 0  # end of the last speech frame of the open utterance
        self.section = max(1, round(250 / c.frame_ms))  # frames per floor section (0.25 s)
        self.section_minima: deque[float] = deque(maxlen=max(1, round(c.floor_window_s * 4)))
        self.section_min, self.section_frames = math.inf, 0
        self.min_speech = max(1, round(c.min_speech_ms / c.frame_ms))
        self.hangover = max(1, round(c.hangover_ms / c.frame_ms))

    def process(self, samples: np.ndarray) -> list[tuple[str, int]]:
        self.pending = np.concatenate([self.pending, np.asarray(samples, dtype=np.float32).reshape(-1)])
        events: list[tuple[str, int]] = []
        n = len(self.pending) // self.frame
        if n == 0:
            return events
        frames = self.pending[: n * self.frame].reshape(n, self.frame).astype(np.float64)
        levels = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
        for i, level in enumerate(levels):
            self._step(float(level), self.position + i * self.frame, events)
        self.pending = self.pending[n * self.frame :]
        self.position += n * self.frame
        return events

    def _step(self, level: float, frame_start: int, events: list) -> None:
        c = self.config
        self._track_floor(level)
        speech = level > max(self.floor + (c.stop_db if self.in_speech else c.start_db), c.min_level_db)
        frame_end = frame_start + self.frame
        if not self.in_speech:
            self.run = self.run + 1 if speech else 0
            if self.run >= self.min_speech:
                self.in_speech, self.quiet = True, 0
                self.start, self.last_speech = frame_end - self.run * self.frame, frame_end
                events.append(("start", self.start))
        else:
            self.quiet = 0 if speech else self.quiet + 1
            if speech:
                self.last_speech = frame_end
            too_long = frame_end - self.start >= c.max_utterance_s * self.sample_rate
            if self.quiet >= self.hangover or too_long:
                self.in_speech, self.run = False, 0
                short = self.last_speech - self.start < c.min_utterance_ms / 1000 * self.sample_rate
                events.append(("cancel" if short else "end", frame_end))

    def _track_floor(self, level: float) -> None:
        """Minimum statistics: the floor is the lowest level of the current and the last sections."""
        self.section_min = min(self.section_min, level)
        self.section_frames += 1
        self.floor = min([self.section_min, *self.section_minima])
        if self.section_frames == self.section:
            self.section_minima.append(self.section_min)
            self.section_min, self.section_frames = math.inf, 0

    def flush(self) -> list[tuple[str, int]]:
        if self.in_speech:
            self.in_speech, self.run = False, 0
            return [("end", self.position + len(self.pending))]
        return []


# ======================================================================================= stages
@dataclass
class Detection:
    """A recognized command (``label``) or utterance (``text``, CTC models).

    ``time``: seconds from the start of the stream when it was recognized; ``start``/``end``: the audio
    it was recognized in (seconds); ``audio``: that audio ``(samples,)`` at the model's rate.
    """

    time: float
    label: str
    score: float
    start: float
    end: float
    is_text: bool = False
    audio: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {"time": round(self.time, 3), "text" if self.is_text else "label": self.label, "score": round(self.score, 4)}


class ComputeMeter:
    """Seconds spent in the model, and how many model calls (hops or utterances) they were."""

    def __init__(self):
        self.seconds, self.calls = 0.0, 0

    def add(self, seconds: float, calls: int = 1) -> None:
        self.seconds += seconds
        self.calls += calls


class CommandSpotter:
    """Classifier stage: every ``hop_seconds`` the model scores the latest window (``window_seconds`` of
    the model) and :class:`RecognizeCommands` smooths the posteriors. ``process(ring)`` runs every hop
    whose window end the ring has reached (in one batch) and returns the detections (``new``, the
    samples just written, is not needed: the ring has them)."""

    def __init__(self, recognizer, hop_seconds: float = 0.1, smoothing: SmoothingConfig | None = None):
        self.recognizer = recognizer
        self.rate = recognizer.sample_rate
        self.window = int(round(recognizer.window_seconds * self.rate))
        self.hop = max(1, int(round(hop_seconds * self.rate)))
        self.smoother = RecognizeCommands(recognizer.labels, smoothing)
        self.next_end = self.hop
        self.recent: list[tuple[int, np.ndarray]] = []  # (window end, probabilities) in the averaging window
        self.compute = ComputeMeter()

    def ring_seconds(self) -> float:
        return self.window / self.rate + self.smoother.config.average_window_ms / 1000 + 1.0

    def process(self, ring: RingBuffer, new: np.ndarray | None = None) -> list[Detection]:
        ends = []
        while self.next_end <= ring.total:
            ends.append(self.next_end)
            self.next_end += self.hop
        if not ends:
            return []
        windows = [torch.from_numpy(ring.read(e - self.window, e)) for e in ends]
        t0 = time.perf_counter()
        outputs = self.recognizer.forward(windows)
        probs = torch.softmax(torch.stack(outputs).float(), -1).numpy()
        self.compute.add(time.perf_counter() - t0, len(ends))
        found = []
        keep = self.smoother.config.average_window_ms / 1000 * self.rate
        for end, p in zip(ends, probs):
            self.recent = [(e, q) for e, q in self.recent if e > end - keep] + [(end, p)]
            hit = self.smoother.process(end / self.rate, p)
            if hit is None:
                continue
            label, score = hit
            index = self.recognizer.labels.index(label)
            best_end = max(self.recent, key=lambda item: item[1][index])[0]
            start = best_end - self.window
            found.append(Detection(end / self.rate, label, score, max(start, 0) / self.rate, best_end / self.rate,
                                   audio=ring.read(max(start, 0), best_end)))
        return found

    def flush(self, ring: RingBuffer) -> list[Detection]:
        return []


class UtteranceTranscriber:
    """CTC stage: an :class:`EnergyVAD` finds utterances; each is decoded once it ends (with
    ``options``: grammar, beam). With ``streaming=True`` (unidirectional models) the model runs on the
    audio as it arrives (:class:`StreamingModel`) and only the decoding waits for the end."""

    def __init__(self, recognizer, options=None, vad: VADConfig | None = None, streaming: bool = False):
        from speech.recognizer import DecodeOptions

        self.recognizer, self.options = recognizer, options or DecodeOptions(top_k=1)
        self.rate = recognizer.sample_rate
        self.vad = EnergyVAD(self.rate, vad)
        self.pre_roll = int(self.vad.config.pre_roll_ms / 1000 * self.rate)
        self.streaming = StreamingModel(recognizer.backend.model) if streaming else None
        self.start: int | None = None  # audio start of the open utterance
        self.pushed = 0  # streaming: samples of the open utterance given to the model so far
        self.outputs: list[torch.Tensor] = []  # streaming: log-probabilities of the open utterance
        self.compute = ComputeMeter()

    def ring_seconds(self) -> float:
        return self.vad.config.max_utterance_s + self.vad.config.pre_roll_ms / 1000 + 1.0

    def process(self, ring: RingBuffer, new: np.ndarray) -> list[Detection]:
        found = []
        for kind, sample in self.vad.process(new):
            if kind == "start":
                self.start = max(sample - self.pre_roll, ring.total - ring.capacity, 0)
                self.pushed, self.outputs = self.start, []
                if self.streaming is not None:
                    self.streaming.reset()
            elif kind == "cancel":
                self.start = None
            elif self.start is not None:
                found += self._finish(ring, min(sample, ring.total))
        if self.streaming is not None and self.start is not None:
            self._push(ring, ring.total)
        return found

    def flush(self, ring: RingBuffer) -> list[Detection]:
        found = []
        for _, sample in self.vad.flush():
            if self.start is not None:
                found += self._finish(ring, min(sample, ring.total))
        return found

    def _push(self, ring: RingBuffer, end: int) -> None:
        if end > self.pushed:
            t0 = time.perf_counter()
            self.outputs.append(self.streaming.push(ring.read(self.pushed, end)))
            self.compute.add(time.perf_counter() - t0, 0)
            self.pushed = end

    def _finish(self, ring: RingBuffer, end: int) -> list[Detection]:
        start, self.start = self.start, None
        audio = ring.read(start, end)
        t0 = time.perf_counter()
        if self.streaming is not None:
            self._push(ring, end)
            output = torch.cat(self.outputs + [self.streaming.finish()])
        else:
            output = self.recognizer.forward([torch.from_numpy(audio)])[0]
        result = self.recognizer.decode(output, self.options)
        self.compute.add(time.perf_counter() - t0)
        if not result.text or result.text == UNKNOWN:
            return []
        return [Detection(end / self.rate, result.text, float(result.score), start / self.rate, end / self.rate,
                          is_text=True, audio=audio)]


# ===================================================================================== pipeline
class StreamPipeline:
    """Blocks ``(frames, channels)`` or ``(frames,)`` at ``source_rate`` -> detections.

    Downmixes (channel mean), resamples to the model's rate, keeps the audio in a :class:`RingBuffer`
    and runs the stage (:class:`CommandSpotter` or :class:`UtteranceTranscriber`). ``level_db`` is the
    last block's level; ``seconds`` the audio time processed (at the model's rate).
    """

    def __init__(self, stage, source_rate: int, model_rate: int):
        self.stage, self.rate = stage, model_rate
        self.resampler = StreamResampler(source_rate, model_rate)
        self.ring = RingBuffer(int(stage.ring_seconds() * model_rate))
        self.level_db = -100.0

    @property
    def seconds(self) -> float:
        return self.ring.total / self.rate

    def push(self, block: np.ndarray) -> list[Detection]:
        mono = to_mono(np.asarray(block, dtype=np.float32))
        self.level_db = level_db(mono)
        return self._feed(self.resampler.process(mono))

    def finish(self) -> list[Detection]:
        found = self._feed(self.resampler.flush())
        return found + self.stage.flush(self.ring)

    def _feed(self, samples: np.ndarray) -> list[Detection]:
        if len(samples) == 0:
            return []
        self.ring.write(samples)
        return self.stage.process(self.ring, samples)


def make_stage(recognizer, hop_seconds: float = 0.1, smoothing: SmoothingConfig | None = None, options=None,
               vad: VADConfig | None = None, streaming: bool = False):
    """:class:`CommandSpotter` for classifiers, :class:`UtteranceTranscriber` for CTC models."""
    if recognizer.is_ctc:
        return UtteranceTranscriber(recognizer, options, vad, streaming)
    if streaming:
        raise ValueError("--streaming is for CTC models (classifiers run a sliding window)")
    return CommandSpotter(recognizer, hop_seconds, smoothing)


class StreamError(RuntimeError):
    """The audio source failed (device lost, stalled); ``str(err)`` is one line."""


END = object()  # end-of-stream marker in a BlockQueue


class BlockQueue:
    """Hand-off from the audio thread to the recognition thread.

    ``callback(indata (frames, channels), frames, time_info, status)`` is sounddevice's callback
    signature; it copies the block and never blocks: when the queue is full the block is dropped and
    counted. PortAudio's input-overflow flags are counted too. ``put(block)`` (file feeder, fast mode)
    waits for room instead. ``close(error)`` ends the stream.
    """

    def __init__(self, max_blocks: int = 200):
        self.queue: queue.Queue = queue.Queue(maxsize=max_blocks)
        self.overflows = 0
        self.dropped = 0
        self.error: str | None = None

    def callback(self, indata, frames, time_info, status) -> None:
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        try:
            self.queue.put_nowait(np.array(indata, dtype=np.float32, copy=True))
        except queue.Full:
            self.dropped += 1

    def put(self, block: np.ndarray, stop: threading.Event | None = None) -> bool:
        """Blocking put (not for audio callbacks); ``False`` when ``stop`` was set while waiting."""
        while True:
            try:
                self.queue.put(block, timeout=0.1)
                return True
            except queue.Full:
                if stop is not None and stop.is_set():
                    return False

    def close(self, error: str | None = None) -> None:
        """End the stream after the queued blocks; never blocks (when the queue is full the oldest block
        is dropped to make room)."""
        self.error = self.error or error
        while True:
            try:
                self.queue.put_nowait(END)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def get(self, timeout: float):
        """The next block, ``END``, or ``None`` after ``timeout`` seconds without one."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


class FileInput:
    """Feeds audio ``(samples,)`` or ``(samples, channels)`` at ``sample_rate`` into a :class:`BlockQueue`
    block by block from a thread, as a microphone would: at real-time pace through the non-blocking
    callback, or (``realtime=False``) as fast as the recognizer takes the blocks."""

    def __init__(self, audio: np.ndarray, sample_rate: int, block_frames: int, realtime: bool = True):
        self.audio = audio if audio.ndim == 2 else audio[:, None]
        self.sample_rate, self.block_frames, self.realtime = sample_rate, int(block_frames), realtime
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: str, block_ms: float, realtime: bool = True) -> "FileInput":
        """Read any audio file at its own rate, channels averaged (raises ``AudioError`` naming the file)."""
        from speech.audio import load_audio_native

        data, rate = load_audio_native(path, max_duration=None)
        return cls(data, rate, max(1, int(rate * block_ms / 1000)), realtime)

    @property
    def channels(self) -> int:
        return self.audio.shape[1]

    def start(self, blocks: BlockQueue) -> None:
        self.thread = threading.Thread(target=self._feed, args=(blocks,), name="speech-file-input", daemon=True)
        self.thread.start()

    def _feed(self, blocks: BlockQueue) -> None:
        t0 = time.monotonic()
        for i, a in enumerate(range(0, len(self.audio), self.block_frames)):
            if self.stop_event.is_set():
                break
            block = self.audio[a : a + self.block_frames]
            if self.realtime:
                delay = t0 + i * self.block_frames / self.sample_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                blocks.callback(block, len(block), None, None)
            elif not blocks.put(np.array(block, dtype=np.float32), self.stop_event):
                return
        blocks.put(END, self.stop_event)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=2)


@dataclass
class StreamSummary:
    seconds: float = 0.0
    detections: int = 0
    overflows: int = 0
    dropped: int = 0
    compute_seconds: float = 0.0
    model_calls: int = 0
    interrupted: bool = False

    def line(self) -> str:
        return (f"listened {self.seconds:.1f} s: {self.detections} detection{'s' * (self.detections != 1)}, "
                f"{self.overflows} overflow{'s' * (self.overflows != 1)}, {self.dropped} dropped block"
                f"{'s' * (self.dropped != 1)}")


def run_stream(
    blocks: BlockQueue,
    pipeline: StreamPipeline,
    on_detection: Callable[[Detection], None],
    on_block: Callable[[StreamPipeline], None] | None = None,
    duration: float | None = None,
    stall_seconds: float | None = None,
    source: str = "audio source",
    on_first_block: Callable[[], None] | None = None,
    first_block_seconds: float = 10.0,
) -> StreamSummary:
    """Consume ``blocks`` until the end of the stream, ``duration`` seconds of audio, or Ctrl-C
    (``summary.interrupted``). Raises :class:`StreamError` when the source reports an error or
    delivers nothing for ``stall_seconds`` (``first_block_seconds`` for the first block: opening a
    device can take a while). ``on_first_block()`` is called when audio starts flowing."""
    summary = StreamSummary()
    waited, started = 0.0, False
    try:
        while duration is None or pipeline.seconds < duration:
            block = blocks.get(timeout=0.25)
            if block is None:
                waited += 0.25
                limit = stall_seconds if started or stall_seconds is None else max(stall_seconds, first_block_seconds)
                if limit is not None and waited >= limit:
                    raise StreamError(f"{source}: no audio for {waited:.0f} s (device disconnected or stalled)")
                continue
            waited = 0.0
            if block is END:
                if blocks.error:
                    raise StreamError(blocks.error)
                break
            if not started:
                started = True
                if on_first_block is not None:
                    on_first_block()
            for d in pipeline.push(block):
                summary.detections += 1
                on_detection(d)
            if on_block is not None:
                on_block(pipeline)
        for d in pipeline.finish():
            summary.detections += 1
            on_detection(d)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.seconds = pipeline.seconds
    summary.overflows, summary.dropped = blocks.overflows, blocks.dropped
    summary.compute_seconds, summary.model_calls = pipeline.stage.compute.seconds, pipeline.stage.compute.calls
    return summary


# ============================================================================== true streaming
class StreamingModel:
    """Run a unidirectional :class:`~speech.models.SpeechModel` on a stream, chunk by chunk.

    ``push(samples (n,))`` -> outputs for the frames now complete: CTC log-probabilities
    ``(T_new, vocab + 1)``, or for classifiers the encoder outputs ``(T_new, H)`` (``logits()`` pools
    everything so far, exactly as the whole clip would be pooled). ``finish()`` ends the stream (right
    zero padding as for a whole clip) and returns the remaining outputs — for classifiers the logits
    ``(classes,)``. The concatenated outputs equal ``model(whole clip)``.

    The front end runs on overlapping audio: frame ``t`` is centred on sample ``t * hop`` and needs
    ``n_fft / 2`` samples either side, so each chunk starts ``ceil(n_fft / 2 / hop)`` frames early and
    those frames are dropped. Subsampling (``stack``/``conv``, factor ``f``) needs frames up to
    ``k * f + f - 1`` for output ``k``; each chunk starts one group early for the conv's left context.
    The GRU layers carry their states.
    """

    def __init__(self, model):
        cfg, fc = model.config, model.feature_config
        if cfg.bidirectional:
            raise ValueError("streaming needs a model trained with model.bidirectional=false")
        if fc.normalize == "utterance" or fc.deltas:
            raise ValueError("streaming needs features.normalize none/global and features.deltas=0")
        self.model = model.eval()
        self.hop = model.front_end.hop_length
        self.half = model.front_end.n_fft // 2
        self.margin = math.ceil(self.half / self.hop)
        sub = model.encoder.subsampling
        self.factor = sub.factor if sub is not None else 1
        self.reset()

    def reset(self) -> None:
        self.audio = np.zeros(0, dtype=np.float32)
        self.audio_start = 0  # absolute sample index of audio[0]
        self.total = 0
        self.next_frame = 0
        self.frames = torch.zeros(0, self.model.feature_config.dim)
        self.frames_start = 0  # frame index of frames[0]
        self.next_group = 0
        self.states: list[torch.Tensor | None] = [None] * len(self.model.encoder.layers)
        self.pool_max = torch.tensor(-math.inf)
        self.pool_weight = torch.tensor(0.0)
        self.pool_sum = torch.zeros(self.model.encoder.output_dim)
        self.pool_count = 0

    @torch.inference_mode()
    def push(self, samples: np.ndarray) -> torch.Tensor:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, samples])
        self.total += len(samples)
        last_frame = (self.total - self.half) // self.hop  # its window ends inside the audio we have
        return self._step(last_frame, final=False)

    @torch.inference_mode()
    def finish(self) -> torch.Tensor:
        out = self._step(self.total // self.hop, final=True)
        if self.model.is_ctc:
            return out
        return self.logits()

    def logits(self) -> torch.Tensor:
        """Classifiers: ``(classes,)`` logits of everything pushed so far (the head's pooling, running)."""
        head = self.model.head
        pooled = self.pool_sum / self.pool_weight if head.attention is not None else self.pool_sum / max(self.pool_count, 1)
        return head.output(pooled)

    def _step(self, last_frame: int, final: bool) -> torch.Tensor:
        fe = self.model.front_end
        if last_frame >= self.next_frame:
            first = self.next_frame - self.margin
            start, end = first * self.hop, self.total
            chunk = self.audio[max(start, self.audio_start) - self.audio_start : end - self.audio_start]
            chunk = np.concatenate([np.zeros(max(0, self.audio_start - start), np.float32), chunk])  # before the start
            wave = torch.from_numpy(chunk)[None]
            feats, _ = fe(wave, torch.tensor([len(chunk)]))
            new = feats[0, self.margin : self.margin + last_frame - self.next_frame + 1]
            self.frames = torch.cat([self.frames, new])
            self.next_frame = last_frame + 1
            keep_from = (self.next_frame - self.margin) * self.hop
            self.audio = self.audio[max(0, keep_from - self.audio_start) :]
            self.audio_start = max(self.audio_start, keep_from)
        return self._encode(final)

    def _encode(self, final: bool) -> torch.Tensor:
        f = self.factor
        n_frames = self.next_frame  # frames computed so far
        last_group = (n_frames + f - 1) // f - 1 if final else (n_frames - f) // f
        if last_group < self.next_group:
            return self._empty()
        enc = self.model.encoder
        context = 1 if enc.subsampling is not None and self.next_group > 0 else 0  # one group early (conv)
        begin = (self.next_group - context) * f
        x = self.frames[begin - self.frames_start : n_frames - self.frames_start][None]
        lengths = torch.tensor([x.shape[1]])
        if enc.subsampling is not None:
            x, lengths = enc.subsampling(x, lengths)
            x = x[:, context : context + last_group - self.next_group + 1]
            lengths = torch.tensor([x.shape[1]])
        for i, layer in enumerate(enc.layers):
            x, self.states[i] = layer(x, lengths, self.states[i])
        self.next_group = last_group + 1
        drop = (self.next_group - (1 if enc.subsampling is not None else 0)) * f - self.frames_start
        self.frames, self.frames_start = self.frames[drop:], self.frames_start + drop
        if self.model.is_ctc:
            return self.model.head(x, lengths)[0]
        self._pool(x[0])
        return x[0]

    def _pool(self, encoded: torch.Tensor) -> None:
        head = self.model.head
        if head.attention is None:
            self.pool_sum = self.pool_sum + encoded.sum(0)
            self.pool_count += len(encoded)
            return
        scores = head.attention(encoded).squeeze(-1)
        new_max = torch.maximum(self.pool_max, scores.max())
        scale = torch.exp(self.pool_max - new_max)
        weights = torch.exp(scores - new_max)
        self.pool_weight = self.pool_weight * scale + weights.sum()
        self.pool_sum = self.pool_sum * scale + weights @ encoded
        self.pool_max = new_max

    def _empty(self) -> torch.Tensor:
        dim = len(self.model.labels) + 1 if self.model.is_ctc else self.model.encoder.output_dim
        return torch.zeros(0, dim)
