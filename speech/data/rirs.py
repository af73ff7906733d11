"""OpenSLR 28 (``rirs_noises.zip``, Apache-2.0): room impulse responses for ``augment.rir_dir``.

Writes the responses the archive's own lists name (``rir_list``: the last field of each line is the
file) into ``--out``, one WAV each, and ``--out/rirs.jsonl`` with one row per file (``rir_id``,
``room_id``, ``set``, the archive path, sample rate, channels, seconds). Then train with
``augment.rir_dir=OUT augment.reverb_prob=0.3``. Sets (``--sets``, comma-separated):

- ``real`` (default): ``real_rirs_isotropic_noises``' measured responses (RWCP, AIR, REVERB 2014);
  the folder also holds noise recordings, which are left out: only what ``rir_list`` names is written.
- ``simulated``: ``simulated_rirs/{small,medium,large}room``, 60,000 image-method responses (large).

``--noise-out DIR`` also writes the noises of ``pointsource_noises/noise_list`` (foreground and
background sounds) to a folder of their own, for ``augment.noise_dir``: never under ``--out``, where
they would be read as rooms. ``--limit N`` takes the first N files of each set's list.

Without ``--root`` or ``--archive``, ``rirs_noises.zip`` is downloaded from openslr.org into
``--cache-dir`` (about 1.3 GB); from the zip only the listed files are read, nothing else is unpacked.
Each file is written through a temporary name, so an interrupted run leaves no half file; files
already in ``--out`` are kept. A listed file missing from the archive is reported and skipped (exit 1).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import zipfile
from pathlib import Path, PurePosixPath

from speech.data.manifest import write_manifest
from speech.data.prepare import EXIT_OK, EXIT_SKIPPED, PrepareError, check_root, default_cache_dir, download

OPENSLR28_URL = "https://www.openslr.org/resources/28/rirs_noises.zip"
OPENSLR28_SHA256: str | None = None  # not computable offline here: the digest is printed on download
TOP = "RIRS_NOISES"
RIR_LISTS = {
    "real": ("real_rirs_isotropic_noises/rir_list",),
    "simulated": tuple(f"simulated_rirs/{size}/rir_list" for size in ("smallroom", "mediumroom", "largeroom")),
}
NOISE_LIST = "pointsource_noises/noise_list"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``speech prepare rirs``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--root", help="an unpacked copy (the folder holding RIRS_NOISES/, or RIRS_NOISES itself)")
    source.add_argument("--archive", help="rirs_noises.zip already on disk")
    parser.add_argument("--out", required=True, help="folder for the responses (augment.rir_dir) and rirs.jsonl")
    parser.add_argument("--sets", default="real", help="real, simulated or both, comma-separated (default: %(default)s)")
    parser.add_argument("--noise-out", help="also write pointsource_noises here (augment.noise_dir); not under --out")
    parser.add_argument("--limit", type=int, default=None, help="at most this many files of each list")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="download folder (default: $SPEECH_CACHE_DIR or ~/.cache/speech)")


class _Source:
    """Reads archive paths (``RIRS_NOISES/...``) from a zip or an unpacked folder."""

    def __init__(self, root: Path | None = None, archive: Path | None = None):
        self.root, self.zip = root, None
        if archive is not None:
            try:
                self.zip = zipfile.ZipFile(archive)
            except (zipfile.BadZipFile, OSError) as err:
                raise PrepareError(f"{archive}: not a readable zip archive ({' '.join(str(err).split())})") from None
            self.names = set(self.zip.namelist())
            self.where = str(archive)
        else:
            self.where = str(root)

    def read(self, name: str) -> bytes | None:
        """The bytes of archive path ``name``, or ``None`` when it is not there."""
        if self.zip is not None:
            if name not in self.names:
                return None
            try:
                return self.zip.read(name)
            except (zipfile.BadZipFile, OSError) as err:
                raise PrepareError(f"{self.where}: {name}: corrupt member ({' '.join(str(err).split())})") from None
        path = self.root / name
        return path.read_bytes() if path.is_file() else None


def _source(args: argparse.Namespace) -> _Source:
    if args.archive:
        return _Source(archive=Path(args.archive))
    if args.root:
        root = check_root(args.root)
        if root.name == TOP and not (root / TOP).is_dir():
            root = root.parent
        if not (root / TOP).is_dir():
            raise PrepareError(f"{root}: no {TOP}/ folder (--root is the unpacked rirs_noises.zip)")
        return _Source(root=root)
    return _Source(archive=download(OPENSLR28_URL, Path(args.cache_dir) / "rirs_noises.zip", sha256=OPENSLR28_SHA256))


def parse_list(text: str) -> list[dict[str, str]]:
    """Rows of a Kaldi ``rir_list`` / ``noise_list``: ``--rir-id X --room-id Y PATH`` -> {rir_id, room_id, path}."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        row = {"path": fields[-1]}
        for key, value in zip(fields[:-1:2], fields[1:-1:2]):
            if key.startswith("--"):
                row[key[2:].replace("-", "_")] = value
        rows.append(row)
    return rows


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _extract(source: _Source, list_name: str, dest: Path, set_name: str, limit: int | None,
             bad: list[str]) -> list[dict]:
    """Write the files one list names into ``dest``, their paths below the list's folder kept."""
    import soundfile as sf

    text = source.read(f"{TOP}/{list_name}")
    if text is None:
        raise PrepareError(f"{source.where}: no {TOP}/{list_name} (not the OpenSLR 28 rirs_noises archive?)")
    base = PurePosixPath(TOP) / PurePosixPath(list_name).parent
    rows = []
    for row in parse_list(text.decode("utf-8", errors="replace"))[:limit]:
        member = PurePosixPath(row["path"])
        if member.is_absolute() or ".." in member.parts:
            print(f"skipped: {list_name}: unsafe path {row['path']!r}", file=sys.stderr)
            bad.append(row["path"])
            continue
        relative = member.relative_to(base) if member.is_relative_to(base) else PurePosixPath(member.name)
        target = dest / relative
        if not target.is_file():
            data = source.read(str(member))
            if data is None:
                print(f"skipped: {source.where}: {member}: listed in {list_name} but not in the archive", file=sys.stderr)
                bad.append(str(member))
                continue
            try:
                info = sf.info(io.BytesIO(data))
            except RuntimeError as err:  # soundfile's errors are RuntimeErrors
                print(f"skipped: {source.where}: {member}: not audio ({' '.join(str(err).split())})", file=sys.stderr)
                bad.append(str(member))
                continue
            _write_atomic(target, data)
        else:
            info = sf.info(target)
        rows.append({**{k: v for k, v in row.items() if k != "path"}, "set": set_name, "source": str(member),
                     "audio_filepath": str(target.absolute()), "sample_rate": info.samplerate,
                     "channels": info.channels, "duration": round(info.frames / info.samplerate, 6)})
    return rows


def _set_folder(out: Path, set_name: str, list_name: str) -> Path:
    """``OUT/real`` for the measured responses, ``OUT/simulated/smallroom`` etc. for the simulated ones."""
    parent = PurePosixPath(list_name).parent
    return out / set_name / parent.name if parent.parent.name else out / set_name


def run(args: argparse.Namespace) -> int:
    """Write the chosen sets' responses (and, with --noise-out, the point-source noises)."""
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(sets) - set(RIR_LISTS))
    if not sets or unknown:
        raise PrepareError(f"--sets: unknown set(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(RIR_LISTS)}")
    if args.limit is not None and args.limit < 1:
        raise PrepareError(f"--limit must be at least 1, got {args.limit}")
    out = Path(args.out).absolute()
    if args.noise_out and Path(args.noise_out).absolute().is_relative_to(out):
        raise PrepareError(f"--noise-out {args.noise_out} is inside --out {args.out}: the noises would be read as rooms")
    source = _source(args)
    bad: list[str] = []
    rows = [row for name in sets for list_name in RIR_LISTS[name]
            for row in _extract(source, list_name, _set_folder(out, name, list_name), name, args.limit, bad)]
    write_manifest(out / "rirs.jsonl", rows)
    channels = sum(row["channels"] for row in rows)
    print(f"wrote {len(rows)} room impulse response files ({channels} responses: each channel is one) to {out} "
          f"(rirs.jsonl); train with augment.rir_dir={out}")
    if args.noise_out:
        noise_out = Path(args.noise_out).absolute()
        noises = _extract(source, NOISE_LIST, noise_out, "pointsource_noises", args.limit, bad)
        write_manifest(noise_out / "noises.jsonl", noises)
        print(f"wrote {len(noises)} noise files to {noise_out} (noises.jsonl); train with augment.noise_dir={noise_out}")
    if bad:
        print(f"{len(bad)} listed file(s) could not be written (see stderr)")
        return EXIT_SKIPPED
    return EXIT_OK
