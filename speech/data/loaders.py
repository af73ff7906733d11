"""From a :class:`~speech.config.TrainConfig` to datasets and loaders: the manifests (prepared first when
``data.prepare`` says how), the label set or CTC vocabulary, composed digit strings, and the bucketing
batch sampler. ``speech train`` and the training benchmark build their data here."""
from __future__ import annotations

import random
import shlex
import sys
from pathlib import Path

import torch

from speech.config import TrainConfig
from speech.data.dataset import AudioDataset, BucketingBatchSampler, DigitStringsDataset, collate
from speech.data.manifest import read_manifest
from speech.text import Vocabulary


def ensure_manifests(cfg: TrainConfig) -> Path:
    """Return ``data.root``; run ``speech prepare <data.prepare> --out root`` first if it has no manifest."""
    root = Path(cfg.data.root)
    manifests = root / cfg.data.fold if cfg.data.fold else root
    if not (manifests / cfg.data.train_manifest).is_file():
        if not cfg.data.prepare:
            raise SystemExit(f"speech train: {root / cfg.data.train_manifest}: no such manifest (set data.root or data.prepare)")
        from speech.cli import main as cli_main

        args = shlex.split(cfg.data.prepare) + ["--out", str(root)]
        print(f"preparing data: speech prepare {' '.join(args)}", file=sys.stderr)
        if cli_main(["prepare"] + args) not in (0, 1):
            raise SystemExit(f"speech train: data preparation failed: speech prepare {' '.join(args)}")
        if not (manifests / cfg.data.train_manifest).is_file():
            raise SystemExit(f"speech train: {manifests / cfg.data.train_manifest}: not written by data.prepare")
    return manifests


def build_datasets(cfg: TrainConfig, rank_zero: bool = True):
    """``(train, valid, test, labels)``; ``test`` is ``None`` when there is no test manifest. A classifier's
    targets index ``labels + model.filler_classes`` (a filler word is its own class, see
    :class:`~speech.models.SpeechModel`); ``labels`` are the reported ones."""
    root = ensure_manifests(cfg)
    d = cfg.data
    sr = cfg.features.sample_rate

    def read(name: str, required: bool = True):
        path = root / name
        if not path.is_file() and not required:
            return []
        rows = read_manifest(path)
        if d.max_items and len(rows) > d.max_items:  # a seeded random slice, in manifest order
            keep = sorted(random.Random(cfg.trainer.seed).sample(range(len(rows)), d.max_items))
            rows = [rows[i] for i in keep]
        return rows

    train_rows = read(d.train_manifest)
    for extra in d.extra_train_manifests:
        train_rows += read_manifest(extra)
    valid_rows, test_rows = read(d.valid_manifest, False), read(d.test_manifest, False)
    if cfg.model.head == "classification":
        fillers = list(cfg.model.filler_classes)
        labels = list(d.labels) if d.labels else sorted({r.label for r in train_rows if r.label is not None} - set(fillers))
        if fillers and ("_unknown_" not in labels or set(fillers) & set(labels) or len(set(fillers)) < len(fillers)):
            raise SystemExit("speech train: model.filler_classes must be distinct words outside data.labels, "
                             "and data.labels must hold _unknown_ (what they are reported as)")
        index = {l: i for i, l in enumerate(labels + fillers)}
        unknown = index.get("_unknown_")

        def class_of(u) -> str | None:  # a filler: a row labelled so, or an _unknown_ row whose word it is
            return u.text if u.label == "_unknown_" and u.text in fillers else u.label

        missing = sorted(set(fillers) - {class_of(r) for r in train_rows})
        if missing:
            raise SystemExit(f"speech train: model.filler_classes: no training clip holds {', '.join(missing)}")

        def encode(u):
            name = class_of(u)
            if name in index:
                return index[name]
            if unknown is not None:
                return unknown
            raise ValueError(f"{u.audio_filepath}: label {u.label!r} is not in the label set {labels}")

        keep = lambda rows: [r for r in rows if r.label in index or unknown is not None]  # noqa: E731
        make = lambda rows: AudioDataset(keep(rows), sr, encode, d.clip_seconds, d.cache_dir) if rows else None  # noqa: E731
        train = make(train_rows)
        if d.stream_windows > 0 and train is not None:
            from speech.data.windows import StreamWindowsDataset

            # a filler word is a word of its own there: whole in a window it keeps its class, cut it is partial
            train = StreamWindowsDataset(train, labels, d.stream_windows, cfg.trainer.seed, d.partial_command)
        return train, make(valid_rows), make(test_rows), labels
    vocab = Vocabulary.characters() if cfg.model.vocabulary == "char" else Vocabulary.words_from(
        [transcript_of(r) for r in train_rows])
    encode_text = lambda u: vocab.encode(transcript_of(u))  # noqa: E731
    make = lambda rows: AudioDataset(rows, sr, encode_text, None, d.cache_dir) if rows else None  # noqa: E731
    train, valid, test = make(train_rows), make(valid_rows), make(test_rows)
    if d.compose == "digit_strings":
        seed = cfg.trainer.seed
        compose = lambda ds, size, s: DigitStringsDataset(  # noqa: E731
            ds, vocab, size, s, d.min_digits, d.max_digits) if ds is not None else None
        train = compose(train, d.train_size, seed)
        valid = compose(valid, d.eval_size, seed + 1)
        test = compose(test, d.eval_size, seed + 2)
    elif d.compose != "none":
        raise ValueError(f"data.compose must be none or digit_strings, got {d.compose!r}")
    return train, valid, test, vocab.tokens


def transcript_of(u) -> str:
    """A row's CTC target: its ``text``, else its label, except that ``_silence_``-style labels are empty."""
    if u.text is not None:
        return u.text
    return "" if u.label.startswith("_") else u.label


def make_loader(dataset, cfg: TrainConfig, shuffle: bool, world: int = 1, rank: int = 0):
    sampler = BucketingBatchSampler(dataset.lengths(), cfg.data.batch_size, shuffle, cfg.trainer.seed, world, rank)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.data.num_workers,
        persistent_workers=cfg.data.num_workers > 0,
    )
    return loader, sampler
