"""Utterances of a stream: :class:`EnergyVAD` finds where speech starts and ends, and
:class:`UtteranceTranscriber` decodes each utterance once (CTC models: grammar, beam), optionally running a
unidirectional model on the audio as it arrives (:class:`~speech.streaming.stateful.StreamingModel`)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from speech.streaming.buffers import NoiseFloor, RingBuffer, frame_levels_db
from speech.streaming.detection import UNKNOWN, ComputeMeter, Detection
from speech.streaming.stateful import StreamingModel

# ``speech listen --reject``: an utterance whose best grammar phrase has a CTC probability below this is
# other speech (_unknown_, not reported). Chosen on the DEV half of ``speech bench detection --model
# commands-ctc`` (docs/live.md, "CTC models").
DEFAULT_REJECT = 0.35


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
        self.in_speech = False
        self.run = 0  # consecutive speech frames (before a start)
        self.quiet = 0  # consecutive non-speech frames (in an utterance)
        self.start = 0
        self.last_speech = 0  # end of the last speech frame of the open utterance
        self.noise_floor = NoiseFloor(round(250 / c.frame_ms), c.floor_window_s, 4)  # sections of 0.25 s
        self.min_speech = max(1, round(c.min_speech_ms / c.frame_ms))
        self.hangover = max(1, round(c.hangover_ms / c.frame_ms))

    def process(self, samples: np.ndarray) -> list[tuple[str, int]]:
        self.pending = np.concatenate([self.pending, np.asarray(samples, dtype=np.float32).reshape(-1)])
        events: list[tuple[str, int]] = []
        n = len(self.pending) // self.frame
        if n == 0:
            return events
        levels = frame_levels_db(self.pending, self.frame)
        for i, level in enumerate(levels):
            self._step(float(level), self.position + i * self.frame, events)
        self.pending = self.pending[n * self.frame :]
        self.position += n * self.frame
        return events

    def _step(self, level: float, frame_start: int, events: list) -> None:
        c = self.config
        floor = self.noise_floor.update(level)
        speech = level > max(floor + (c.stop_db if self.in_speech else c.start_db), c.min_level_db)
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

    def flush(self) -> list[tuple[str, int]]:
        if self.in_speech:
            self.in_speech, self.run = False, 0
            return [("end", self.position + len(self.pending))]
        return []


class UtteranceTranscriber:
    """CTC stage: an :class:`EnergyVAD` finds utterances; each is decoded once it ends (with
    ``options``: grammar, beam, rejection). With ``streaming=True`` (unidirectional models) the model runs
    on the audio as it arrives (:class:`StreamingModel`) and only the decoding waits for the end.

    An utterance decoded as ``_unknown_`` (below ``options.reject`` or ``options.threshold``) or as nothing
    gives no detection. A detection's ``score`` is the rejection score (:attr:`Result.confidence
    <speech.recognizer.Result>`, the best phrase's CTC probability) when ``options.reject`` is set, else
    the decoder's score (the grammar posterior)."""

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

    def decode_utterance(self, ring: RingBuffer, start: int, end: int):
        """The model's answer (:class:`~speech.recognizer.Result`) for the samples ``start:end`` of the
        stream, the utterance that just ended; its audio ``(samples,)`` is the second value."""
        audio = ring.read(start, end)
        t0 = time.perf_counter()
        if self.streaming is not None:
            self._push(ring, end)
            output = torch.cat(self.outputs + [self.streaming.finish()])
        else:
            output = self.recognizer.forward([torch.from_numpy(audio)])[0]
        result = self.recognizer.decode(output, self.options)
        self.compute.add(time.perf_counter() - t0)
        return result, audio

    def _finish(self, ring: RingBuffer, end: int) -> list[Detection]:
        start, self.start = self.start, None
        result, audio = self.decode_utterance(ring, start, end)
        if not result.text or result.text == UNKNOWN:
            return []
        score = result.confidence if result.confidence is not None else result.score
        return [Detection(end / self.rate, result.text, float(score), start / self.rate, end / self.rate,
                          is_text=True, audio=audio)]
