"""Backends: what runs a model's forward pass for the :class:`~speech.recognizer.Recognizer`.

Each backend is called as ``backend(waveform (batch, samples) float, lengths (batch,) long)`` and returns
``(output, output_lengths)`` as CPU float tensors: logits ``(batch, classes)`` or CTC log-probabilities
``(batch, frames, vocab + 1)``. Three of them:

- :class:`TorchBackend`: a :class:`~speech.models.SpeechModel` in PyTorch (CPU or CUDA);
- :class:`OnnxBackend`: an exported ``.onnx`` file in onnxruntime (CPU), or a model exported in memory
  by :func:`onnx_backend` (the ``onnx`` engine);
- :class:`TorchScriptBackend`: an exported ``.ts`` file.

The exported files carry the model's description as JSON (:data:`METADATA_KEY` in the ONNX model's
``metadata_props``, :data:`EXTRA_FILE` in the TorchScript archive); the file backends read it into
``backend.metadata``. ``speech/export.py`` writes those files. :class:`speech.lite.LiteModel` runs a
classifier's ``.onnx`` without torch, with the session settings of :class:`OnnxBackend`.
"""
from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

from speech.checkpoint import ModelFileError
from speech.lite import INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, make_session  # noqa: F401  (shared with the torch-free path)

EXTRA_FILE = "speech.json"  # TorchScript extra file of the description


def read_metadata(meta: object, path: str) -> dict:
    """Check an exported file's description (``labels``, ``head``, ``sample_rate`` at least) and fill
    defaults of older files; :class:`~speech.checkpoint.ModelFileError` names ``path`` otherwise."""
    if not isinstance(meta, dict) or not all(k in meta for k in ("labels", "head", "sample_rate")):
        raise ModelFileError(f"{path}: the exported model's '{METADATA_KEY}' metadata lacks labels/head/sample_rate")
    meta.setdefault("vocabulary", "char")
    meta.setdefault("info", {})
    return meta


def _check_file(path: str) -> None:
    if not Path(path).is_file():
        raise ModelFileError(f"{path}: no such model file")


class TorchBackend:
    """Runs a :class:`~speech.models.SpeechModel` (``(B, samples)``, lengths -> output, out lengths)."""

    def __init__(self, model, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.device = torch.device(device)

    @torch.inference_mode()
    def __call__(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, out_lengths = self.model(waveform.to(self.device), lengths.to(self.device))
        return out.float().cpu(), out_lengths.cpu()


class OnnxBackend:
    """Runs an exported ``.onnx`` model in onnxruntime (CPU, 1-2 intra-op threads that do not spin between runs).

    ``metadata``: the stored description (keys ``labels``, ``head``, ``sample_rate``, ``vocabulary``,
    ``info``, ``model_config``, ``feature_config``). ``backend(waveform (B, S), lengths (B,))`` ->
    ``(output, output_lengths)`` tensors, like :class:`TorchBackend`.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        path = str(path)
        _check_file(path)
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ModelFileError(f"{path}: running .onnx models needs onnxruntime (pip install 'speech[export]')") from None
        try:
            self.session = make_session(path, threads or min(2, os.cpu_count() or 1))
        except Exception as err:
            raise ModelFileError(f"{path}: not an ONNX model ({' '.join(str(err).split())[:200]})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in props:
            raise ModelFileError(f"{path}: ONNX model without '{METADATA_KEY}' metadata (not made by 'speech export')")
        try:
            meta = json.loads(props[METADATA_KEY])
        except json.JSONDecodeError:
            raise ModelFileError(f"{path}: the '{METADATA_KEY}' metadata is not valid JSON") from None
        self.metadata = read_metadata(meta, path)
        self.path = path

    def __call__(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feeds = {
            "waveform": waveform.detach().cpu().float().contiguous().numpy(),
            "lengths": lengths.detach().cpu().long().contiguous().numpy(),
        }
        out, out_lengths = self.session.run(OUTPUT_NAMES, feeds)
        return torch.from_numpy(out), torch.from_numpy(out_lengths)


class TorchScriptBackend:
    """Runs an exported TorchScript (``.ts``) model; same interface as :class:`OnnxBackend`."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu"):
        path = str(path)
        _check_file(path)
        extra = {EXTRA_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
                self.module = torch.jit.load(path, map_location=device, _extra_files=extra).eval()
        except Exception as err:
            raise ModelFileError(f"{path}: not a TorchScript model ({' '.join(str(err).split())[:200]})") from None
        try:
            meta = json.loads(extra[EXTRA_FILE] or "null")
        except json.JSONDecodeError:
            meta = None
        if meta is None:
            raise ModelFileError(f"{path}: TorchScript model without '{EXTRA_FILE}' (not made by 'speech export')")
        self.metadata = read_metadata(meta, path)
        self.device = torch.device(device)
        self.path = path

    @torch.inference_mode()
    def __call__(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, out_lengths = self.module(waveform.to(self.device).float(), lengths.to(self.device).long())
        return out.float().cpu(), out_lengths.cpu()


def onnx_missing() -> list[str]:
    """The packages the onnx engine needs that are not installed (empty: it can run)."""
    return [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]


def onnx_backend(model, threads: int | None = None) -> OnnxBackend:
    """``model`` exported to ONNX (in a temporary file, removed again) and loaded in onnxruntime: the
    ``onnx`` engine of :class:`~speech.recognizer.Recognizer`. Raises
    :class:`~speech.export.ExportError` with a one-line reason (a package missing, or the export failing)."""
    from speech.export import ExportError, export_onnx

    missing = onnx_missing()
    if missing:
        raise ExportError(f"the onnx engine needs {' and '.join(missing)} (pip install 'speech[export]')")
    with tempfile.TemporaryDirectory(prefix="speech-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, path, check=False)
        return OnnxBackend(path, threads)
