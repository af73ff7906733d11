"""The bundled classifier without PyTorch: what ``speech transcribe one.wav`` runs in a cold process.

Importing torch takes 1.3-1.8 s, longer than PocketSphinx takes to import, load and decode a file
(docs/benchmarks.md, "Speed a user feels"). This module runs a classifier exported by ``speech export``
(the bundled ``speech/pretrained/commands.onnx``, made from ``commands.pt`` by ``speech export --bundled``,
or any classifier ``.onnx``) with numpy, soundfile and onnxruntime only, and answers as the PyTorch path
(:class:`speech.recognizer.Recognizer`) does:

- audio is read as :func:`speech.audio.load_audio_native` reads it (the same checks and one-line errors,
  channels averaged, samples clipped to [-1, 1]); a file at another sample rate, or longer than the
  Recognizer's 30 s window, is left to the PyTorch path (:meth:`LiteModel.accepts` says so beforehand);
- a clip shorter than the model's clip length is centred in it with zeros
  (:func:`speech.data.dataset.fit_to_length`), then clips go through length-sorted, zero-padded batches,
  as in :meth:`speech.recognizer.Recognizer.forward`;
- softmax, top-k and the saved operating point (a command scoring below it is ``_unknown_``) as in
  :meth:`speech.recognizer.Recognizer.decode`.

``speech transcribe`` decides per run whether this path gives the same answer
(:func:`speech.transcribe.lite_model`). The bundled copy stands in for ``commands.pt`` only while it was
made from that very file: its SHA-256 is stored in the ONNX metadata (``source``). Nothing here imports
torch (``tests/test_lite.py`` checks it in a fresh process); numpy, soundfile and onnxruntime are imported
when first used, so importing this module stays cheap.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

METADATA_KEY = "speech"  # ONNX metadata_props key of the model's description (speech.export writes it)
INPUT_NAMES = ["waveform", "lengths"]
OUTPUT_NAMES = ["output", "output_lengths"]
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
BUNDLED = {"commands": ("commands.pt", "commands.onnx")}  # bundled name -> (model file, its ONNX copy)
# speech.audio takes these from here; the Recognizer's own (speech.recognizer loads torch, so they are not
# imported from there): tests/test_lite.py checks that they agree
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au")
DEFAULT_MAX_DURATION = 600.0  # seconds
UNKNOWN = "_unknown_"
NON_COMMANDS = (UNKNOWN, "_silence_")
MAX_WINDOW_SECONDS = 30.0  # Recognizer.max_window_seconds: longer clips are scanned window by window there
MIN_SAMPLES = 400  # Recognizer.forward: the shortest length a clip is given


# ------------------------------------------------------------------------------------------ audio
class AudioReadError(ValueError):
    """A file that cannot be used as audio: ``str(err)`` is ``path: cause``, the text of
    :class:`speech.audio.AudioError` for the same file."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path, self.cause = str(path), cause
        super().__init__(f"{self.path}: {cause}")


def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """Audio files under ``root`` (recursive), sorted, by extension (as :func:`speech.audio.find_audio_files`)."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def check_path(path: str | os.PathLike, error: type = AudioReadError) -> None:
    """Raise ``error(path, cause)`` for a missing path, a folder or an empty file (speech.audio uses it too)."""
    p = Path(path)
    if not p.exists():
        raise error(path, "no such file")
    if p.is_dir():
        raise error(path, "is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise error(path, "empty file (0 bytes)")


def soundfile_cause(err: Exception) -> str:
    """One line for a soundfile error (its message spans lines)."""
    text = " ".join(str(err).split())
    low = text.lower()
    if "format not recognised" in low or "unknown format" in low or "not recognised" in low:
        return "not an audio file (format not recognised)"
    if "truncated" in low or "premature" in low or "unexpected end" in low:
        return f"truncated or corrupt audio ({text})"
    return f"cannot read audio ({text})"


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(sample_rate, frames, channels)`` from the header; raises :class:`AudioReadError` (including a WAV
    whose data chunk claims more bytes than the file holds, which libsndfile only logs)."""
    import soundfile as sf

    check_path(path)
    try:
        info = sf.info(str(path))
    except Exception as err:  # LibsndfileError/RuntimeError with a multi-line message
        raise AudioReadError(path, soundfile_cause(err)) from None
    short = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", info.extra_info or "", re.MULTILINE)
    if short and int(short.group(1)) < 0x7F000000:  # >= 0x7F000000: a streaming placeholder size
        raise AudioReadError(
            path, f"truncated audio data: header says {short.group(1)} bytes of samples, the file holds {short.group(2)}"
        )
    return info.samplerate, info.frames, info.channels


def read_audio(path: str | os.PathLike, max_duration: float | None = DEFAULT_MAX_DURATION) -> tuple["np.ndarray", int]:
    """A whole file as mono float32 ``(samples,)`` in [-1, 1] at its own rate: ``(samples, rate)``.
    Raises :class:`AudioReadError` for a missing, empty, unreadable or truncated file, zero samples,
    NaN/Inf samples, or a duration over ``max_duration`` seconds."""
    import numpy as np
    import soundfile as sf

    rate, frames, _ = audio_info(path)
    if frames <= 0:
        raise AudioReadError(path, "no audio samples (zero-length signal)")
    total = frames / rate
    if max_duration is not None and total > max_duration:
        raise AudioReadError(path, f"duration {total:.1f} s is over the limit of {max_duration:g} s")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioReadError(path, soundfile_cause(err)) from None
    if data.shape[0] < frames:
        raise AudioReadError(path, f"truncated audio data: header says {frames} frames, read {data.shape[0]}")
    data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if len(data) == 0:
        raise AudioReadError(path, "no audio samples (zero-length signal)")
    if not np.isfinite(data).all():
        raise AudioReadError(path, "contains NaN or Inf samples")
    return np.ascontiguousarray(np.clip(data, -1.0, 1.0), dtype=np.float32), rate


def fit_to_length(wave: "np.ndarray", samples: int) -> "np.ndarray":
    """Centre ``wave (n,)`` in ``samples`` (zero padding both sides), or take its centre when longer."""
    import numpy as np

    n = len(wave)
    if n == samples:
        return wave
    if n > samples:
        start = (n - samples) // 2
        return wave[start : start + samples]
    left = (samples - n) // 2
    return np.pad(wave, (left, samples - n - left))


# ------------------------------------------------------------------------------------------ model
def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def onnx_for(model: str | os.PathLike) -> tuple[Path, Path | None] | None:
    """``(ONNX file, the model file it must have been made from or None)`` that may answer for ``model``
    (``speech transcribe --model``): a bundled name, or the bundled ``.pt`` by path -> its bundled ONNX
    copy; an ``.onnx`` file -> itself; anything else (or a bundled copy that is not there) -> None."""
    key = str(model)
    if key.endswith(".onnx"):
        path = Path(key).expanduser()
        return (path, None) if path.is_file() else None
    for name, (pt_name, onnx_name) in BUNDLED.items():
        pt = PRETRAINED_DIR / pt_name
        if key == name or (key.endswith(".pt") and Path(key).expanduser().resolve() == pt):
            onnx = PRETRAINED_DIR / onnx_name
            return (onnx, pt) if onnx.is_file() else None
    return None


class Answer(NamedTuple):
    """One clip's answer, as :class:`speech.recognizer.Result`: ``alternatives`` ``[(label, p), ...]`` best first."""

    text: str
    score: float
    alternatives: list


class Options(NamedTuple):
    """What :class:`speech.recognizer.DecodeOptions` holds for a classifier. ``threshold`` None: the
    model's operating point (else 0)."""

    top_k: int = 1
    threshold: float | None = None


def make_session(path: str | os.PathLike, threads: int = 1, basic: bool = False):
    """The onnxruntime CPU session of every ONNX path (:class:`LiteModel`, :class:`speech.backends.OnnxBackend`):
    ``threads`` intra-op threads, one inter-op thread, no spin-waiting; ``basic``: only the basic graph
    optimizations (see :meth:`LiteModel.open`). Raises ImportError without onnxruntime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # with more than one thread, onnxruntime's pool spins after each run waiting for the next: a live
    # stream (one window per 100 ms) then burns 40-50 % of a core on nothing (docs/benchmarks.md)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if basic:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class LiteModel:
    """A classifier exported by ``speech export`` in onnxruntime, with the interface
    :func:`speech.batch.recognize_items` calls (``sample_rate``, ``recognize``). Make one with :meth:`open`.

    ``labels``, ``sample_rate``, ``info`` and ``operating_point`` as on :class:`speech.recognizer.Recognizer`;
    ``pad_to``: the clip length in samples that shorter clips are centred in (0: none); ``batch_size``:
    clips per model call."""

    def __init__(self, session, metadata: dict, path: Path, batch_size: int = 32, basic: bool = False):
        self.session, self.metadata, self.path, self.batch_size = session, metadata, path, batch_size
        self.basic = basic  # the session has the basic graph optimizations only (a bundled copy)
        self.labels = list(metadata["labels"])
        self.sample_rate = int(metadata["sample_rate"])
        self.info = metadata.get("info") or {}
        clip = self.info.get("clip_seconds")
        self.pad_to = int(round(float(clip) * self.sample_rate)) if clip else 0
        point = self.info.get("operating_point")
        self.operating_point = dict(point) if isinstance(point, dict) and "threshold" in point else {}
        self.max_samples = int(MAX_WINDOW_SECONDS * self.sample_rate)

    @classmethod
    def open(cls, path: str | os.PathLike, threads: int = 1, source: str | os.PathLike | None = None,
             batch_size: int = 32) -> "LiteModel | None":
        """The model at ``path``, or None where this path would not answer as the PyTorch path does:
        onnxruntime is not installed, the file does not load or lacks the ``speech`` metadata, it is not a
        classifier, its operating point is not a number in [0, 1] (the PyTorch path then gives the errors),
        or ``source`` is given and the file was not made from it (a bundled copy older than the model).

        The session has the settings of :class:`speech.backends.OnnxBackend` (``threads`` intra-op threads),
        so an ``.onnx`` file gives the very numbers it gives there. A bundled copy (``source`` given) is
        compared with PyTorch, not with another session: it gets only onnxruntime's basic graph
        optimizations, which start ~10 ms sooner and run batches as fast on this model."""
        try:
            session = make_session(path, threads, basic=source is not None)
            meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
        except Exception:  # no onnxruntime, not an ONNX model, no or bad metadata: the PyTorch path words the error
            return None
        if not isinstance(meta, dict) or meta.get("head") != "classification" or not meta.get("labels") \
                or not isinstance(meta.get("sample_rate"), int) or not isinstance(meta.get("info", {}), dict):
            return None
        point = meta.get("info", {}).get("operating_point")
        if point is not None:
            threshold = point.get("threshold") if isinstance(point, dict) else None
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
                return None
        if source is not None:
            made_from = meta.get("source") if isinstance(meta.get("source"), dict) else {}
            if not Path(source).is_file() or made_from.get("sha256") != sha256_of(source):
                return None
        return cls(session, meta, Path(path), batch_size, basic=source is not None)

    def start_worker(self) -> None:
        """In a worker process forked from the one that opened this model (:func:`speech.batch.
        recognize_items_in_processes`): a session of its own with one intra-op thread, so that the
        processes do not compete for the cores and no thread pool is shared across the fork."""
        self.session = make_session(self.path, 1, basic=self.basic)

    # -- inputs ---------------------------------------------------------------------------------------
    def accepts(self, item) -> bool:
        """Whether a :class:`speech.batch.Item` gets the PyTorch path's answer here: a whole file (not a
        manifest row) at the model's sample rate and at most 30 s long. A file whose header cannot be
        read is accepted: :func:`load_item` reports it as the PyTorch path does."""
        import soundfile as sf

        if item.utterance is not None or item.offset or item.duration is not None:
            return False
        try:
            info = sf.info(str(item.path))
        except Exception:
            return True
        return info.samplerate == self.sample_rate and info.frames <= self.max_samples

    def load_item(self, item, sample_rate: int, max_duration: float | None = DEFAULT_MAX_DURATION):
        """``(waveform (samples,), seconds spent reading)``, or the :class:`AudioReadError` of an unusable
        file (returned, not raised: the ``load`` of :func:`speech.batch.recognize_items`)."""
        start = time.perf_counter()
        try:
            wave, rate = read_audio(item.path, max_duration)
        except AudioReadError as err:
            return err
        if rate != sample_rate:  # accepts() keeps such files off this path
            raise ValueError(f"{item.path}: {rate} Hz; this path reads {sample_rate} Hz files only")
        return wave, time.perf_counter() - start

    # -- the model ------------------------------------------------------------------------------------
    def forward(self, waveforms: list["np.ndarray"]) -> list["np.ndarray"]:
        """Logits ``(classes,)`` per waveform ``(samples,)``, in length-sorted, zero-padded batches of
        :attr:`batch_size` (``waveform (batch, samples)`` float32 and ``lengths (batch,)`` int64 in)."""
        import numpy as np

        if self.pad_to:
            waveforms = [fit_to_length(w, self.pad_to) if len(w) < self.pad_to else w for w in waveforms]
        order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))
        outputs: list = [None] * len(waveforms)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            lengths = np.array([max(len(waveforms[i]), MIN_SAMPLES) for i in idx], dtype=np.int64)
            batch = np.zeros((len(idx), int(lengths.max())), dtype=np.float32)
            for row, i in enumerate(idx):
                batch[row, : len(waveforms[i])] = waveforms[i]
            out, _ = self.session.run(OUTPUT_NAMES, {"waveform": batch, "lengths": lengths})
            for row, i in enumerate(idx):
                outputs[i] = out[row]
        return outputs

    def threshold(self, options: Options) -> float:
        """The threshold in force: the option, else the model's operating point (not a live one, chosen on
        streams: as :meth:`speech.recognizer.Recognizer.threshold`), else 0."""
        if options.threshold is not None:
            return options.threshold
        if str(self.operating_point.get("kind", "")).startswith("live"):
            return 0.0
        return float(self.operating_point.get("threshold", 0.0))

    def decode(self, logits: "np.ndarray", options: Options) -> Answer:
        """Softmax of ``logits (classes,)`` in float32, the ``top_k`` best labels; a command below the
        operating point (or any answer below an explicit threshold) becomes ``_unknown_``."""
        import numpy as np

        x = np.asarray(logits, dtype=np.float32)
        e = np.exp(x - x.max())
        probabilities = e * (np.float32(1.0) / e.sum(dtype=np.float32))
        best = np.argsort(-probabilities, kind="stable")[: max(options.top_k, 1)]
        alternatives = [(self.labels[i], float(probabilities[i])) for i in best]
        text, score = alternatives[0]
        if score < self.threshold(options) and (options.threshold is not None or text not in NON_COMMANDS):
            text = UNKNOWN
        return Answer(text, score, alternatives)

    def recognize(self, waveforms: list["np.ndarray"], options: Options | None = None) -> list[Answer]:
        """One :class:`Answer` per waveform (1-D float32 at :attr:`sample_rate`, at most 30 s: see
        :meth:`accepts`)."""
        options = options or Options()
        if any(len(w) > self.max_samples for w in waveforms):
            raise ValueError(f"clips over {MAX_WINDOW_SECONDS:g} s are scanned window by window: use the PyTorch path")
        return [self.decode(out, options) for out in self.forward(waveforms)]
