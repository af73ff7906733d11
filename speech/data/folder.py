"""Your own recordings: ``ROOT/<label>/**/*.wav`` (any format soundfile reads), one folder per label.

Rows get ``label`` = the folder name and ``text`` = the folder name too (for a CTC model), except for
labels written like ``_silence_`` (a leading and trailing underscore), which get no text. With
``--speaker-pattern`` (a regular expression with a named group ``speaker``, searched in the file name)
whole speakers go to one split, so valid and test are voices the model never trained on; files the
pattern does not match are split one by one. Without it every label's files are split one by one,
seeded. ``--valid-fraction`` and ``--test-fraction`` are shares of the files (by speaker they are
reached by adding whole speakers, so they are approximate).
"""
from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from speech.audio import AUDIO_EXTENSIONS, find_audio_files
from speech.data.manifest import Utterance
from speech.data.prepare import PrepareError, check_root, finish, try_clip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``speech prepare folder``."""
    parser.add_argument("--root", required=True, help="folder with one sub-folder of audio files per label")
    parser.add_argument("--out", required=True, help="output folder for train/valid/test.jsonl")
    parser.add_argument("--speaker-pattern", help=r"regex with a named group 'speaker', searched in the file name, "
                                                  r"e.g. '^(?P<speaker>[^_]+)_' ; splits whole speakers")
    parser.add_argument("--valid-fraction", type=float, default=0.1, help="share of files for valid (default: %(default)s)")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="share of files for test (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Scan the label folders, split by speaker or by file, write the manifests and print the counts."""
    root = check_root(args.root)
    pattern = compile_speaker_pattern(args.speaker_pattern)
    check_fractions(args.valid_fraction, args.test_fraction)
    bad: list[str] = []
    rows = scan_label_folders(root, pattern, bad)
    if not rows:
        raise PrepareError(f"{root}: no audio files in label sub-folders (expected ROOT/<label>/<file>)")
    if pattern is not None:
        unmatched = sum(u.speaker is None for u in rows)
        if unmatched:
            print(f"--speaker-pattern matched no speaker in {unmatched} of {len(rows)} file names: those are split by file")
        splits = split_by_speaker(rows, args.valid_fraction, args.test_fraction, args.seed)
    else:
        splits = split_by_file(rows, args.valid_fraction, args.test_fraction, args.seed)
    return finish(args.out, splits, bad)


def compile_speaker_pattern(pattern: str | None) -> re.Pattern | None:
    """Compile ``--speaker-pattern``; raise :class:`PrepareError` when it is invalid or has no ``speaker`` group."""
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise PrepareError(f"--speaker-pattern {pattern!r}: invalid regular expression ({err})") from None
    if "speaker" not in compiled.groupindex:
        raise PrepareError(f"--speaker-pattern {pattern!r}: needs a named group (?P<speaker>...)")
    return compiled


def check_fractions(valid: float, test: float) -> None:
    """Raise :class:`PrepareError` unless both fractions are >= 0 and leave something for train."""
    if valid < 0 or test < 0 or valid + test >= 1:
        raise PrepareError(f"--valid-fraction {valid} and --test-fraction {test} must be >= 0 and sum to less than 1")


def label_text(label: str) -> str | None:
    """The ``text`` of a label: the label itself, or ``None`` for special labels like ``_silence_``."""
    return None if len(label) > 1 and label.startswith("_") and label.endswith("_") else label


def scan_label_folders(root: Path, pattern: re.Pattern | None, bad: list[str]) -> list[Utterance]:
    """A row for every readable audio file under ``root/<label>/`` (hidden folders skipped)."""
    loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
    if loose:
        print(f"{root}: {len(loose)} audio file(s) directly in the root have no label folder: left out")
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in find_audio_files(folder):
            match = pattern.search(path.name) if pattern is not None else None
            speaker = match["speaker"] if match and match["speaker"] else None
            utt = try_clip(path, bad, label=folder.name, text=label_text(folder.name), speaker=speaker)
            if utt is not None:
                rows.append(utt)
    return rows


def assign_groups(groups: dict[str, list[Utterance]], valid_fraction: float, test_fraction: float,
                  seed: int) -> dict[str, list[Utterance]]:
    """Shuffle the groups (seeded) and fill test, then valid, up to their share of the rows; the rest is train.

    A group goes to test (valid) while test (valid) holds fewer rows than its target, so whole
    groups stay together and a non-zero fraction always gets at least one group. Train keeps at
    least one group.
    """
    total = sum(map(len, groups.values()))
    targets = {"test": test_fraction * total, "valid": valid_fraction * total}
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    splits: dict[str, list[Utterance]] = {"train": [], "valid": [], "test": []}
    for position, key in enumerate(keys):
        last = position == len(keys) - 1
        split = "train"
        for candidate in ("test", "valid"):
            if targets[candidate] > 0 and len(splits[candidate]) < targets[candidate] and not (last and not splits["train"]):
                split = candidate
                break
        splits[split] += groups[key]
    return {split: sorted(rows, key=lambda u: u.audio_filepath) for split, rows in splits.items()}


def split_by_file(rows: list[Utterance], valid_fraction: float, test_fraction: float,
                  seed: int) -> dict[str, list[Utterance]]:
    """Per label, split the files one by one (seeded), so every label has its share in each split."""
    by_label: dict[str, list[Utterance]] = {}
    for utt in rows:
        by_label.setdefault(utt.label, []).append(utt)
    splits: dict[str, list[Utterance]] = {"train": [], "valid": [], "test": []}
    for label in sorted(by_label):
        groups = {utt.audio_filepath: [utt] for utt in by_label[label]}
        for split, part in assign_groups(groups, valid_fraction, test_fraction, seed).items():
            splits[split] += part
    return splits


def split_by_speaker(rows: list[Utterance], valid_fraction: float, test_fraction: float,
                     seed: int) -> dict[str, list[Utterance]]:
    """Whole speakers to one split; rows without a speaker are their own group (split by file)."""
    groups: dict[str, list[Utterance]] = {}
    for utt in rows:
        key = f"speaker:{utt.speaker}" if utt.speaker is not None else f"file:{utt.audio_filepath}"
        groups.setdefault(key, []).append(utt)
    return assign_groups(groups, valid_fraction, test_fraction, seed)
