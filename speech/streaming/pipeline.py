"""The stream itself: blocks from a source (microphone callback or file feeder) through a
:class:`BlockQueue` into :func:`run_stream`, which feeds a :class:`StreamPipeline` (downmix, resample, ring
buffer, stage) and reports detections."""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from speech.audio import to_mono
from speech.streaming.buffers import RingBuffer, StreamResampler, level_db
from speech.streaming.detection import DEFAULT_GATE_DB, CommandSpotter, Detection, SmoothingConfig
from speech.streaming.utterances import UtteranceTranscriber, VADConfig


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
               vad: VADConfig | None = None, streaming: bool = False, gate_db: float | None = DEFAULT_GATE_DB,
               skipping: str = "quiet"):
    """:class:`CommandSpotter` for classifiers (with its energy gate, ``gate_db`` None: off, and its hop
    skipping, ``skipping``: ``off``, ``quiet`` or ``suppressed``; ``speech listen`` runs
    :data:`~speech.streaming.detection.LISTEN_SKIPPING`), :class:`UtteranceTranscriber` for CTC models."""
    if recognizer.is_ctc:
        return UtteranceTranscriber(recognizer, options, vad, streaming)
    if streaming:
        raise ValueError("--streaming is for CTC models (classifiers run a sliding window)")
    return CommandSpotter(recognizer, hop_seconds, smoothing, gate_db, skipping)


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
    callback, or (``realtime=False``) as fast as the recognizer takes the blocks.

    :meth:`from_file` reads the file block by block as it goes (never the whole file), so memory does not
    grow with the length of the recording."""

    def __init__(self, audio: np.ndarray | None, sample_rate: int, block_frames: int, realtime: bool = True,
                 path: str | None = None):
        self.audio = None if audio is None else (audio if audio.ndim == 2 else audio[:, None])
        self.path = path
        self.sample_rate, self.block_frames, self.realtime = sample_rate, int(block_frames), realtime
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: str, block_ms: float, realtime: bool = True) -> "FileInput":
        """Any audio file at its own rate, channels averaged, read as it is fed (raises ``AudioError``
        naming the file when its header cannot be read or it holds no samples)."""
        from speech.audio import AudioError, audio_info

        rate, frames, _ = audio_info(path)
        if frames <= 0:
            raise AudioError(path, "no audio samples (zero-length signal)")
        return cls(None, rate, max(1, int(rate * block_ms / 1000)), realtime, path=str(path))

    @property
    def channels(self) -> int:
        return 1 if self.audio is None else self.audio.shape[1]

    def start(self, blocks: BlockQueue) -> None:
        self.thread = threading.Thread(target=self._feed, args=(blocks,), name="speech-file-input", daemon=True)
        self.thread.start()

    def _blocks(self):
        """``(frames, channels)`` float32 blocks: slices of the array, or reads of the file."""
        if self.audio is not None:
            for a in range(0, len(self.audio), self.block_frames):
                yield self.audio[a : a + self.block_frames]
            return
        import soundfile as sf

        from speech.audio import AudioError, _soundfile_cause, check_samples

        read = 0
        try:
            frames = sf.info(self.path).frames
            for block in sf.blocks(self.path, blocksize=self.block_frames, dtype="float32", always_2d=True):
                mono = to_mono(block)
                check_samples(mono, self.path)
                read += len(mono)
                yield np.clip(mono, -1.0, 1.0)[:, None]
        except AudioError:
            raise
        except Exception as err:  # soundfile's multi-line errors: one line naming the file
            raise AudioError(self.path, _soundfile_cause(err)) from None
        if read < frames:
            raise AudioError(self.path, f"truncated audio data: header says {frames} frames, read {read}")

    def _feed(self, blocks: BlockQueue) -> None:
        t0 = time.monotonic()
        try:
            for i, block in enumerate(self._blocks()):
                if self.stop_event.is_set():
                    break
                if self.realtime:
                    delay = t0 + i * self.block_frames / self.sample_rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    blocks.callback(block, len(block), None, None)
                elif not blocks.put(np.array(block, dtype=np.float32), self.stop_event):
                    return
        except Exception as err:  # AudioError: a truncated or damaged file, found while reading it
            blocks.close(str(err))
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
    compute_cpu_seconds: float = 0.0
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
    meter = pipeline.stage.compute
    summary.compute_seconds, summary.compute_cpu_seconds, summary.model_calls = meter.seconds, meter.cpu_seconds, meter.calls
    return summary
