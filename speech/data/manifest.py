"""The one manifest format: JSON lines, one clip per line.

Fields: ``audio_filepath`` (absolute, or relative to the manifest's folder), ``duration`` (seconds),
``label`` (classification) and/or ``text`` (CTC), ``speaker``, and optional ``offset`` (seconds).
Every data source (``speech prepare ...``, ``speech synth``) writes this; training never knows where
a clip came from.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

SPLITS = ("train", "valid", "test")


class ManifestError(ValueError):
    """A bad manifest row; ``str(err)`` is ``path:line: cause``."""


@dataclass
class Utterance:
    audio_filepath: str
    duration: float
    label: str | None = None
    text: str | None = None
    speaker: str | None = None
    offset: float = 0.0

    def to_json(self) -> dict:
        row = {k: v for k, v in asdict(self).items() if v is not None}
        if not row.get("offset"):
            row.pop("offset", None)
        return row


def _resolve(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p) if p.is_absolute() else os.path.abspath(base / p)


def parse_row(row: object, where: str, base: Path) -> Utterance:
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(row).__name__}")
    unknown = set(row) - {"audio_filepath", "duration", "label", "text", "speaker", "offset"}
    path = row.get("audio_filepath")
    if not isinstance(path, str) or not path:
        raise ManifestError(f"{where}: missing or empty 'audio_filepath'")
    duration = row.get("duration")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or not 0 < duration < math.inf:
        raise ManifestError(f"{where}: 'duration' must be a positive number, got {duration!r}")
    offset = row.get("offset", 0.0)
    if not isinstance(offset, (int, float)) or isinstance(offset, bool) or not 0 <= offset < math.inf:
        raise ManifestError(f"{where}: 'offset' must be a number >= 0, got {offset!r}")
    label, text, speaker = row.get("label"), row.get("text"), row.get("speaker")
    if label is None and text is None:
        raise ManifestError(f"{where}: a row needs 'label' or 'text'")
    for name, value in (("label", label), ("text", text), ("speaker", speaker)):
        if value is not None and not isinstance(value, str):
            raise ManifestError(f"{where}: {name!r} must be a string, got {value!r}")
    del unknown  # extra fields are allowed and ignored
    return Utterance(_resolve(path, base), float(duration), label, text, speaker, float(offset))


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Read and validate a manifest; a bad row raises :class:`ManifestError` with its line number."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None
            rows.append(parse_row(row, where, path.parent))
    return rows


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance | dict]) -> int:
    """Write rows atomically (temp file, then rename); returns the number of rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # per process: concurrent writers never share it
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for utt in utterances:
            row = utt.to_json() if isinstance(utt, Utterance) else utt
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n
