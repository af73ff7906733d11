"""speech: spoken commands to text.

The supported Python surface (see ``docs/api.md``)::

    import speech
    model = speech.load("commands")        # bundled name, model.pt, run folder, .onnx or .ts
    result = model.transcribe("a.wav")     # Result: .text .score .alternatives (.start .end for segments)
    stream = model.stream()                # live audio: stream.push(block) -> [Detection, ...]

Names are imported when first used, so ``import speech`` (and ``speech --help``) stays fast.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["load", "Model", "Stream", "Result", "Detection", "DecodeOptions", "AudioError", "ModelFileError"]

_WHERE = {
    "load": "speech.api", "Model": "speech.api", "Stream": "speech.api",
    "Result": "speech.recognizer", "DecodeOptions": "speech.recognizer",
    "Detection": "speech.streaming", "AudioError": "speech.audio", "ModelFileError": "speech.checkpoint",
}

if TYPE_CHECKING:
    from speech.api import Model, Stream, load
    from speech.audio import AudioError
    from speech.checkpoint import ModelFileError
    from speech.recognizer import DecodeOptions, Result
    from speech.streaming import Detection


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'speech' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
