"""``speech prepare``: write ``train.jsonl``, ``valid.jsonl`` and ``test.jsonl`` for a data set.

Four sources, one sub-command each, and one for augmentation data::

    speech prepare fsdd            [--root DIR] --out DIR [--split speaker|loso|upstream] ...
    speech prepare speech-commands [--root DIR] --out DIR [--version 1|2] [--task 12|35] ...
    speech prepare folder          --root DIR --out DIR [--speaker-pattern REGEX] ...
    speech prepare commands        --commands "lights on,lights off" --out DIR [--variants 40] ...
    speech prepare rirs            [--root DIR | --archive ZIP] --out DIR [--sets real,simulated] ...

``rirs`` writes a folder of room impulse responses (OpenSLR 28) for ``augment.rir_dir``, not manifests.

Every sub-command writes all three splits into ``--out`` (a split the layout has no data for is
written empty), one row per clip with ``audio_filepath`` (absolute), ``duration`` (from the file
header, nothing is decoded), ``label`` and/or ``text``, and ``speaker``; then it prints a table of
counts per label and split. A file that cannot be read as audio is reported on stderr in one line and
left out. Exit status: 0 all files used, 1 some files were left out (reported), 2 usage error (a
missing ``--root``, an unknown speaker, a failed download...), printed as one line.

This module also holds what the data set modules share: turning a file into a manifest row, writing
and summarising the splits, and downloading/extracting an archive with a size and SHA-256 check.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping

from speech.audio import AudioError, audio_info
from speech.data.manifest import SPLITS, Utterance, write_manifest

EXIT_OK, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 2

# sub-command -> (module, one-line help); each module exposes add_arguments(parser) and run(args)
SOURCES: dict[str, tuple[str, str]] = {
    "fsdd": ("speech.data.fsdd", "Free Spoken Digit Dataset (digits 0-9, 8 kHz)"),
    "speech-commands": ("speech.data.speech_commands", "Google Speech Commands v1/v2, 12- or 35-class task"),
    "folder": ("speech.data.folder", "your own data: one folder of audio files per label"),
    "commands": ("speech.data.custom", "your own commands, no recordings: synthesized commands, unknown speech, noise"),
    "rirs": ("speech.data.rirs", "room impulse responses of OpenSLR 28 (a folder for augment.rir_dir), not a manifest"),
}


class PrepareError(Exception):
    """A problem that stops preparation (bad ``--root``, unknown speaker, failed download).

    ``str(err)`` is one line; the verb prints it and exits with status 2.
    """


# --------------------------------------------------------------------------- the verb


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one sub-command per data source; each source module adds its own options."""
    import importlib

    parser.description = (
        "Write train.jsonl, valid.jsonl and test.jsonl manifests for a data set (rirs: a folder of room impulse "
        "responses for augment.rir_dir). Exit status: 0 ok, "
        "1 some audio files could not be read (reported on stderr, left out), 2 usage error."
    )
    sub = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, (module_name, help_) in SOURCES.items():
        module = importlib.import_module(module_name)
        source_parser = sub.add_parser(
            name, help=help_, description=(module.__doc__ or help_).replace("``", "").strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog="Exit status: 0 ok; 1 some audio files could not be read (one line each on stderr, left out); "
                   "2 usage error (one line on stderr).",
        )
        module.add_arguments(source_parser)
        source_parser.set_defaults(source_run=module.run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen source; a :class:`PrepareError` becomes one line on stderr and status 2."""
    try:
        return int(args.source_run(args) or 0)
    except PrepareError as err:
        print(f"speech prepare {args.source}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


# --------------------------------------------------------------------------- rows


def check_root(root: str | os.PathLike) -> Path:
    """``root`` as an absolute path; raises :class:`PrepareError` when it is not a folder."""
    path = Path(root).expanduser().resolve()
    if not path.exists():
        raise PrepareError(f"{path}: no such folder (--root)")
    if not path.is_dir():
        raise PrepareError(f"{path}: not a folder (--root)")
    return path


def clip_utterance(path: str | os.PathLike, *, label: str | None = None, text: str | None = None,
                   speaker: str | None = None) -> Utterance:
    """A manifest row for one audio file; the duration comes from the header (no decoding).

    Raises :class:`AudioError` for a file that is missing, empty, not audio or has no samples.
    """
    rate, frames, _ = audio_info(path)
    if frames <= 0 or rate <= 0:
        raise AudioError(path, "no audio samples (zero-length signal)")
    return Utterance(str(Path(path).absolute()), round(frames / rate, 6), label=label, text=text, speaker=speaker)


def try_clip(path: str | os.PathLike, bad: list[str], **fields: str | None) -> Utterance | None:
    """:func:`clip_utterance`, but a bad file is reported on stderr, noted in ``bad`` and gives ``None``."""
    try:
        return clip_utterance(path, **fields)
    except AudioError as err:
        report_bad(str(err), bad)
        return None


def report_bad(message: str, bad: list[str]) -> None:
    """Print one ``skipped: ...`` line on stderr and remember it."""
    print(f"skipped: {message}", file=sys.stderr)
    bad.append(message)


# --------------------------------------------------------------------------- writing and summary


def write_splits(out: str | os.PathLike, splits: Mapping[str, list[Utterance]]) -> list[Path]:
    """Write ``train/valid/test.jsonl`` into ``out`` (a missing split is written empty)."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split name(s): {sorted(unknown)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in SPLITS:
        path = out / f"{split}.jsonl"
        write_manifest(path, splits.get(split, []))
        paths.append(path)
    return paths


def count_table(splits: Mapping[str, list[Utterance]], label_order: Iterable[str] = ()) -> str:
    """Counts per label (rows) and split (columns) as a small text table with a total row.

    Rows without a label are counted under their text. Labels in ``label_order`` come first.
    """
    counts = {split: Counter(u.label if u.label is not None else u.text for u in splits.get(split, []))
              for split in SPLITS}
    seen = set().union(*counts.values())
    labels = [lab for lab in label_order if lab in seen]
    labels += sorted(seen - set(labels))
    width = max([len("label"), len("total")] + [len(str(lab)) for lab in labels])
    lines = [f"{'label':<{width}} " + " ".join(f"{split:>7}" for split in SPLITS)]
    for lab in labels:
        lines.append(f"{lab:<{width}} " + " ".join(f"{counts[split][lab]:>7}" for split in SPLITS))
    lines.append(f"{'total':<{width}} " + " ".join(f"{sum(counts[split].values()):>7}" for split in SPLITS))
    return "\n".join(lines)


def split_totals(splits: Mapping[str, list[Utterance]]) -> str:
    """``train 1800, valid 200, test 500``."""
    return ", ".join(f"{split} {len(splits.get(split, []))}" for split in SPLITS)


def finish(out: str | os.PathLike, splits: Mapping[str, list[Utterance]], bad: list[str],
           label_order: Iterable[str] = ()) -> int:
    """Write the splits, print where and the count table, and return the exit status."""
    write_splits(out, splits)
    print(f"wrote {Path(out).absolute()}/{{{','.join(SPLITS)}}}.jsonl")
    print(count_table(splits, label_order))
    return exit_status(bad)


def exit_status(bad: list[str]) -> int:
    """0 when no file was left out, else 1 (after printing how many)."""
    if bad:
        print(f"{len(bad)} file(s) could not be read and were left out (see stderr)")
        return EXIT_SKIPPED
    return EXIT_OK


# --------------------------------------------------------------------------- downloads


def default_cache_dir() -> Path:
    """Where downloads go: ``$SPEECH_CACHE_DIR`` or ``~/.cache/speech``."""
    return Path(os.environ.get("SPEECH_CACHE_DIR", "~/.cache/speech")).expanduser()


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
             timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (via ``dest.part``, renamed when complete and verified).

    An existing ``dest`` is reused when it passes the same checks. ``size`` (bytes) and ``sha256``
    are checked when given; when ``sha256`` is ``None`` the computed digest is printed so that a
    maintainer can pin it. Raises :class:`PrepareError` on a network error or a mismatch.
    """
    dest = Path(dest)
    if dest.is_file():
        verify_download(dest, sha256=sha256, size=size, url=url)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    print(f"downloading {url} -> {dest}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as f:
            _copy_with_progress(response, f, total=size or int(response.headers.get("Content-Length") or 0))
    except (OSError, ValueError) as err:  # URLError, HTTPError and timeouts are OSErrors
        part.unlink(missing_ok=True)
        raise PrepareError(f"{url}: download failed ({' '.join(str(err).split())})") from None
    try:
        verify_download(part, sha256=sha256, size=size, url=url)
    except PrepareError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def _copy_with_progress(source, target, total: int, chunk: int = 1 << 20) -> None:
    """Copy a stream, with a progress bar on stderr when it is a terminal."""
    from tqdm import tqdm

    with tqdm(total=total or None, unit="B", unit_scale=True, desc="download", leave=False, disable=None) as bar:
        for block in iter(lambda: source.read(chunk), b""):
            target.write(block)
            bar.update(len(block))


def verify_download(path: Path, *, sha256: str | None, size: int | None, url: str) -> None:
    """Check a downloaded file's size and SHA-256; print the digest when none is pinned."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise PrepareError(f"{path}: {actual_size} bytes, expected {size} for {url} (incomplete or changed download)")
    digest = sha256_of(path)
    if sha256 is None:
        print(f"sha256 {digest}  {path.name} ({actual_size} bytes; no checksum pinned, pin this one)", file=sys.stderr)
    elif digest != sha256.lower():
        raise PrepareError(f"{path}: sha256 {digest} does not match the expected {sha256} for {url}")


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a ``.zip`` or ``.tar(.gz)`` into ``dest`` and return ``dest``.

    Extraction goes to ``dest.part`` first and is renamed when complete, so an interrupted run
    never leaves a half folder that looks finished; an existing ``dest`` is reused as is. Members
    that would land outside ``dest`` (absolute paths, ``..``, links) raise :class:`PrepareError`.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.is_dir():
        return dest
    part = dest.with_name(dest.name + ".part")
    if part.exists():
        shutil.rmtree(part)
    part.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, part)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, part)
        else:
            raise PrepareError(f"{archive}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(part, ignore_errors=True)
        raise PrepareError(f"{archive}: corrupt archive ({' '.join(str(err).split())})") from None
    except PrepareError:
        shutil.rmtree(part, ignore_errors=True)
        raise
    os.replace(part, dest)
    return dest


def _check_member(name: str, archive: Path) -> None:
    parts = Path(name).parts
    if Path(name).is_absolute() or name.startswith(("/", "\\")) or ".." in parts:
        raise PrepareError(f"{archive}: unsafe member path {name!r}")


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        broken = zf.testzip()
        if broken is not None:
            raise PrepareError(f"{archive}: corrupt member {broken!r} (CRC mismatch)")
        for name in zf.namelist():
            _check_member(name, archive)
        zf.extractall(dest)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            _check_member(member.name, archive)
            if not (member.isfile() or member.isdir()):
                raise PrepareError(f"{archive}: member {member.name!r} is a link or device, not extracted")
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, members=members, filter="data")
        else:  # Python < 3.10.12 / 3.11.4: members were checked above
            tf.extractall(dest, members=members)
