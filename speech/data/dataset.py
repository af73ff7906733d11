"""Datasets, collation and batch sampling for training and evaluation.

Audio is decoded once into a :class:`DecodedAudioCache` (int16, optionally a memory-mapped file reused
across runs), so later epochs never touch WAV files.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from speech.audio import AudioError, load_audio
from speech.data.manifest import Utterance


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    except OSError:
        return -1, -1


class DecodedAudioCache:
    """All clips of a manifest decoded once to int16 at one sample rate, stored end to end.

    With ``cache_dir`` the samples go to a memory-mapped file keyed by the clip list and rate, so a second
    run (or a second process) reads them without decoding and without holding float copies in RAM.
    Clips that fail to load are reported on stderr (one line each) and left out: see :attr:`kept`.
    """

    def __init__(self, utterances: Sequence[Utterance], sample_rate: int, cache_dir: str | None = None, verbose: bool = True):
        self.sample_rate = sample_rate
        key = hashlib.sha1(  # clip list, rate, and each file's size and modification time
            json.dumps([sample_rate] + [(u.audio_filepath, u.offset, u.duration, *_stat(u.audio_filepath))
                                        for u in utterances]).encode()
        ).hexdigest()[:16]
        paths = None
        if cache_dir:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            paths = Path(cache_dir) / f"audio_{key}.int16", Path(cache_dir) / f"audio_{key}.json"
            if paths[0].is_file() and paths[1].is_file():
                index = json.loads(paths[1].read_text())
                self.kept, self.offsets = index["kept"], np.asarray(index["offsets"], dtype=np.int64)
                self.samples = _map(paths[0])
                return
        chunks, self.kept, offsets, total = [], [], [0], 0
        # with a cache_dir each clip goes straight to the file: holding the chunks and then their
        # concatenation peaked at 3x the int16 size (9 GiB for Speech Commands; tools/bench_train.py)
        tmp = paths[0].with_suffix(f".tmp{os.getpid()}") if paths is not None else None
        out = open(tmp, "wb") if tmp is not None else None
        bar = tqdm(total=len(utterances), desc="decoding audio", unit="clip", leave=False, mininterval=1.0,
                   disable=None if verbose and len(utterances) >= 2000 else True)  # None: on a terminal only
        try:
            for i, utt in enumerate(utterances):
                bar.update(1)
                try:
                    wave = load_audio(utt.audio_filepath, sample_rate, offset=utt.offset,
                                      duration=utt.duration if utt.offset else None)
                except AudioError as err:
                    print(f"skipping {err}", file=sys.stderr)
                    continue
                chunk = (wave.clamp(-1, 1) * 32767).round().to(torch.int16).numpy()
                if out is not None:
                    out.write(chunk.tobytes())
                else:
                    chunks.append(chunk)
                self.kept.append(i)
                total += len(chunk)
                offsets.append(total)
        except BaseException:
            if out is not None:
                out.close()
                tmp.unlink(missing_ok=True)
            raise
        bar.close()
        self.offsets = np.asarray(offsets, dtype=np.int64)
        if paths is not None:
            out.close()
            os.replace(tmp, paths[0])
            tmp_index = paths[1].with_suffix(f".tmp{os.getpid()}")
            tmp_index.write_text(json.dumps({"kept": self.kept, "offsets": self.offsets.tolist()}))
            os.replace(tmp_index, paths[1])
            self.samples = _map(paths[0])
        else:
            self.samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def __len__(self) -> int:
        return len(self.kept)

    def __getitem__(self, i: int) -> torch.Tensor:
        """Clip ``i`` (of the kept clips) as float32 ``(samples,)``."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return torch.from_numpy(np.asarray(self.samples[a:b], dtype=np.float32) / 32768.0)

    def length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])


def _map(path: Path) -> np.ndarray:
    """Memory-map an int16 cache file (numpy cannot map an empty one: no clip could be decoded)."""
    return np.memmap(path, dtype=np.int16, mode="r") if path.stat().st_size else np.zeros(0, dtype=np.int16)


def fit_to_length(wave: torch.Tensor, samples: int) -> torch.Tensor:
    """Centre ``wave`` in ``samples`` (zero padding both sides), or take its centre when longer."""
    n = len(wave)
    if n == samples:
        return wave
    if n > samples:
        start = (n - samples) // 2
        return wave[start : start + samples]
    left = (samples - n) // 2
    return torch.nn.functional.pad(wave, (left, samples - n - left))


class AudioDataset(Dataset):
    """Clips of a manifest with their targets. ``encode(utterance)`` gives the target: a class index
    (classification) or a list of token ids (CTC). ``clip_seconds`` centres/crops every clip to a fixed
    length (the classifier's window). Items: ``(waveform (samples,), target)``."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        sample_rate: int,
        encode: Callable[[Utterance], int | list[int]],
        clip_seconds: float | None = None,
        cache_dir: str | None = None,
    ):
        self.cache = DecodedAudioCache(utterances, sample_rate, cache_dir)
        self.utterances = [utterances[i] for i in self.cache.kept]
        self.targets = [encode(u) for u in self.utterances]
        self.clip_samples = int(round(clip_seconds * sample_rate)) if clip_seconds else None

    def __len__(self) -> int:
        return len(self.utterances)

    def lengths(self) -> list[int]:
        if self.clip_samples:
            return [self.clip_samples] * len(self)
        return [self.cache.length(i) for i in range(len(self))]

    def __getitem__(self, i: int):
        wave = self.cache[i]
        if self.clip_samples:
            wave = fit_to_length(wave, self.clip_samples)
        return wave, self.targets[i]


class DigitStringsDataset(Dataset):
    """Connected digit strings built on the fly from single-digit clips of one speaker.

    Each item joins ``min_digits``..``max_digits`` clips of one speaker (drawn in proportion to their clips,
    so a few real speakers with many clips weigh as much as many synthesized voices) with random gaps
    (``gap_ms``), a random level per digit (``level_db``), and leading/trailing silence; its text is the
    digit words (``"three one four"``). Items are a pure function of ``(seed, epoch, index)``, so a
    validation or test set is fixed and training sees new strings each epoch.
    """

    def __init__(
        self,
        words: AudioDataset,
        vocabulary,
        size: int,
        seed: int,
        min_digits: int = 2,
        max_digits: int = 7,
        gap_ms: tuple[float, float] = (50.0, 400.0),
        level_db: float = 6.0,
    ):
        self.words, self.vocabulary, self.size, self.seed = words, vocabulary, size, seed
        self.min_digits, self.max_digits, self.gap_ms, self.level_db = min_digits, max_digits, gap_ms, level_db
        self.epoch = 0
        self.by_speaker: dict[str, list[int]] = {}
        for i, u in enumerate(words.utterances):
            self.by_speaker.setdefault(u.speaker or "", []).append(i)
        self.speakers = sorted(self.by_speaker)
        self.sample_rate = words.cache.sample_rate

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def lengths(self) -> list[int]:  # approximate, for bucketing: number of digits
        return [self._rng(i).randint(self.min_digits, self.max_digits) for i in range(self.size)]

    def _rng(self, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{self.epoch}:{index}")

    def __getitem__(self, index: int):
        rng = self._rng(index)
        n = rng.randint(self.min_digits, self.max_digits)
        # the speaker of a random clip: speakers weigh by how many clips they have
        clips = self.by_speaker[self.words.utterances[rng.randrange(len(self.words))].speaker or ""]
        sr = self.sample_rate
        pieces, words = [torch.zeros(int(sr * rng.uniform(*self.gap_ms) / 1000))], []
        for _ in range(n):
            i = rng.choice(clips)
            gain = 10 ** (rng.uniform(-self.level_db, self.level_db) / 20)
            pieces.append(self.words.cache[i] * gain)
            pieces.append(torch.zeros(int(sr * rng.uniform(*self.gap_ms) / 1000)))
            words.append(self.words.utterances[i].text or self.words.utterances[i].label)
        text = " ".join(words)
        return torch.cat(pieces), self.vocabulary.encode(text)

    def text(self, index: int) -> str:
        return self.vocabulary.decode(self[index][1])


def collate(batch: list[tuple[torch.Tensor, int | list[int]]]) -> dict[str, torch.Tensor]:
    """Pad a list of ``(waveform, target)`` into ``waveform (B, S)``, ``lengths (B,)`` and targets:
    ``targets (B,)`` for class indices, or ``targets (sum of lengths,)`` + ``target_lengths (B,)`` for
    token sequences (the layout ``torch.nn.functional.ctc_loss`` takes)."""
    lengths = torch.tensor([len(w) for w, _ in batch])
    waveform = torch.zeros(len(batch), int(lengths.max()))
    for i, (w, _) in enumerate(batch):
        waveform[i, : len(w)] = w
    out = {"waveform": waveform, "lengths": lengths}
    if isinstance(batch[0][1], int):
        out["targets"] = torch.tensor([t for _, t in batch])
    else:
        out["targets"] = torch.tensor([i for _, t in batch for i in t], dtype=torch.long)
        out["target_lengths"] = torch.tensor([len(t) for _, t in batch])
    return out


class BucketingBatchSampler(Sampler[list[int]]):
    """Batches of similar length (less padding), in a random order that depends only on
    ``(seed, epoch)``; with ``num_replicas > 1`` each rank takes its own share of the batches
    (all ranks get the same number)."""

    def __init__(
        self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
        num_replicas: int = 1, rank: int = 0, bucket_size: int = 50,
    ):
        self.lengths, self.batch_size, self.shuffle, self.seed = list(lengths), batch_size, shuffle, seed
        self.num_replicas, self.rank, self.bucket_size = num_replicas, rank, bucket_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1000003 + self.epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
            # sort within large buckets so batches hold similar lengths but vary between epochs
            span = self.batch_size * self.bucket_size
            order = [i for s in range(0, len(order), span) for i in sorted(order[s : s + span], key=self.lengths.__getitem__)]
        else:
            order.sort(key=self.lengths.__getitem__)
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        if self.num_replicas > 1:
            extra = (-len(batches)) % self.num_replicas
            batches = batches + batches[:extra]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        n = -(-len(self.lengths) // self.batch_size)
        return -(-n // self.num_replicas)
