"""The Python API: ``speech.load(...)`` -> a :class:`Model` that transcribes files or arrays and streams.

::

    import speech

    model = speech.load("commands")                  # bundled name, model.pt, a run folder, or an .onnx / .ts
    model.transcribe("a.wav").text                   # -> "yes"  (a Result: .text .score .alternatives)
    model.transcribe(["a.wav", "b.wav"], top_k=3)    # a list in, a list out
    model.transcribe(samples, sample_rate=8000)      # 1-D float arrays (numpy or torch) at their rate
    model.segments("long.wav")                       # commands in long audio, with .start / .end
    stream = model.stream(sample_rate=16000)         # live audio: feed blocks, get detections
    for detection in stream.push(block): ...         # (the same pipeline as ``speech listen``)

``speech transcribe``, ``speech evaluate``, ``speech listen`` and the streaming benchmark load their
models with :func:`load` and decode with :meth:`Model.decode_options`, so a script and the command line
give the same answers.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Sequence, Union

if TYPE_CHECKING:
    import numpy as np
    import torch

    from speech.recognizer import DecodeOptions, Recognizer, Result
    from speech.streaming import Detection

DEFAULT_GATE_DB = 10.0  # = speech.streaming.DEFAULT_GATE_DB (not imported here: it would load torch)
DEFAULT_REJECT = 0.35  # = speech.streaming.DEFAULT_REJECT (likewise; tests/test_api.py checks these)
LISTEN_SKIPPING = "suppressed"  # = speech.streaming.detection.LISTEN_SKIPPING
AudioInput = Union[str, os.PathLike, "np.ndarray", "torch.Tensor"]
ENGINES = ("auto", "torch", "onnx")


def resolve_engine(engine: str) -> str:
    """``auto`` -> ``onnx`` where onnx and onnxruntime are installed (faster on the CPU), else ``torch``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine != "auto":
        return engine
    from speech.backends import onnx_missing

    return "torch" if onnx_missing() else "onnx"


def load(model: str | os.PathLike = "commands", *, engine: str = "auto", device: str = "cpu",
         threads: int | None = None, batch_size: int = 32,
         on_note: Callable[[str], None] | None = None) -> "Model":
    """Load a model: a bundled name (``commands``, ``commands-ctc``), a ``model.pt``, a run folder holding
    one, or an exported ``.onnx`` / ``.ts`` file.

    ``engine``: ``torch``, ``onnx`` (exported in memory, run in onnxruntime on the CPU), or ``auto`` (onnx
    where installed and ``device`` is the CPU; when the export fails the model runs in PyTorch and
    ``on_note`` gets a one-line note). ``threads``: onnxruntime intra-op threads. ``device``: ``cpu``,
    ``cuda`` or ``auto``. Raises :class:`~speech.checkpoint.ModelFileError` (a bad or missing file) or
    :class:`ValueError` (a bad option), each with a one-line message.
    """
    from speech.export import ExportError
    from speech.recognizer import Recognizer, resolve_device

    device = resolve_device(device)
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("device cuda: no CUDA device is available")
    chosen = resolve_engine(engine)
    if chosen == "onnx" and device != "cpu":
        if engine == "onnx":
            raise ValueError(f"the onnx engine runs on the CPU only (device {device!r})")
        chosen = "torch"
    try:
        return Model(Recognizer(model, device=device, batch_size=batch_size, engine=chosen, threads=threads))
    except ExportError as err:
        if engine != "auto":
            raise ValueError(f"{model}: {err}") from None
        if on_note is not None:  # auto: the export is only a speed-up
            on_note(f"{model}: {err}; running it in PyTorch")
        return load(model, engine="torch", device=device, threads=threads, batch_size=batch_size)


class Model:
    """A loaded model (see :func:`load`). ``labels``, ``is_ctc``, ``sample_rate``, ``engine`` (what runs it:
    ``torch``, ``onnx`` or ``torchscript``), ``info`` (the recipe's metrics and settings) and
    ``operating_point`` (the threshold it ships with and what it was measured on, or ``{}``) describe it;
    ``recognizer`` is the :class:`~speech.recognizer.Recognizer` underneath."""

    def __init__(self, recognizer: "Recognizer"):
        self.recognizer = recognizer

    labels = property(lambda self: self.recognizer.labels)
    is_ctc = property(lambda self: self.recognizer.is_ctc)
    sample_rate = property(lambda self: self.recognizer.sample_rate)
    engine = property(lambda self: self.recognizer.engine)
    info = property(lambda self: self.recognizer.info)
    operating_point = property(lambda self: self.recognizer.operating_point)

    def __repr__(self) -> str:
        head = "ctc" if self.is_ctc else f"{len(self.labels)} labels"
        return f"<speech.Model {self.info.get('recipe', '')!s} ({head}, {self.sample_rate} Hz, engine {self.engine})>"

    # -- options ------------------------------------------------------------------------------------
    def decode_options(self, *, top_k: int = 1, threshold: float | None = None, grammar: str | os.PathLike | Sequence[str] | None = None,
                       beam: int = 1, reject: float | None = None,
                       on_warning: Callable[[str], None] | None = None) -> "DecodeOptions":
        """Checked :class:`~speech.recognizer.DecodeOptions`. ``grammar``: a grammar file (one phrase a
        line, ``#`` comments) or a list of phrases (CTC models); phrases this model cannot spell are
        dropped with a warning through ``on_warning``. ``reject`` (with a grammar): an utterance whose best
        phrase has a lower CTC probability is ``_unknown_`` (0 or None: every utterance gets its closest
        phrase). Raises :class:`ValueError` (one line)."""
        from speech.decode import load_grammar
        from speech.recognizer import DecodeOptions

        if top_k < 1:
            raise ValueError("top-k must be 1 or more")
        if beam < 1:
            raise ValueError("the beam width must be 1 or more")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if reject is not None and not 0 <= reject < 1:
            raise ValueError("reject must be in [0, 1) (0 or None: no rejection)")
        if beam > 1 and not self.is_ctc:
            raise ValueError("beam search needs a CTC model (this model is a classifier)")
        phrases = None
        if grammar is not None:
            if not self.is_ctc:
                raise ValueError("a grammar needs a CTC model (this model is a classifier)")
            where = str(grammar) if isinstance(grammar, (str, os.PathLike)) else "grammar"
            try:
                phrases = load_grammar(str(grammar)) if isinstance(grammar, (str, os.PathLike)) else list(grammar)
            except OSError as err:
                raise ValueError(f"{grammar}: {err.strerror or err}") from None
            spellable = [p for p in phrases if self._spellable(p)]
            for phrase in phrases:
                if phrase not in spellable and on_warning is not None:
                    on_warning(f"{where}: phrase {phrase!r} cannot be spelled with this model's vocabulary; ignored")
            if not spellable:
                raise ValueError(f"{where}: no phrase can be spelled with this model's vocabulary")
            phrases = spellable
        return DecodeOptions(top_k=top_k, threshold=threshold, beam=beam, grammar=phrases,
                             reject=(reject or None) if phrases else None)

    def _spellable(self, phrase: str) -> bool:
        try:
            return bool(self.recognizer.vocabulary.encode(phrase))
        except ValueError:
            return False

    # -- clips ----------------------------------------------------------------------------------------
    def transcribe(self, audio: AudioInput | Sequence[AudioInput], sample_rate: int | None = None, *,
                   top_k: int = 1, threshold: float | None = None, grammar=None, beam: int = 1,
                   options: "DecodeOptions | None" = None) -> "Result | list[Result]":
        """Recognize one clip or a list of clips: paths (any rate, channels averaged) or 1-D float arrays
        (numpy or torch, in [-1, 1]) at ``sample_rate`` (default: the model's). One input gives one
        :class:`~speech.recognizer.Result` (``.text``, ``.score``, ``.alternatives``), a list gives a list.
        ``threshold`` None: the model's operating point (else 0). A file that cannot be read raises
        :class:`~speech.audio.AudioError` naming it. Long clips: CTC
        models decode chunk by chunk, classifiers answer with their best window (:meth:`segments` lists
        them all)."""
        single = _is_single(audio)
        items = [audio] if single else list(audio)
        options = options or self.decode_options(top_k=top_k, threshold=threshold, grammar=grammar, beam=beam)
        results = self.recognizer.recognize([self._waveform(a, sample_rate) for a in items], options)
        return results[0] if single else results

    def segments(self, audio: AudioInput, sample_rate: int | None = None, *, hop_seconds: float = 0.25,
                 top_k: int = 1, threshold: float | None = None) -> "list[Result]":
        """Classifiers: every command found in a long clip, each a :class:`~speech.recognizer.Result` with
        ``.start`` / ``.end`` in seconds (a window of the model's length every ``hop_seconds``)."""
        if self.is_ctc:
            raise ValueError("segments are for classifiers; CTC models transcribe long audio chunk by chunk")
        wave = self._waveform(audio, sample_rate)
        found = self.recognizer.segments(wave, self.decode_options(top_k=top_k, threshold=threshold), hop_seconds)
        duration = len(wave) / self.sample_rate
        for r in found:
            r.end = min(r.end, duration)
        return found

    def _waveform(self, audio: AudioInput, sample_rate: int | None) -> "torch.Tensor":
        import torch

        from speech.audio import load_audio, resample

        if isinstance(audio, (str, os.PathLike)):
            return load_audio(audio, self.sample_rate, max_duration=None)
        wave = torch.as_tensor(audio, dtype=torch.float32)
        if wave.ndim != 1:
            raise ValueError(f"audio arrays must be 1-D (samples,), not of shape {tuple(wave.shape)}")
        rate = int(sample_rate or self.sample_rate)
        return resample(wave, rate, self.sample_rate) if rate != self.sample_rate else wave

    # -- streams --------------------------------------------------------------------------------------
    def stream(self, sample_rate: int | None = None, *, hop_seconds: float = 0.1, threshold: float | None = None,
               false_accepts_per_hour: float | None = None, average_window_ms: float = 500.0,
               suppression_ms: float = 1000.0, minimum_count: int = 3,
               grammar=None, beam: int = 1, vad_start_db: float = 10.0, vad_hangover_ms: float = 300.0,
               streaming: bool = False, gate_db: float | None = DEFAULT_GATE_DB, reject: float | None = DEFAULT_REJECT,
               skipping: str = LISTEN_SKIPPING, on_warning: Callable[[str], None] | None = None) -> "Stream":
        """A :class:`Stream` for live audio at ``sample_rate`` (default: the model's): the pipeline of
        ``speech listen`` (same defaults). Classifiers: a window every ``hop_seconds`` and posterior
        smoothing (``threshold``, ``average_window_ms``, ``suppression_ms``, ``minimum_count``); CTC
        models: an energy gate (``vad_start_db``, ``vad_hangover_ms``) and one decode per utterance
        (``grammar``, ``beam``, ``reject``: the CTC probability under which an utterance is other speech;
        ``streaming=True`` runs a unidirectional model as the audio arrives).
        ``gate_db``: classifiers skip the model on windows that stay within this many dB of the noise
        floor (None: run it on every window); ``skipping``: ``"quiet"`` scores only every third window while
        no command is near, ``"suppressed"`` also skips the second after a detection, ``"off"`` scores every
        window (the same detections; :class:`~speech.streaming.CommandSpotter`). ``threshold`` None: the model's operating point (:attr:`operating_point`), else 0.5.
        ``false_accepts_per_hour`` (instead of ``threshold``): the threshold at which the model found at most
        that many false accepts per hour of other speech on its DEV streams (the curve saved with the
        operating point: :func:`speech.streaming.threshold_for_false_accepts`).
        Raises :class:`ValueError` (one line) for options that do not fit the model."""
        from speech.streaming import SmoothingConfig, StreamPipeline, VADConfig, live_threshold, make_stage, threshold_for_false_accepts

        if false_accepts_per_hour is not None:
            if self.is_ctc:
                raise ValueError("a false-accept rate picks a classifier's threshold (CTC models: reject)")
            if threshold is not None:
                raise ValueError("give a threshold or a false-accept rate, not both")
            threshold = threshold_for_false_accepts(
                self.operating_point, false_accepts_per_hour, SmoothingConfig(average_window_ms, 0.5, suppression_ms, minimum_count),
                hop_seconds * 1000, on_warning)["threshold"]
        threshold = live_threshold(self.operating_point, threshold)
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if hop_seconds <= 0 or average_window_ms <= 0 or suppression_ms < 0 or minimum_count < 1:
            raise ValueError("hop and average window must be positive, suppression >= 0, minimum count >= 1")
        if (grammar is not None or beam > 1 or streaming) and not self.is_ctc:
            raise ValueError("a grammar, beam search and streaming need a CTC model (this model is a classifier)")
        if streaming and not hasattr(self.recognizer.backend, "model"):
            raise ValueError("streaming runs the model in PyTorch: give a model file (not an export) and engine torch or auto")
        options = self.decode_options(grammar=grammar, beam=beam, reject=reject, on_warning=on_warning) if self.is_ctc else None
        smoothing = SmoothingConfig(average_window_ms, threshold, suppression_ms, minimum_count)
        vad = VADConfig(start_db=vad_start_db, stop_db=min(6.0, vad_start_db), hangover_ms=vad_hangover_ms)
        stage = make_stage(self.recognizer, hop_seconds, smoothing, options, vad, streaming, gate_db, skipping)  # ValueError: --streaming
        return Stream(StreamPipeline(stage, int(sample_rate or self.sample_rate), self.sample_rate))


class Stream:
    """Live audio in, detections out: ``push(block)`` takes a block ``(frames,)`` or ``(frames, channels)``
    of float samples at the stream's rate and returns the :class:`~speech.streaming.Detection` s now
    complete (``.label`` or ``.text``, ``.score``, ``.time``, ``.start``, ``.end``); ``finish()`` ends the
    stream and returns the rest. ``seconds``: audio time processed. ``pipeline``: the
    :class:`~speech.streaming.StreamPipeline` underneath (what ``speech listen`` runs)."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    @property
    def seconds(self) -> float:
        return self.pipeline.seconds

    def push(self, block) -> "list[Detection]":
        import numpy as np

        return self.pipeline.push(np.asarray(block, dtype=np.float32))

    def finish(self) -> "list[Detection]":
        return self.pipeline.finish()


def _is_single(audio) -> bool:
    if isinstance(audio, (str, os.PathLike)):
        return True
    ndim = getattr(audio, "ndim", None)
    if ndim is not None and ndim != 1:
        raise ValueError(f"audio arrays must be 1-D (samples,), not of shape {tuple(audio.shape)}; give a list for several clips")
    return ndim == 1
