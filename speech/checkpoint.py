"""Model files: self-describing, tensors and plain values only, loadable with ``weights_only=True``.

A model file holds the weights, the model and feature configs, the label set or CTC vocabulary, the
normalization statistics (inside the weights), the sample rate, a format version and free-form info
(recipe, metrics). ``speech transcribe model.pt x.wav`` needs nothing else.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import torch

from speech.features import FeatureConfig
from speech.models import ModelConfig, SpeechModel

FORMAT = "speech-model"
VERSION = 1
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
PRETRAINED = {"commands": "commands.pt", "commands-ctc": "commands-ctc.pt"}


class ModelFileError(ValueError):
    """A model file that cannot be used; ``str(err)`` is ``path: cause``."""


def atomic_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def model_payload(model: SpeechModel, info: dict | None = None) -> dict:
    """The plain dictionary a model file holds."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT,
        "version": VERSION,
        "model_config": dataclasses.asdict(model.config),
        "feature_config": dataclasses.asdict(model.feature_config),
        "labels": list(model.labels),
        "sample_rate": model.sample_rate,
        "state_dict": state,
        "info": dict(info or {}),
    }


def save_model(model: SpeechModel, path: str | os.PathLike, info: dict | None = None) -> None:
    """Write a self-describing model file atomically."""
    atomic_save(model_payload(model, info), path)


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """A bundled model name (``commands``, ``commands-ctc``) or a path -> the file's path."""
    key = str(name_or_path)
    if key in PRETRAINED:
        path = PRETRAINED_DIR / PRETRAINED[key]
        if not path.is_file():
            raise ModelFileError(f"{key}: the bundled model is not installed ({path} is missing)")
        return path
    path = Path(key).expanduser()
    if not path.exists():
        raise ModelFileError(f"{key}: no such model file (bundled models: {', '.join(PRETRAINED)})")
    if path.is_dir():
        if (path / "model.pt").is_file():
            return path / "model.pt"
        raise ModelFileError(f"{key}: is a directory without model.pt")
    return path


def read_payload(path: str | os.PathLike) -> dict:
    """Load and check a model file's dictionary (``weights_only=True``: a file cannot run code)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        cause = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(err)).split())[:200]  # one plain line, no ANSI codes
        if "Weights only load failed" in cause:
            cause = "it holds Python objects, which a weights-only load refuses to unpickle"
        elif _head(path)[:2] not in (b"PK", b"\x80\x02"):  # neither a zip (torch.save) nor a legacy pickle
            cause = "not a PyTorch file" if _head(path) else "empty file"
        raise ModelFileError(f"{path}: not a speech model file ({cause})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a speech model file (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise ModelFileError(
            f"{path}: model format version {payload.get('version')!r} is not supported (this speech reads {VERSION})"
        )
    return payload


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(2)
    except OSError:
        return b"PK"  # unreadable: keep torch.load's own cause


def model_from_payload(payload: dict, path: str | os.PathLike = "<model>") -> SpeechModel:
    try:
        model_config = ModelConfig(**payload["model_config"])
        feature_config = FeatureConfig(**payload["feature_config"])
        model = SpeechModel(model_config, feature_config, payload["labels"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        cause = " ".join(str(err).split())[:200]
        raise ModelFileError(f"{path}: model file does not match this version of speech ({cause})") from None
    model.info = payload.get("info", {})
    return model.eval()


def load_model(name_or_path: str | os.PathLike) -> SpeechModel:
    """Load a model by bundled name or path, in eval mode, on the CPU."""
    path = resolve_model_path(name_or_path)
    return model_from_payload(read_payload(path), path)
