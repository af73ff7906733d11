"""Training windows cut the way a live recognizer sees speech: 1 s windows at random offsets of a short
stream of words, labelled by what the window holds.

A live recognizer (``speech listen``) scores a 1 s window every 100 ms. Most windows it sees are not a
centred command: they hold half a word, the end of one word and the start of the next, or an ordinary word
that is no command. :class:`StreamWindowsDataset` trains on such windows. For a share of the training items
(``probability``) it places the item's clip (the *target*) in a window with a random offset, beside the
clips of random neighbours before and after it (random pauses, random levels), and labels the window
(:func:`window_label`):

- exactly one command whose spoken part lies (almost) whole in the window (``whole`` of its spoken part,
  :func:`speech.data.streams.active_span`) -> that command, whatever else is around it;
- two whole commands -> ignored (``IGNORE``: no loss);
- a command cut by the window's edge (``partial``..``whole`` of it inside) -> ``_unknown_``
  (``partial_label="unknown"``: a part of a command is not the command) or ignored (``"ignore"``);
- otherwise (speech that is no command) -> ``_unknown_``.

The other items are the plain centred clips. Windows are a pure function of ``(seed, epoch, index)``.
The same :func:`~speech.data.streams.active_span` finds the spoken parts here and in the streams of the
detection benchmark (:func:`~speech.data.streams.build_stream`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from speech.data.dataset import AudioDataset
from speech.data.streams import active_span

IGNORE = -100  # torch.nn.functional.cross_entropy's ignore_index


@dataclass(frozen=True)
class Placed:
    """A clip in a window: its class index, whether that is a command, and how much of its spoken part
    (0..1) lies inside the window."""

    target: int
    is_command: bool
    coverage: float


def window_label(placed: Sequence[Placed], unknown: int, partial_label: str = "unknown",
                 whole: float = 0.9, partial: float = 0.15) -> int:
    """The class of a window holding ``placed`` clips (rules in the module docstring); ``IGNORE`` for no loss."""
    whole_commands = {p.target for p in placed if p.is_command and p.coverage >= whole}
    if len(whole_commands) == 1:
        return whole_commands.pop()
    if len(whole_commands) > 1:
        return IGNORE
    if any(p.is_command and partial <= p.coverage < whole for p in placed):
        return unknown if partial_label == "unknown" else IGNORE
    return unknown


class StreamWindowsDataset(Dataset):
    """Items of ``clips`` (an :class:`~speech.data.dataset.AudioDataset` with a fixed ``clip_seconds``),
    a ``probability`` share of them turned into stream windows (module docstring). Items:
    ``(waveform (clip_samples,), class index or IGNORE)``.

    ``labels``: the class names (``_unknown_`` must be one; ``_silence_`` clips stay plain and are never
    neighbours). ``partial_share``: share of stream windows whose target is cut by the window's edge.
    ``neighbours``: chance of a neighbour on each side; ``gap``: the pause between spoken parts, seconds;
    ``level_db``: neighbours' level against the target's, +-dB.
    """

    def __init__(
        self,
        clips: AudioDataset,
        labels: Sequence[str],
        probability: float,
        seed: int = 0,
        partial_label: str = "unknown",
        partial_share: float = 0.3,
        neighbours: float = 0.7,
        gap: tuple[float, float] = (0.05, 0.8),
        level_db: float = 6.0,
    ):
        if clips.clip_samples is None:
            raise ValueError("stream windows need data.clip_seconds (the window length)")
        if "_unknown_" not in labels:
            raise ValueError("stream windows need an _unknown_ class (windows of other speech)")
        if partial_label not in ("unknown", "ignore"):
            raise ValueError(f"data.partial_command must be unknown or ignore, got {partial_label!r}")
        self.clips, self.probability, self.seed = clips, probability, seed
        self.partial_label, self.partial_share, self.neighbours = partial_label, partial_share, neighbours
        self.gap, self.level_db = gap, level_db
        self.unknown = list(labels).index("_unknown_")
        silence = list(labels).index("_silence_") if "_silence_" in labels else None
        self.targets = clips.targets
        self.is_command = [t not in (self.unknown, silence) for t in self.targets]
        self.speech = [i for i, t in enumerate(self.targets) if t != silence]
        self.speech_set = set(self.speech)
        sr = clips.cache.sample_rate
        self.sample_rate, self.window = sr, clips.clip_samples
        # spoken part of every clip, once (int16 samples, as stored)
        self.spans = [active_span(np.asarray(clips.cache.samples[clips.cache.offsets[i] : clips.cache.offsets[i + 1]],
                                             dtype=np.float32), sr) if t != silence else (0, 0)
                      for i, t in enumerate(self.targets)]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def lengths(self) -> list[int]:
        return [self.window] * len(self)

    def __getitem__(self, index: int):
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        if index in self.speech_set and rng.random() < self.probability:
            return self.compose(index, rng)
        return self.clips[index]

    def compose(self, index: int, rng: random.Random) -> tuple[torch.Tensor, int]:
        """The stream window of target ``index``: ``(waveform (window,), label)``."""
        sr, w = self.sample_rate, self.window
        a, b = self.spans[index]
        length = b - a
        if rng.random() < self.partial_share and length > 0:  # cut by an edge: 15-80 % of it inside
            inside = int(length * rng.uniform(0.15, 0.8))
            start = inside - length if rng.random() < 0.5 else w - inside  # span start in the window
        else:
            start = rng.randint(0, max(0, w - length))
        wave = torch.zeros(w)
        placed = [self._add(wave, index, start, 1.0)]
        left, right = start, start + length  # the spoken stretch taken so far
        for side in (-1, 1):
            if rng.random() >= self.neighbours:
                continue
            j = self.speech[rng.randrange(len(self.speech))]
            ja, jb = self.spans[j]
            pause = int(rng.uniform(*self.gap) * sr)
            at = left - pause - (jb - ja) if side < 0 else right + pause
            if at + (jb - ja) <= 0 or at >= w:
                continue
            placed.append(self._add(wave, j, at, 10 ** (rng.uniform(-self.level_db, self.level_db) / 20)))
        return wave.clamp_(-1.0, 1.0), window_label(placed, self.unknown, self.partial_label)

    def _add(self, wave: torch.Tensor, i: int, span_start: int, gain: float) -> Placed:
        """Add clip ``i`` to ``wave`` so its spoken part starts at ``span_start``; what of it is inside."""
        clip = self.clips.cache[i]
        a, b = self.spans[i]
        at = span_start - a  # where the clip's first sample goes
        lo, hi = max(0, at), min(len(wave), at + len(clip))
        if hi > lo:
            wave[lo:hi] += clip[lo - at : hi - at] * gain
        inside = max(0, min(len(wave), span_start + b - a) - max(0, span_start))
        return Placed(self.targets[i], self.is_command[i], inside / max(1, b - a))

