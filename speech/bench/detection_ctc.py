"""``speech bench detection --model commands-ctc``: the CTC model's live path on the detection benchmark's
streams, as a DET curve swept over the rejection of out-of-grammar speech.

The streams are the classifier's (:func:`~speech.bench.detection_data.benchmark_streams`: the same
builder, seed, halves and clips; with the default grammar of the ten commands the same samples). The
commands are the words of the grammar (``--grammar``, default the ten commands); every other word is
other speech.

The live path is ``speech listen --model commands-ctc --grammar FILE`` (:meth:`speech.Model.stream`,
:class:`~speech.streaming.UtteranceTranscriber`): an energy voice-activity gate cuts utterances and each
one is decoded with the grammar when it ends; its best phrase is a detection, at the utterance's end,
unless its CTC probability ``p(phrase | audio)`` (:func:`~speech.decode.ctc_phrase_probability`) is below
the rejection (``--reject``). The model runs once over each stream with the rejection of the operating
point; every utterance's best phrase and probability are kept (and cached with ``--cache``), and the
detections of each rejection of the sweep are those whose probability reaches it. The report checks
that this replay at the operating point gives exactly the run's own detections.

Scoring, tables and plot are the classifier benchmark's (:mod:`speech.bench.detection`).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from speech.bench.detection import Fired, audio_key, score_stream, stream_report
from speech.bench.detection_report import detection_tables
from speech.bench.detection_data import HALVES, benchmark_streams, load_inputs, stream_seeds

# the sweep of the rejection (CTC probabilities of the best phrase); 0: no rejection
DEFAULT_REJECTS = (0.0, 0.0001, 0.001, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
PLOT_MARKS = (0.0, 0.01, 0.1, 0.2, 0.4, 0.6)


class Utterance(NamedTuple):
    """One utterance the voice-activity gate cut: its audio span (seconds), the grammar's best phrase, its
    CTC probability (the rejection score) and its posterior among the grammar's phrases."""

    start: float
    end: float
    text: str
    confidence: float
    posterior: float


class UtteranceRun(NamedTuple):
    """The live path's run over a stream: every utterance decoded, the run's own detections, and its
    compute (seconds in the model and the decoding, utterances decoded, wall seconds of the pipeline)."""

    utterances: list
    detections: list | None = None
    compute_seconds: float = 0.0
    model_calls: int = 0
    wall_seconds: float = 0.0


def stream_utterances(recognizer, audio, grammar: Sequence[str], reject: float, block_ms: float = 50.0,
                      vad_start_db: float = 10.0, vad_hangover_ms: float = 300.0) -> UtteranceRun:
    """Run ``audio (samples,)`` (at the model's rate) through the pipeline of ``speech listen --input-file
    --fast --grammar ... --reject REJECT`` (:meth:`speech.Model.stream`) and keep every utterance it
    decodes, rejected or not."""
    from dataclasses import replace

    from speech.api import Model
    from speech.bench.streaming import feed_fast

    rate = recognizer.sample_rate
    stream = Model(recognizer).stream(rate, grammar=list(grammar), vad_start_db=vad_start_db,
                                      vad_hangover_ms=vad_hangover_ms)
    stage = stream.pipeline.stage
    # as Model.stream(reject=...), except that 0 still computes the probabilities (and rejects nothing, as 0 there)
    stage.options = replace(stage.options, reject=float(reject))
    decode, seen = stage.decode_utterance, []

    def recording(ring, start: int, end: int):
        result, samples = decode(ring, start, end)
        best = result.alternatives[0] if result.alternatives else ("", 0.0)
        seen.append(Utterance(start / rate, end / rate, best[0], float(result.confidence or 0.0), float(best[1])))
        return result, samples

    stage.decode_utterance = recording
    found, summary, wall = feed_fast(stream.pipeline, audio, rate, block_ms)
    return UtteranceRun(seen, [Fired(d.time, d.label, d.score) for d in found], summary.compute_seconds,
                        summary.model_calls, wall)


def accepted(utterances: Sequence[Utterance], reject: float) -> list[Fired]:
    """The detections of the live path with the rejection ``reject``: each utterance whose best phrase has
    a CTC probability of at least ``reject``, at the utterance's end (the same as a run of the pipeline
    with that rejection, without running the model again)."""
    return [Fired(u.end, u.text, u.confidence) for u in utterances if u.text and u.confidence >= reject]


def sweep_rejection(utterances: Sequence[Utterance], events, seconds: float, rejects: Sequence[float],
                    tolerance: float = 1.0) -> list[dict]:
    """:func:`~speech.bench.detection.score_stream` of :func:`accepted` for each rejection, in the order of
    ``rejects``; each row has it as its ``threshold``."""
    return [{"threshold": float(r), **score_stream(accepted(utterances, r), events, seconds, tolerance)} for r in rejects]


def utterances_cached(cache: str | os.PathLike | None, key: str, compute: Callable[[], UtteranceRun]) -> tuple[UtteranceRun, bool]:
    """``(run, from the cache)``: the utterances of ``cache/key.json`` when it is there, else ``compute()``
    (its utterances saved there when ``cache`` is given)."""
    path = Path(cache) / f"{key}.json" if cache else None
    if path is not None and path.is_file():
        rows = json.loads(path.read_text(encoding="utf-8"))["utterances"]
        return UtteranceRun([Utterance(*row) for row in rows]), True
    run = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.json")
        tmp.write_text(json.dumps({"utterances": [list(u) for u in run.utterances]}), encoding="utf-8")
        os.replace(tmp, path)
    return run, False


def best_on_dev(report: dict) -> float | None:
    """The rejection of the sweep at which hits - false accepts on other speech - wrong labels is highest
    on the DEV half's real speech (the lower one of a tie), or None without that stream."""
    dev = next((s for s in report["streams"] if s["half"] == "dev" and s["negatives"] == "real"), None)
    if dev is None:
        return None
    net = [(r["hits"] - r["false_accepts_on_speech"] - r["wrong_label"], -r["threshold"]) for r in dev["sweep"]]
    return -max(net)[1]


def ctc_detection_benchmark(
    recognizer, shared: str | os.PathLike, noise_dir: str | os.PathLike, *, grammar: Sequence[str],
    reject: float, rejects: Sequence[float] = DEFAULT_REJECTS, synth_dir: str | os.PathLike | None = None,
    halves: Sequence[str] = HALVES, snr_db: float = 10.0, minutes: float | None = None, block_ms: float = 50.0,
    seed: int | Sequence[int] = 0, tolerance: float = 1.0, noise_rms: float = 0.01, cache: str | os.PathLike | None = None,
    model_key: str = "", progress: Callable[[str], None] | None = None, vad_start_db: float = 10.0,
    vad_hangover_ms: float = 300.0,
) -> dict:
    """The detection benchmark of a CTC model's live path with ``grammar`` (phrases the model can spell):
    the streams of :func:`~speech.bench.detection_data.benchmark_streams`, the model run once over each
    with the rejection ``reject`` (the operating point), the sweep over ``rejects``. Returns the report of
    :func:`speech.bench.detection.detection_benchmark`, its ``config`` holding ``reject``, ``grammar``
    and ``vad``, and ``best_on_dev`` (:func:`best_on_dev`). Several seeds: each stream built once per seed
    and the runs pooled, as the classifier's benchmark pools them."""
    import torch

    from speech.text import normalize_text

    if not recognizer.is_ctc:
        raise ValueError("ctc_detection_benchmark scores CTC models; classifiers: speech.bench.detection")
    phrases = [normalize_text(p) for p in grammar]
    rejects = sorted(set(float(r) for r in rejects) | {float(reject)})
    notes: list[str] = []
    rate = recognizer.sample_rate
    noise, clips, split = load_inputs(recognizer, shared, noise_dir, synth_dir, notes.append, known=set(phrases))
    vad = {"start_db": vad_start_db, "stop_db": min(6.0, vad_start_db), "hangover_ms": vad_hangover_ms}

    seeds = stream_seeds(seed)
    runs: dict[str, list] = {}
    utterances: dict[str, int] = {}
    checks, compute, calls, wall, audio_seconds = [], 0.0, 0, 0.0, 0.0
    for one_seed in seeds:
        for stream in benchmark_streams(clips, noise, rate, halves=halves, snr_db=snr_db, minutes=minutes, seed=one_seed,
                                        noise_rms=noise_rms, progress=progress):
            seconds = len(stream.audio) / rate
            key = audio_key(model_key, getattr(recognizer, "engine", ""), "ctc", tuple(phrases), vad_start_db,
                            vad_hangover_ms, stream.audio)
            run, cached = utterances_cached(cache, key, lambda: stream_utterances(
                recognizer, stream.audio, phrases, reject, block_ms, vad_start_db, vad_hangover_ms))
            rows = sweep_rejection(run.utterances, stream.events, seconds, rejects, tolerance)
            if run.detections is not None:  # the replayed rejection equals the run itself
                checks.append(run.detections == accepted(run.utterances, reject))
                compute, calls, wall = compute + run.compute_seconds, calls + run.model_calls, wall + run.wall_seconds
                audio_seconds += seconds
            runs.setdefault(stream.name, []).append((one_seed, stream, rows, cached))
            utterances[stream.name] = utterances.get(stream.name, 0) + len(run.utterances)
    streams = [stream_report(r, float(reject), rate) | {"utterances": utterances[name]} for name, r in runs.items()]
    if synth_dir is None:
        notes.append("no --synth-dir: the synthesized negatives are skipped")
    report = {
        "streams": streams,
        "speakers": split,
        "notes": notes,
        "checks": {"replay_equals_direct_run": all(checks) if checks else None, "streams_checked": len(checks)},
        "compute": {"model_ms_per_utterance": round(1000 * compute / max(calls, 1), 3), "utterances": calls,
                    "model_real_time_factor": round(compute / audio_seconds, 5) if audio_seconds else None,
                    "pipeline_real_time_factor": round(wall / audio_seconds, 5) if audio_seconds else None,
                    "audio_seconds": round(audio_seconds, 1), "threads": torch.get_num_threads()},
        "config": {"snr_db": snr_db, "minutes_per_stream": minutes, "block_ms": block_ms, "tolerance_s": tolerance,
                   "seed": seeds[0] if len(seeds) == 1 else seeds, "noise_rms": noise_rms, "gap_s": [0.5, 1.5],
                   "reject": float(reject), "thresholds": rejects,
                   "grammar": phrases, "vad": vad},
    }
    report["best_on_dev"] = best_on_dev(report)
    return report


def ctc_detection_tables(report: dict) -> str:
    """The CTC report in markdown: the tables of :func:`~speech.bench.detection_report.detection_tables` with the
    rejection as the operating point, and the compute of the utterances."""
    c = report["config"]
    v = c["vad"]
    grammar = ", ".join(c["grammar"])
    header = (f"Operating point: rejection {c['reject']:g} (an utterance's best phrase is a detection when its CTC "
              f"probability reaches it); grammar of {len(c['grammar'])} phrases ({grammar}); voice-activity gate "
              f"{v['start_db']:g} dB over the noise floor to start, {v['stop_db']:g} dB to go on, {v['hangover_ms']:g} ms "
              f"hangover; SNR {c['snr_db']:g} dB; a hit is the right phrase from the word's start to {c['tolerance_s']:g} s after its end"
              + (f"; stream seeds {' '.join(map(str, c['seed']))}, pooled." if isinstance(c.get("seed"), list) else "."))
    comp = report["compute"]
    compute_line = None
    if comp["utterances"]:
        compute_line = (f"compute ({comp['threads']} thread, {c.get('engine', 'torch')}): {comp['utterances']} utterances, "
                        f"{comp['model_ms_per_utterance']:.2f} ms each in the model and the grammar, whole pipeline real-time "
                        f"factor {comp['pipeline_real_time_factor']:.4f} over {comp['audio_seconds'] / 60:.1f} min of audio; "
                        f"replayed rejection equals the run at {c['reject']:g}: {report['checks']['replay_equals_direct_run']}")
    table = detection_tables(report, header=header, compute_line=compute_line, threshold_name="rejection")
    if report.get("best_on_dev") is not None:
        table += (f"\nDEV, real speech: hits - false accepts - wrong labels is highest at rejection "
                  f"{report['best_on_dev']:g} (the sweep's lowest of a tie)")
    return table


def add_ctc_arguments(parser) -> None:
    """The options of ``speech bench detection`` for CTC models."""
    from speech.live import DEFAULT_REJECT

    ctc = parser.add_argument_group("CTC models (--model commands-ctc): the voice-activity gate, the grammar and the rejection")
    ctc.add_argument("--grammar", metavar="FILE",
                     help="the phrases (one a line); its words are the commands, all others other speech (default: the ten commands)")
    ctc.add_argument("--reject", type=float, metavar="P",
                     help="the operating point: the CTC probability an utterance's best phrase needs, as 'speech listen --reject' "
                          f"(default: listen's, {DEFAULT_REJECT:g})")
    ctc.add_argument("--vad-start-db", type=float, default=10.0, help="as 'speech listen --vad-start-db' (default: 10)")
    ctc.add_argument("--vad-hangover-ms", type=float, default=300.0, help="as 'speech listen --vad-hangover-ms' (default: 300)")


def check_ctc_arguments(args) -> None:
    """One-line :class:`~speech.transcribe.UsageError` for CTC options out of their bounds."""
    from speech.transcribe import UsageError

    if args.reject is not None and not 0 <= args.reject < 1:
        raise UsageError("--reject must be in [0, 1) (0: no rejection)")
    if args.vad_hangover_ms <= 0:
        raise UsageError("--vad-hangover-ms must be positive")
    if args.thresholds and any(not 0 <= t <= 1 for t in args.thresholds):
        raise UsageError("--thresholds must be in [0, 1]")


def run_ctc_detection(args, recognizer, model_key: str, synth_dir: str | None, say: Callable[[str], None]) -> dict:
    """``speech bench detection`` for a CTC model: the grammar (``--grammar``, default the ten commands),
    checked as ``speech listen`` checks it; the report of :func:`ctc_detection_benchmark`."""
    from speech.api import Model
    from speech.bench.measure import COMMANDS
    from speech.live import DEFAULT_REJECT

    reject = DEFAULT_REJECT if args.reject is None else args.reject
    grammar = args.grammar if args.grammar else list(COMMANDS)
    options = Model(recognizer).decode_options(grammar=grammar, on_warning=say)  # ValueError: a bad grammar
    t0 = time.perf_counter()
    report = ctc_detection_benchmark(
        recognizer, args.data, args.noise_dir, grammar=options.grammar, reject=reject,
        rejects=args.thresholds if args.thresholds else DEFAULT_REJECTS, synth_dir=synth_dir,
        halves=[h for h in HALVES if h in args.halves], snr_db=args.snr, minutes=args.minutes, block_ms=args.block_ms,
        seed=args.seed, tolerance=args.tolerance, cache=args.cache, model_key=model_key, progress=say,
        vad_start_db=args.vad_start_db, vad_hangover_ms=args.vad_hangover_ms)
    report["compute"]["benchmark_wall_s"] = round(time.perf_counter() - t0, 1)
    return report


__all__ = ["DEFAULT_REJECTS", "Utterance", "UtteranceRun", "stream_utterances", "accepted", "sweep_rejection",
           "utterances_cached", "best_on_dev", "ctc_detection_benchmark", "ctc_detection_tables", "add_ctc_arguments",
           "check_ctc_arguments", "run_ctc_detection"]
