"""Command detection on a stream of classifier posteriors.

:class:`CommandSpotter` scores the latest model window every hop; :class:`RecognizeCommands` smooths the
posteriors (TensorFlow's ``recognize_commands``) and decides when a command fires; a :class:`Detection`
is what comes out of every stage (commands here, utterances in :mod:`speech.streaming.utterances`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from speech.streaming.buffers import NoiseFloor, RingBuffer, frame_levels_db

SILENCE, UNKNOWN = "_silence_", "_unknown_"
NEVER_FIRE = (SILENCE, UNKNOWN)
DEFAULT_GATE_DB = 10.0  # the command spotter's energy gate: a window must rise this far above the noise floor


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


class CommandSpotter:
    """Classifier stage: every ``hop_seconds`` the model scores the latest window (``window_seconds`` of
    the model) and :class:`RecognizeCommands` smooths the posteriors. ``process(ring)`` runs every hop
    whose window end the ring has reached (in one batch) and returns the detections (``new``, the
    samples just written, is not needed: the ring has them).

    The energy gate (``gate_db``, None: off): a window whose every 20 ms frame is within ``gate_db`` of
    the noise floor (minimum statistics over 3 s) holds nothing to hear, and the model is not run on it;
    the smoother gets a ``_silence_`` posterior instead (models without that class are never gated).
    ``compute.calls`` counts the windows the model ran on, ``gated`` those it skipped."""

    GATE_FRAME_MS = 20.0

    def __init__(self, recognizer, hop_seconds: float = 0.1, smoothing: SmoothingConfig | None = None,
                 gate_db: float | None = None):
        self.recognizer = recognizer
        self.rate = recognizer.sample_rate
        self.window = int(round(recognizer.window_seconds * self.rate))
        self.hop = max(1, int(round(hop_seconds * self.rate)))
        self.smoother = RecognizeCommands(recognizer.labels, smoothing)
        self.next_end = self.hop
        self.recent: list[tuple[int, np.ndarray]] = []  # (window end, probabilities) in the averaging window
        self.compute = ComputeMeter()
        labels = list(recognizer.labels)
        self.gate_db = gate_db if SILENCE in labels else None
        if self.gate_db is not None:
            self.silence = np.zeros(len(labels), dtype=np.float32)
            self.silence[labels.index(SILENCE)] = 1.0
            self.frame = max(1, int(round(self.rate * self.GATE_FRAME_MS / 1000)))
            self.floor = NoiseFloor(round(250 / self.GATE_FRAME_MS), 3.0, 4)
            self.floored_to = 0  # samples whose frames have updated the floor
        self.gated = 0

    def ring_seconds(self) -> float:
        return self.window / self.rate + self.smoother.config.average_window_ms / 1000 + 1.0

    def process(self, ring: RingBuffer, new: np.ndarray | None = None) -> list[Detection]:
        ends = []
        while self.next_end <= ring.total:
            ends.append(self.next_end)
            self.next_end += self.hop
        if not ends:
            return []
        windows = [ring.read(e - self.window, e) for e in ends]
        audible = [self._audible(w, e) for w, e in zip(windows, ends)]
        probs = np.zeros((len(ends), len(self.recognizer.labels)), dtype=np.float32)
        run = [i for i, a in enumerate(audible) if a]
        if run:
            t0 = time.perf_counter()
            outputs = self.recognizer.forward([torch.from_numpy(windows[i]) for i in run])
            probs[run] = torch.softmax(torch.stack(outputs).float(), -1).numpy()
            self.compute.add(time.perf_counter() - t0, len(run))
        for i, a in enumerate(audible):
            if not a:
                probs[i] = self.silence
                self.gated += 1
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

    def _audible(self, window: np.ndarray, end: int) -> bool:
        """Whether ``window`` (ending at sample ``end``) rises ``gate_db`` above the noise floor anywhere;
        always ``True`` with the gate off. The floor learns from each frame once, as the stream passes."""
        if self.gate_db is None:
            return True
        levels = frame_levels_db(window[len(window) % self.frame :], self.frame)
        first_new = max(0, len(levels) - (end - self.floored_to) // self.frame)
        for level in levels[first_new:]:
            self.floor.update(float(level))
        self.floored_to = max(self.floored_to, end - (end - self.floored_to) % self.frame)
        return self.floor.floor is None or float(levels.max()) > self.floor.floor + self.gate_db

    def flush(self, ring: RingBuffer) -> list[Detection]:
        return []
