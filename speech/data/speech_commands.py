"""Google Speech Commands (v0.01 / v0.02) in the data set's own layout.

Layouts (detected from ``--root``):

- full archive: ``<word>/<speaker>_nohash_<n>.wav`` folders, ``_background_noise_/``,
  ``validation_list.txt`` and ``testing_list.txt``. Listed files go to valid/test, the others to train.
  Listed files that are absent are counted and reported, not fatal. Without the lists the data set's
  own hash rule (10 % valid, 10 % test, by speaker) decides.
- canonical test set (``speech_commands_test_set_v0.02``): ``<word>/``, ``_unknown_/<word>_<speaker>_nohash_<n>.wav``
  and ``_silence_/<n>.wav`` with no lists. Everything goes to test.jsonl.

Tasks (``--task``):

- 12 (default): the ten commands, ``_unknown_`` and ``_silence_``, as in the data set's paper and
  TensorFlow's recipe. ``_unknown_`` rows are a seeded sample of the other words, as many per split
  as an average command class has in that split (so about 1/12 of it). ``_silence_`` rows are 1 s
  clips cut at seeded places from ``_background_noise_`` (train, valid and test cut from the first
  80 %, next 10 % and last 10 % of each recording), scaled to levels spread like the canonical test
  set's ``_silence_`` clips, written to ``OUT/silence/``; the same number per split as ``_unknown_``.
  ``--noise-dir`` names another noise folder; without noise recordings there are no silence rows
  (a note says so). In the test layout the folders give the labels as they are.
- 35: every word folder is a class (35 in v0.02, 30 in v0.01: whatever is there); no ``_unknown_``
  and no ``_silence_``. In the test layout ``_unknown_`` clips get their word from the file name and
  ``_silence_`` clips are left out (the 35-word task has no silence class).

Rows: ``label``; ``text`` = the spoken word (also for ``_unknown_``, not for ``_silence_``);
``speaker`` = the id before ``_nohash_``. Without ``--root`` the archive for ``--version`` (or with
``--test-set`` the canonical test set) is downloaded into ``--cache-dir``, size and SHA-256 checked.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import random
import re
from pathlib import Path

import numpy as np

from speech.audio import AudioError, find_audio_files, load_audio_native, save_audio
from speech.data.manifest import SPLITS, Utterance
from speech.data.prepare import (
    check_root, default_cache_dir, download, extract_archive, finish, report_bad, try_clip,
)

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
BACKGROUND_NOISE = "_background_noise_"
LIST_FILES = {"valid": "validation_list.txt", "test": "testing_list.txt"}

# Silence clips: 1 s, cut from these parts of each noise recording (so no clip is in two splits),
# with an RMS drawn log-uniformly over about the range of the canonical test set's _silence_ clips.
SILENCE_SECONDS = 1.0
SILENCE_REGIONS = {"train": (0.0, 0.8), "valid": (0.8, 0.9), "test": (0.9, 1.0)}
SILENCE_RMS_RANGE = (1e-3, 0.3)
SILENCE_DIR = "silence"

# The official locations are http://download.tensorflow.org/data/<name>; the same bucket over https:
DOWNLOAD_BASE = "https://storage.googleapis.com/download.tensorflow.org/data/"
# name -> (archive, size in bytes, sha256). Pinned values are those of torchaudio's SPEECHCOMMANDS and
# TensorFlow Datasets' url_checksums; None = unknown, the computed digest is printed for pinning.
ARCHIVES: dict[str, tuple[str, int | None, str | None]] = {
    "1": ("speech_commands_v0.01.tar.gz", 1489096277,
          "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d"),
    "2": ("speech_commands_v0.02.tar.gz", 2428923189,
          "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"),
    "test-1": ("speech_commands_test_set_v0.01.tar.gz", None, None),
    "test-2": ("speech_commands_test_set_v0.02.tar.gz", 112563277,
               "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df"),
}

MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # the data set README's which_set() constant


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``speech prepare speech-commands``."""
    parser.add_argument("--root", help="extracted data set (or canonical test set) folder; downloaded into --cache-dir when left out")
    parser.add_argument("--out", required=True, help="output folder for train/valid/test.jsonl (and silence/ clips)")
    parser.add_argument("--version", choices=("1", "2"), default="2",
                        help="data set version to download (v0.01 or v0.02); with --root the folder is used as it is (default: %(default)s)")
    parser.add_argument("--task", choices=("12", "35"), default="12",
                        help="12: ten commands + _unknown_ + _silence_; 35: every word folder is a class (default: %(default)s)")
    parser.add_argument("--test-set", action="store_true",
                        help="without --root: download the canonical test set of --version instead of the full archive")
    parser.add_argument("--noise-dir", help=f"folder of background noise recordings for the {SILENCE} clips "
                                            f"(default: ROOT/{BACKGROUND_NOISE})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the _unknown_ sampling and the silence cuts (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="download folder (default: $SPEECH_CACHE_DIR or ~/.cache/speech)")


def run(args: argparse.Namespace) -> int:
    """Read the layout, build the rows for the task, write the manifests and print the counts."""
    root = check_root(args.root) if args.root else download_speech_commands(args.version, args.test_set, args.cache_dir)
    task = int(args.task)
    out = Path(args.out)
    bad: list[str] = []
    if is_test_layout(root):
        print(f"{root}: canonical test-set layout (_silence_/_unknown_ folders, no lists): all rows go to test")
        splits = {"train": [], "valid": [], "test": test_layout_rows(root, task, bad)}
    else:
        noise_dir = check_root(args.noise_dir) if args.noise_dir else root / BACKGROUND_NOISE
        splits = full_layout_splits(root, task, out, args.seed, bad, noise_dir)
    order = COMMANDS + (SILENCE, UNKNOWN) if task == 12 else ()
    return finish(out, splits, bad, order)


# --------------------------------------------------------------------------- layout


def is_test_layout(root: Path) -> bool:
    """The canonical test set: ``_silence_`` or ``_unknown_`` folders and no split lists."""
    has_lists = any((root / name).is_file() for name in LIST_FILES.values())
    return not has_lists and ((root / SILENCE).is_dir() or (root / UNKNOWN).is_dir())


def word_folders(root: Path) -> list[Path]:
    """Word folders, sorted; folders starting with ``_`` or ``.`` are not words."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def speaker_of(stem: str) -> str | None:
    """``3cfc6b3a_nohash_2`` -> ``3cfc6b3a`` (``None`` without ``_nohash_``)."""
    return stem.split("_nohash_")[0] if "_nohash_" in stem else None


def word_and_speaker_of_unknown(stem: str) -> tuple[str | None, str | None]:
    """``bed_0ea0e2f4_nohash_1`` (a test-set ``_unknown_`` clip) -> ``("bed", "0ea0e2f4")``."""
    head = speaker_of(stem)
    if head is None or "_" not in head:
        return None, head
    word, speaker = head.rsplit("_", 1)
    return word, speaker


def which_set(filename: str, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """The data set README's stable hash split by speaker: ``"train"``, ``"valid"`` or ``"test"``."""
    hash_name = re.sub(r"_nohash_.*$", "", Path(filename).name)
    hashed = hashlib.sha1(hash_name.encode("utf-8")).hexdigest()
    percentage = (int(hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "valid"
    if percentage < validation_percentage + testing_percentage:
        return "test"
    return "train"


def read_split_lists(root: Path) -> dict[str, set[str]] | None:
    """``{"valid": {...}, "test": {...}}`` of ``word/file.wav`` paths, or ``None`` when there are no lists."""
    if not any((root / name).is_file() for name in LIST_FILES.values()):
        return None
    lists = {}
    for split, name in LIST_FILES.items():
        path = root / name
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        lists[split] = {line.strip().replace("\\", "/") for line in lines if line.strip()}
    return lists


def count_absent(root: Path, lists: dict[str, set[str]]) -> dict[str, int]:
    """How many listed files are not on disk, per list."""
    return {split: sum(not (root / rel).is_file() for rel in listed) for split, listed in lists.items()}


# --------------------------------------------------------------------------- full layout


def full_layout_splits(root: Path, task: int, out: Path, seed: int, bad: list[str],
                       noise_dir: Path | None = None) -> dict[str, list[Utterance]]:
    """Rows of the full archive layout, split by the lists (or the hash rule) and shaped for ``task``.

    ``_silence_`` clips are cut from ``noise_dir`` (default ``root/_background_noise_``).
    """
    lists = read_split_lists(root)
    if lists is None:
        print(f"{root}: no validation_list.txt/testing_list.txt: splitting by the data set's hash rule (10 % valid, 10 % test)")
    else:
        for split, absent in count_absent(root, lists).items():
            if absent:
                print(f"{LIST_FILES[split]}: {absent} of {len(lists[split])} listed files are absent (left out)")
    splits: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    others: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    for folder in word_folders(root):
        word = folder.name
        for path in find_audio_files(folder):
            rel = path.relative_to(root).as_posix()
            split = which_set(rel) if lists is None else (
                "valid" if rel in lists["valid"] else "test" if rel in lists["test"] else "train")
            label = word if task == 35 or word in COMMANDS else UNKNOWN
            utt = try_clip(path, bad, label=label, text=word, speaker=speaker_of(path.stem))
            if utt is not None:
                (splits if label != UNKNOWN else others)[split].append(utt)
    if task == 35:
        return splits
    targets = {split: one_class_share(splits[split]) for split in SPLITS}
    for split in SPLITS:
        picked = sample_unknown(others[split], targets[split], seed, split)
        print(f"{UNKNOWN} {split}: {len(picked)} of {len(others[split])} other-word clips (about one command class)")
        splits[split] += picked
    noise_dir = noise_dir or root / BACKGROUND_NOISE
    noise_files = find_audio_files(noise_dir) if noise_dir.is_dir() else []
    if not noise_files:
        print(f"{noise_dir}: no background noise recordings: no {SILENCE} rows")
        return splits
    silence = make_silence_clips(noise_files, targets, out / SILENCE_DIR, seed, bad)
    for split in SPLITS:
        splits[split] += silence[split]
    print(f"{SILENCE}: {sum(map(len, silence.values()))} clips of {SILENCE_SECONDS:g} s written to {(out / SILENCE_DIR).absolute()}")
    return splits


def one_class_share(known: list[Utterance]) -> int:
    """The mean number of rows per command class present in ``known`` (0 when there are none)."""
    classes = {u.label for u in known}
    return round(len(known) / len(classes)) if classes else 0


def sample_unknown(candidates: list[Utterance], count: int, seed: int, split: str) -> list[Utterance]:
    """A seeded sample of ``count`` rows (all of them when there are fewer), in path order."""
    ordered = sorted(candidates, key=lambda u: u.audio_filepath)
    if count >= len(ordered):
        return ordered
    rng = random.Random(f"{seed}-unknown-{split}")
    return sorted(rng.sample(ordered, count), key=lambda u: u.audio_filepath)


def make_silence_clips(noise_files: list[Path], counts: dict[str, int], out_dir: Path, seed: int,
                       bad: list[str]) -> dict[str, list[Utterance]]:
    """Cut ``counts[split]`` clips of 1 s per split from the noise recordings into ``out_dir``.

    Old ``<split>_<n>.wav`` clips in ``out_dir`` are removed first. Returns the rows per split
    (label ``_silence_``, no text, no speaker).
    """
    noises = []
    for path in noise_files:
        try:
            data, rate = load_audio_native(path, max_duration=None)
        except AudioError as err:
            report_bad(str(err), bad)
            continue
        if len(data) >= int(SILENCE_SECONDS * rate):
            noises.append((data, rate))
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.wav"):
        if re.fullmatch(r"(train|valid|test)_\d+", old.stem):
            old.unlink()
    rows: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    if not noises:
        return rows
    for split in SPLITS:
        rng = random.Random(f"{seed}-silence-{split}")
        for index in range(counts.get(split, 0)):
            data, rate = rng.choices(noises, weights=[len(d) / r for d, r in noises])[0]
            clip = cut_silence_clip(data, rate, SILENCE_REGIONS[split], rng)
            path = out_dir / f"{split}_{index:05d}.wav"
            save_audio(path, clip, rate)
            utt = try_clip(path, bad, label=SILENCE)
            if utt is not None:
                rows[split].append(utt)
    return rows


def cut_silence_clip(noise: np.ndarray, rate: int, region: tuple[float, float], rng: random.Random) -> np.ndarray:
    """One 1 s clip from ``region`` (fractions of the recording; the whole one when the region is
    too short), scaled to a log-uniform RMS in :data:`SILENCE_RMS_RANGE` without clipping."""
    length = int(SILENCE_SECONDS * rate)
    start, stop = int(region[0] * len(noise)), int(region[1] * len(noise))
    if stop - start < length:
        start, stop = 0, len(noise)
    offset = rng.randrange(start, stop - length + 1)
    clip = noise[offset:offset + length].astype(np.float32)
    rms = float(np.sqrt(np.mean(clip**2)))
    peak = float(np.max(np.abs(clip)))
    target = math.exp(rng.uniform(math.log(SILENCE_RMS_RANGE[0]), math.log(SILENCE_RMS_RANGE[1])))
    if rms > 0 and peak > 0:
        clip = clip * min(target / rms, 0.99 / peak)
    return clip


# --------------------------------------------------------------------------- canonical test layout


def test_layout_rows(root: Path, task: int, bad: list[str]) -> list[Utterance]:
    """Rows of the canonical test set: labels from the folders (task 12) or the words (task 35)."""
    rows, dropped_silence = [], 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name == BACKGROUND_NOISE:
            continue
        for path in find_audio_files(folder):
            if folder.name == SILENCE:
                if task == 35:
                    dropped_silence += 1
                    continue
                utt = try_clip(path, bad, label=SILENCE)
            elif folder.name == UNKNOWN:
                word, speaker = word_and_speaker_of_unknown(path.stem)
                if task == 35 and word is None:
                    report_bad(f"{path}: cannot tell the word from the file name (<word>_<speaker>_nohash_<n>.wav)", bad)
                    continue
                utt = try_clip(path, bad, label=UNKNOWN if task == 12 else word, text=word, speaker=speaker)
            else:
                word = folder.name
                label = word if task == 35 or word in COMMANDS else UNKNOWN
                utt = try_clip(path, bad, label=label, text=word, speaker=speaker_of(path.stem))
            if utt is not None:
                rows.append(utt)
    if dropped_silence:
        print(f"{SILENCE}: {dropped_silence} clips left out (the 35-word task has no silence class)")
    return rows


# --------------------------------------------------------------------------- download


def download_speech_commands(version: str, test_set: bool, cache_dir: Path) -> Path:
    """Download and extract the archive of ``version`` (or its canonical test set); returns its folder."""
    key = f"test-{version}" if test_set else version
    name, size, sha256 = ARCHIVES[key]
    archive = download(DOWNLOAD_BASE + name, Path(cache_dir) / name, sha256=sha256, size=size)
    return extract_archive(archive, Path(cache_dir) / name.removesuffix(".tar.gz"))
