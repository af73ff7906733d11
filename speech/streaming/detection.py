"""Command detection on a stream of classifier posteriors.

:class:`CommandSpotter` scores the latest model window every hop; :class:`RecognizeCommands` smooths the
posteriors (TensorFlow's ``recognize_commands``) and decides when a command fires; a :class:`Detection`
is what comes out of every stage (commands here, utterances in :mod:`speech.streaming.utterances`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from speech.streaming.buffers import NoiseFloor, RingBuffer, frame_levels_db

SILENCE, UNKNOWN = "_silence_", "_unknown_"
NEVER_FIRE = (SILENCE, UNKNOWN)
DEFAULT_GATE_DB = 10.0  # the command spotter's energy gate: a window must rise this far above the noise floor
SKIPPING = ("off", "quiet", "suppressed")  # the command spotter's hop skipping (CommandSpotter)
# what `speech listen` and Model.stream run (exact at their threshold); make_stage's own default, "quiet", keeps a
# threshold sweep replayed on the smoother's posteriors (speech bench detection) equal to live runs at every threshold
LISTEN_SKIPPING = "suppressed"


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
    """Time spent in the model: ``seconds`` (wall clock), ``cpu_seconds`` (CPU time of the calling thread,
    which on a busy machine is what the model itself cost), ``calls`` (windows or utterances scored) and
    ``batches`` (model invocations; a batch may hold several windows)."""

    def __init__(self):
        self.seconds, self.cpu_seconds, self.calls, self.batches = 0.0, 0.0, 0, 0

    def add(self, seconds: float, calls: int = 1, cpu_seconds: float = 0.0) -> None:
        self.seconds += seconds
        self.cpu_seconds += cpu_seconds
        self.calls += calls
        self.batches += 1


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


def live_threshold(operating_point: dict, threshold: float | None = None) -> float:
    """The smoothing threshold in force on a stream: ``threshold`` when given, else the model's saved
    operating point (``operating_point["threshold"]``), else :class:`SmoothingConfig`'s default (0.5).
    A false-accept rate instead: :func:`threshold_for_false_accepts`."""
    if threshold is not None:
        return threshold
    return float(operating_point.get("threshold", 0.0)) or SmoothingConfig.detection_threshold


def threshold_for_false_accepts(operating_point: dict, per_hour: float, smoothing: SmoothingConfig | None = None,
                                hop_ms: float | None = None, on_warning: Callable[[str], None] | None = None) -> dict:
    """The row of the model's saved DEV curve (``operating_point["dev_curve"]``: ``{"threshold",
    "false_accepts_per_hour", "hit_rate"}`` per threshold of the sweep it was calibrated on,
    ``recipes/commands/calibrate_stream.py``) with the lowest threshold whose false accepts per hour of
    other speech were at most ``per_hour`` there (the least strict one within that rate), with ``"met":
    True``; when none was that low, the row with the fewest, ``"met": False`` (said through
    ``on_warning``). The curve holds for the smoothing it was measured with (``operating_point
    ["smoothing"]``): ``smoothing`` and ``hop_ms``, when given, must match it. ValueError (one line): a
    negative rate, no curve saved, or other smoothing."""
    if per_hour < 0:
        raise ValueError("the false-accept rate must be >= 0 per hour")
    curve = operating_point.get("dev_curve") if isinstance(operating_point, dict) else None
    rows = sorted((r for r in curve or [] if r.get("false_accepts_per_hour") is not None), key=lambda r: r["threshold"])
    if not rows:
        raise ValueError("this model has no false-accept curve saved (recipes/commands/calibrate_stream.py "
                         "saves one with the operating point); give a threshold instead")
    if smoothing is not None:
        saved = operating_point.get("smoothing") or {}
        now = {"average_window_ms": smoothing.average_window_ms, "suppression_ms": smoothing.suppression_ms,
               "minimum_count": smoothing.minimum_count, **({} if hop_ms is None else {"hop_ms": hop_ms})}
        differ = [f"{k} {now[k]:g} (curve: {saved[k]:g})" for k in now if k in saved and float(saved[k]) != float(now[k])]
        if differ:
            raise ValueError(f"a false-accept rate holds for the smoothing its DEV curve was measured with; here "
                             f"{', '.join(differ)}: give a threshold instead")
    within = [r for r in rows if r["false_accepts_per_hour"] <= per_hour]
    if within:
        return {**within[0], "met": True}
    row = {**min(rows, key=lambda r: (r["false_accepts_per_hour"], -r["hit_rate"])), "met": False}
    if on_warning is not None:
        on_warning(f"no threshold of the model's DEV curve kept to {per_hour:g} false accepts per hour; "
                   f"using {row['threshold']:g}, which had {row['false_accepts_per_hour']:g}")
    return row


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

    def threshold(self, label: str) -> float:
        """The averaged score ``label`` needs to fire (one for every label here)."""
        return self.config.detection_threshold

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
        if self.last_label is not None and (label != self.last_label or score < self.threshold(self.last_label)):
            self.armed = True
        if label in self.ignore or score < self.threshold(label):
            return None
        if (time_s - self.last_time) * 1000 < c.suppression_ms:
            return None
        if label == self.last_label and not self.armed:
            return None
        self.last_label, self.last_time, self.armed = label, time_s, False
        return label, score


class CommandSpotter:
    """Classifier stage: every ``hop_seconds`` the latest window (``window_seconds`` of the model) gets a
    posterior ``(classes,)`` and :class:`RecognizeCommands` smooths them. ``process(ring)`` handles every hop
    whose window end the ring has reached and returns the detections (``new``, the samples just written,
    is not needed: the ring has them). The model runs only where it can change what the smoother decides:

    - **energy gate** (``gate_db``, None: off): a window whose every 20 ms frame is within ``gate_db`` of
      the noise floor (minimum statistics over 3 s) holds nothing to hear; it gets the ``_silence_``
      posterior (models without that class are never gated).
    - **hop skipping** (``skipping``, one of :data:`SKIPPING`): with ``quiet`` (the default here), while
      the last posterior the smoother got gives every command less than ``QUIET_LEVEL``, only every
      ``QUIET_STRIDE``-th audible window is scored; a window left out gets the posterior of the next window
      the smoother sees, or, when that one is no longer quiet, is scored after all (in one batch with the
      others left out). With ``suppressed``, also the windows inside the suppression time after a
      detection (where nothing can fire) are left out; the first window after it is scored, and when it is
      not quiet, so are the windows of the averaging window before it, or all of them when it shows the
      detected command again (so that a repeated command re-arms as it would). The smoother sees every
      hop, in order; a skipped hop reaches it a few hops later (with the default smoothing a quiet or
      suppressed hop cannot fire, so no detection comes later). ``quiet`` depends on the posteriors only,
      so a threshold sweep replayed on what the smoother saw (``speech bench detection``) stays the sweep
      of live runs; ``suppressed`` (:data:`LISTEN_SKIPPING`) depends on the detections and so on the
      threshold: it gives the detections of ``off`` at the threshold it ran with, and posteriors that a
      sweep must not be replayed on.

    ``compute`` meters the model; ``scored`` / ``gated`` / ``held`` count the hops the model ran on, the
    gate silenced and that took a neighbour's posterior.
    """

    GATE_FRAME_MS = 20.0
    QUIET_LEVEL = 0.05  # a posterior that gives every command less than this is quiet
    QUIET_STRIDE = 3  # while quiet, every QUIET_STRIDE-th audible window is scored

    def __init__(self, recognizer, hop_seconds: float = 0.1, smoothing: SmoothingConfig | None = None,
                 gate_db: float | None = None, skipping: str = "quiet"):
        if skipping not in SKIPPING:
            raise ValueError(f"hop skipping must be one of {', '.join(SKIPPING)}, not {skipping!r}")
        self.recognizer = recognizer
        self.rate = recognizer.sample_rate
        self.window = int(round(recognizer.window_seconds * self.rate))
        self.hop = max(1, int(round(hop_seconds * self.rate)))
        self.smoother = RecognizeCommands(recognizer.labels, smoothing)
        self.next_end = self.hop
        self.recent: list[tuple[int, np.ndarray]] = []  # (window end, probabilities) in the averaging window
        self.compute = ComputeMeter()
        labels = list(recognizer.labels)
        self.commands = np.array([i for i, label in enumerate(labels) if label not in NEVER_FIRE], dtype=np.int64)
        self.skipping = skipping if len(self.commands) > 0 else "off"
        self.gate_db = gate_db if SILENCE in labels else None
        self.silence = np.zeros(len(labels), dtype=np.float32)
        if SILENCE in labels:
            self.silence[labels.index(SILENCE)] = 1.0
        self.frame = max(1, int(round(self.rate * self.GATE_FRAME_MS / 1000)))
        self.floor = NoiseFloor(round(250 / self.GATE_FRAME_MS), 3.0, 4)
        self.levels = np.zeros(0, dtype=np.float64)  # dB of whole frames, the first one is frame `levels_from`
        self.levels_from = 0
        self.floored = 0  # frames that have updated the floor
        self.pending: list[tuple[int, bool, bool]] = []  # skipped hops: (window end, audible, after a detection)
        self.last_quiet = True  # the last posterior the smoother got was quiet
        self.suppressed_until = -1  # window ends before this cannot fire (after a detection)
        self.scored = self.gated = self.held = 0

    def ring_seconds(self) -> float:
        c = self.smoother.config
        return self.window / self.rate + (c.average_window_ms + c.suppression_ms) / 1000 + 1.0

    def process(self, ring: RingBuffer, new: np.ndarray | None = None) -> list[Detection]:
        found: list[Detection] = []
        if self.gate_db is not None:
            self._add_levels(ring)
        while self.next_end <= ring.total:
            end, self.next_end = self.next_end, self.next_end + self.hop
            audible = self._audible(end)
            if self.skipping == "suppressed" and end < self.suppressed_until:
                self.pending.append((end, audible, True))
                continue
            if not audible:
                found += self._resolve(ring, self.silence)
                self.gated += 1
                found += self._feed(ring, end, self.silence)
                continue
            if (self.skipping != "off" and self.last_quiet and len(self.pending) < self.QUIET_STRIDE - 1
                    and not any(after for _, _, after in self.pending)):
                self.pending.append((end, True, False))
                continue
            probs = self._score(ring, [end])[0]
            found += self._resolve(ring, probs, end)
            found += self._feed(ring, end, probs)
        return found

    def flush(self, ring: RingBuffer) -> list[Detection]:
        """The end of the stream: the hops still skipped reach the smoother (with the last posterior)."""
        return self._resolve(ring, self.recent[-1][1] if self.recent else self.silence)

    # -- the model, the gate and the smoother -----------------------------------------------------------
    def _score(self, ring: RingBuffer, ends: list[int]) -> np.ndarray:
        """Posteriors ``(len(ends), classes)`` of the windows ending at ``ends``, in one model batch."""
        windows = [torch.from_numpy(ring.read(e - self.window, e)) for e in ends]
        t0, c0 = time.perf_counter(), time.thread_time()
        probs = torch.softmax(torch.stack(self.recognizer.forward(windows)).float(), -1).numpy()
        self.compute.add(time.perf_counter() - t0, len(ends), time.thread_time() - c0)
        self.scored += len(ends)
        return probs

    def _quiet(self, probs: np.ndarray) -> bool:
        return float(probs[self.commands].max()) < self.QUIET_LEVEL if len(self.commands) else True

    def _resolve(self, ring: RingBuffer, following: np.ndarray, end: int | None = None) -> list[Detection]:
        """Send the skipped hops to the smoother before the hop ending at ``end`` (posterior ``following``;
        ``end`` None: a gated hop or the end of the stream). Skipped hops are scored when ``following``
        is not quiet (see the class docstring); the others get ``following`` (inaudible ones ``_silence_``)."""
        if not self.pending:
            return []
        pending, self.pending = self.pending, []
        rescore, quiet = set(), self._quiet(following)
        if end is not None and not quiet:
            keep = self.smoother.config.average_window_ms / 1000 * self.rate
            same = self.recognizer.labels[int(self.commands[np.argmax(following[self.commands])])] == self.smoother.last_label
            rescore = {e for e, audible, after in pending if audible and (not after or same or e > end - keep)}
        scored = dict(zip(sorted(rescore), self._score(ring, sorted(rescore)))) if rescore else {}
        found = []
        for e, audible, _ in pending:
            if e in scored:
                probs = scored[e]
            elif not audible:
                probs = self.silence
                self.gated += 1
            else:  # the next posterior when it is quiet, else the last one the smoother got
                probs = following if quiet or not self.recent else self.recent[-1][1]
                self.held += 1
            found += self._feed(ring, e, probs)
        return found

    def _feed(self, ring: RingBuffer, end: int, probs: np.ndarray) -> list[Detection]:
        keep = self.smoother.config.average_window_ms / 1000 * self.rate
        self.recent = [(e, q) for e, q in self.recent if e > end - keep] + [(end, probs)]
        self.last_quiet = self._quiet(probs)
        hit = self.smoother.process(end / self.rate, probs)
        if hit is None:
            return []
        label, score = hit
        self.suppressed_until = end + int(self.smoother.config.suppression_ms / 1000 * self.rate)
        index = self.recognizer.labels.index(label)
        best_end = max(self.recent, key=lambda item: item[1][index])[0]
        start = best_end - self.window
        return [Detection(end / self.rate, label, score, max(start, 0) / self.rate, best_end / self.rate,
                          audio=ring.read(max(start, 0), best_end))]

    def _add_levels(self, ring: RingBuffer) -> None:
        """Levels of the whole frames written since the last call (frames at multiples of ``frame``);
        only the frames a coming window can hold are kept."""
        done = self.levels_from + len(self.levels)
        oldest = -(-(ring.total - ring.capacity) // self.frame)  # the first whole frame still in the ring
        if done < oldest:  # a block longer than the ring: the frames in between are gone
            self.levels, self.levels_from, done = self.levels[:0], oldest, oldest
            self.floored = max(self.floored, oldest)
        whole = ring.total // self.frame
        if whole > done:
            new = frame_levels_db(ring.read(done * self.frame, whole * self.frame), self.frame)
            self.levels = np.concatenate([self.levels, new])
        first = min(max(0, (self.next_end - self.window) // self.frame), self.floored)
        if first > self.levels_from:
            self.levels = self.levels[first - self.levels_from :]
            self.levels_from = first

    def _audible(self, end: int) -> bool:
        """Whether the window ending at sample ``end`` rises ``gate_db`` above the noise floor in a frame;
        always ``True`` with the gate off. The floor learns from each frame once, as the stream passes."""
        if self.gate_db is None:
            return True
        last = end // self.frame  # frames [.., last) end by `end`
        for level in self.levels[self.floored - self.levels_from : last - self.levels_from]:
            self.floor.update(float(level))
        self.floored = max(self.floored, last)
        first = max(0, -(-(end - self.window) // self.frame))  # frames that start inside the window
        inside = self.levels[max(0, first - self.levels_from) : last - self.levels_from]
        return self.floor.floor is None or (len(inside) > 0 and float(inside.max()) > self.floor.floor + self.gate_db)
