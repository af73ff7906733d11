"""The one inference path: a :class:`Recognizer` turns waveforms into answers.

``speech transcribe``, ``speech evaluate``, the live tool, the streaming benchmark and the export
parity tests all call it; none of them loads a model or decodes on its own. It loads any model file
(ours by path or bundled name, or an exported ``.onnx``), runs length-sorted batches and decodes:
top-k labels with probabilities (classification, with an optional ``_unknown_`` threshold), or CTC
greedy / beam / grammar decoding.
"""
from __future__ import annotations


import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from speech import backends
from speech.checkpoint import load_model
from speech.data.dataset import fit_to_length
from speech.decode import ctc_greedy_decode, ctc_phrase_probability, ctc_prefix_beam_search, ctc_score_phrases, top_k
from speech.text import Vocabulary, normalize_text

UNKNOWN = "_unknown_"
NON_COMMANDS = (UNKNOWN, "_silence_")


@dataclass
class Result:
    """One answer: ``text`` (a label for classifiers), ``score`` (probability for classifiers,
    per-phrase posterior for grammar decoding, or exp of the mean frame log-probability for free CTC
    decoding), and ``alternatives`` ``[(text, score), ...]`` best first. ``confidence``: grammar decoding
    with a rejection (:attr:`DecodeOptions.reject`) only, the CTC probability of the best phrase
    (:func:`~speech.decode.ctc_phrase_probability`), else None."""

    text: str
    score: float
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    confidence: float | None = None


@dataclass
class DecodeOptions:
    top_k: int = 3
    threshold: float | None = None  # below this score the answer is _unknown_; None: the model's operating point (else 0)
    beam: int = 1  # CTC: 1 = greedy
    grammar: list[str] | None = None  # CTC: allowed phrases
    # CTC grammar decoding: below this CTC probability of the best phrase (Result.confidence) the answer is
    # _unknown_, so speech outside the grammar is not forced onto the closest phrase; None: no rejection
    reject: float | None = None


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class Recognizer:
    """Load a model once; recognize batches of 1-D waveforms at the model's sample rate.

    ``recognize(waveforms)`` -> one :class:`Result` per waveform. Clips longer than
    ``max_window_seconds`` are split: classifiers report the best window (see :meth:`segments`),
    CTC models decode chunk by chunk and join the text.
    """

    def __init__(self, model: str | Path | torch.nn.Module = "commands", device: str = "cpu", batch_size: int = 32,
                 engine: str = "torch", threads: int | None = None):
        """``engine``: ``torch`` runs a model file in PyTorch; ``onnx`` exports it to ONNX in memory and runs
        it in onnxruntime with ``threads`` intra-op threads (CPU; about twice as fast on a 1 s window).
        ``.onnx`` and ``.ts`` files always run in onnxruntime / TorchScript. ``self.engine`` says which ran:
        ``torch``, ``onnx`` or ``torchscript``."""
        device = resolve_device(device)
        self.device = torch.device(device)
        if engine not in ("torch", "onnx"):
            raise ValueError(f"engine must be torch or onnx, not {engine!r}")
        if engine == "onnx" and device != "cpu":
            raise ValueError(f"the onnx engine runs on the CPU only (device {device!r})")
        if isinstance(model, (str, Path)) and str(model).endswith((".onnx", ".ts")):
            if str(model).endswith(".ts"):
                self.backend, self.engine = backends.TorchScriptBackend(str(model)), "torchscript"
            else:
                self.backend, self.engine = backends.OnnxBackend(str(model), threads), "onnx"
            meta = self.backend.metadata
            self.labels, self.is_ctc = meta["labels"], meta["head"] == "ctc"
            self.sample_rate, vocab_unit = meta["sample_rate"], meta.get("vocabulary", "char")
            self.info = meta.get("info", {})
        else:
            m = load_model(model) if isinstance(model, (str, Path)) else model
            if engine == "onnx":
                self.backend = backends.onnx_backend(m, threads)
            else:
                self.backend = backends.TorchBackend(m, device)
            self.engine = engine
            self.labels, self.is_ctc, self.sample_rate = m.labels, m.is_ctc, m.sample_rate
            vocab_unit = m.config.vocabulary
            self.info = getattr(m, "info", {})
        self.vocabulary = Vocabulary(self.labels, vocab_unit) if self.is_ctc else None
        point = self.info.get("operating_point")
        if point is not None and not self.is_ctc:
            threshold = point.get("threshold") if isinstance(point, dict) else None
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
                from speech.checkpoint import ModelFileError

                where = model if isinstance(model, (str, Path)) else "model"
                raise ModelFileError(f"{where}: the saved operating point's threshold must be a number in [0, 1], not {threshold!r}")
        self.batch_size = batch_size
        self.window_seconds = float(self.info.get("clip_seconds") or 1.0)
        # a classifier trained on fixed-length clips sees shorter ones centred in that length, as in training
        clip = self.info.get("clip_seconds")
        self.pad_to = int(round(float(clip) * self.sample_rate)) if clip and not self.is_ctc else 0
        self.max_window_seconds = 30.0
        self._grammar_cache: tuple[list[str], list[list[int]]] | None = None

    # -- model execution --------------------------------------------------------------------------
    def forward(self, waveforms: list[torch.Tensor]) -> list[torch.Tensor]:
        """Raw model outputs, one per waveform (logits ``(classes,)`` or log-probs ``(T, V+1)``),
        computed in length-sorted, padded batches."""
        if self.pad_to:
            waveforms = [fit_to_length(w, self.pad_to) if len(w) < self.pad_to else w for w in waveforms]
        order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))
        outputs: list[torch.Tensor | None] = [None] * len(waveforms)
        min_len = 400
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            lengths = torch.tensor([max(len(waveforms[i]), min_len) for i in idx])
            batch = torch.zeros(len(idx), int(lengths.max()))
            for row, i in enumerate(idx):
                batch[row, : len(waveforms[i])] = waveforms[i]
            out, out_lengths = self.backend(batch, lengths)
            for row, i in enumerate(idx):
                outputs[i] = out[row, : out_lengths[row]] if self.is_ctc else out[row]
        return outputs  # type: ignore[return-value]

    # -- decoding -----------------------------------------------------------------------------------
    @property
    def operating_point(self) -> dict:
        """The operating point saved with a classifier (``speech.calibrate``: ``threshold`` and what it was
        measured on), or ``{}``."""
        point = self.info.get("operating_point") if not self.is_ctc else None
        return dict(point) if isinstance(point, dict) and "threshold" in point else {}

    @property
    def live_point(self) -> bool:
        """Whether the operating point was chosen on streams (``recipes/commands/calibrate_stream.py``: a
        threshold on averaged window posteriors), which holds for the live paths and ``segments``, not for
        one clip's answer."""
        return str(self.operating_point.get("kind", "")).startswith("live")

    def threshold(self, options: DecodeOptions) -> float:
        """The classification threshold in force: the option, else the model's operating point (unless it
        is a live one: :attr:`live_point`), else 0."""
        if options.threshold is not None:
            return options.threshold
        return 0.0 if self.live_point else float(self.operating_point.get("threshold", 0.0))

    def decode(self, output: torch.Tensor, options: DecodeOptions) -> Result:
        if not self.is_ctc:
            best = top_k(output[None], max(options.top_k, 1))[0]
            alternatives = [(self.labels[i], p) for i, p in best]
            text, score = alternatives[0]
            # a saved operating point decides whether a command fires; an explicit threshold any answer
            if score < self.threshold(options) and (options.threshold is not None or text not in NON_COMMANDS):
                text = UNKNOWN
            return Result(text, score, alternatives)
        if options.grammar:
            return self._decode_grammar(output, options)
        if options.beam > 1:
            hyps = ctc_prefix_beam_search(output, options.beam)
            alternatives = [(self.vocabulary.decode(ids), math.exp(lp / max(len(output), 1))) for ids, lp in hyps]
            alternatives = alternatives[: max(options.top_k, 1)]
            return Result(alternatives[0][0], alternatives[0][1], alternatives)
        ids, lp = ctc_greedy_decode(output)
        text = self.vocabulary.decode(ids)
        score = math.exp(lp / max(len(output), 1))
        return Result(text, score, [(text, score)])

    def _grammar_tokens(self, grammar: list[str]) -> tuple[list[str], list[list[int]]]:
        if self._grammar_cache is None or self._grammar_cache[0] != grammar:
            kept, tokens = [], []
            for phrase in grammar:
                try:
                    ids = self.vocabulary.encode(phrase)
                except ValueError:
                    continue
                if ids:
                    kept.append(normalize_text(phrase))
                    tokens.append(ids)
            if not kept:
                raise ValueError("no grammar phrase can be spelled with this model's vocabulary")
            self._grammar_cache = (grammar, tokens)
            self._grammar_phrases = kept
        return self._grammar_phrases, self._grammar_cache[1]

    def _decode_grammar(self, output: torch.Tensor, options: DecodeOptions) -> Result:
        phrases, tokens = self._grammar_tokens(options.grammar)
        loglik = ctc_score_phrases(output, tokens)
        posterior = torch.softmax(loglik, 0) if torch.isfinite(loglik).any() else torch.full_like(loglik, 1 / len(loglik))
        order = torch.argsort(posterior, descending=True)[: max(options.top_k, 1)]
        alternatives = [(phrases[i], float(posterior[i])) for i in order.tolist()]
        text, score = alternatives[0]
        if score < (options.threshold or 0.0):
            text = UNKNOWN
        confidence = None
        if options.reject is not None:  # the best phrase's share of every sequence the model could emit
            confidence = ctc_phrase_probability(loglik[order[0]])
            if confidence < options.reject:
                text = UNKNOWN
        return Result(text, score, alternatives, confidence=confidence)

    # -- the public calls ---------------------------------------------------------------------------
    def recognize(self, waveforms: list[torch.Tensor], options: DecodeOptions | None = None) -> list[Result]:
        """One :class:`Result` per waveform (1-D float tensors at :attr:`sample_rate`)."""
        options = options or DecodeOptions()
        limit = int(self.max_window_seconds * self.sample_rate)
        short = [i for i, w in enumerate(waveforms) if len(w) <= limit]
        results: list[Result | None] = [None] * len(waveforms)
        for i, out in zip(short, self.forward([waveforms[i] for i in short])):
            results[i] = self.decode(out, options)
        for i in set(range(len(waveforms))) - set(short):
            if self.is_ctc:
                chunks = [waveforms[i][s : s + limit] for s in range(0, len(waveforms[i]), limit)]
                parts = [self.decode(o, options) for o in self.forward(chunks)]
                text = " ".join(p.text for p in parts if p.text)
                results[i] = Result(text, min(p.score for p in parts), [(text, min(p.score for p in parts))])
            else:
                found = self.segments(waveforms[i], options)
                best = max(found, key=lambda r: r.score) if found else Result(UNKNOWN, 0.0)
                results[i] = best
        return results  # type: ignore[return-value]

    def segments(
        self, waveform: torch.Tensor, options: DecodeOptions | None = None, hop_seconds: float = 0.25,
        ignore: tuple[str, ...] = ("_silence_", UNKNOWN),
    ) -> list[Result]:
        """Scan a long clip with a sliding window (the model's window, ``hop_seconds`` apart) and
        return each found command with its ``start``/``end`` time; overlapping windows with the same
        answer are merged, keeping the best score."""
        options = options or DecodeOptions()
        if options.threshold is None and self.live_point:  # windows of a stream: the live operating point holds
            options = replace(options, threshold=float(self.operating_point["threshold"]))
        win = int(self.window_seconds * self.sample_rate)
        hop = max(1, int(hop_seconds * self.sample_rate))
        starts = list(range(0, max(len(waveform) - win, 0) + 1, hop))
        outs = self.forward([waveform[s : s + win] for s in starts])
        found: list[Result] = []
        for s, out in zip(starts, outs):
            r = self.decode(out, options)
            if r.text in ignore or not r.text:
                continue
            r.start, r.end = s / self.sample_rate, (s + win) / self.sample_rate
            if found and found[-1].text == r.text and r.start <= found[-1].end:
                prev = found[-1]
                prev.end = r.end
                if r.score > prev.score:
                    prev.score, prev.alternatives = r.score, r.alternatives
            else:
                found.append(r)
        return found
