"""``speech bench detection``: the live path measured the way keyword-spotting work reports it, with a
DET curve (miss rate against false accepts per hour of non-command speech).

Streams (:func:`~speech.bench.detection_data.benchmark_streams` of :func:`speech.data.streams.build_stream`)
interleave the commands of speakers the bundled model never trained on with real speech that holds no
command, in background noise at ``--snr`` (10 dB): the ``_unknown_`` words of the same speakers
(``speech_commands_v2_test_dev``), FSDD digits (8 kHz, resampled) and the other words of
``speech_commands_v1_sample``. A second stream of the same commands among synthesized sentences with no
command word (``speech synth --phrases``, :data:`NEGATIVE_SENTENCES`) is reported apart, after the real one.

Speakers: the 72 speakers of ``speech_commands_v2_test_dev`` are split as ``recipes/commands/
build_manifests.py`` splits them (seeded shuffle, the first 36 trained on); the other 36 are split once
more, by :func:`speaker_halves`, into a DEV half (for choosing thresholds) and a TEST half (the final
number). FSDD's 5 speakers, the v0.01 sample's speakers and the synthesized voices are split into the
two halves the same way; every figure names its half and the report lists the speakers. The split is the
bundled ``commands`` model's (``--model`` may name another: then "unseen" holds only if that model was
trained the same way).

The model runs once over each stream, through the pipeline of ``speech listen --input-file --fast``
(:class:`~speech.streaming.CommandSpotter`, one window per hop); the posteriors of every hop are kept
(and cached with ``--cache``) and :class:`~speech.streaming.RecognizeCommands` is replayed on them for
each threshold of the sweep. See docs/live.md, "Detection benchmark (DET)".

A CTC model (``--model commands-ctc``) is scored by :mod:`speech.bench.detection_ctc` on the same
streams: its live path (voice-activity gate, grammar, rejection of out-of-grammar speech) with a sweep of
the rejection.

Scoring (hits, false accepts, pooling several seeds' streams, hits within budgets) is
:mod:`speech.bench.detection_score`; ``detection_benchmark`` returns the report;
:mod:`speech.bench.detection_report` writes its markdown
(``detection_tables``) and PNG (``det_plot``). numpy, torch, matplotlib and :mod:`speech.streaming` are
imported inside the functions, so ``speech bench --help`` stays fast.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

from speech.bench.measure import SPEECH_COMMANDS_TEST, load_now, machine_info, machine_line, shared_data_dir
from speech.api import DEFAULT_GATE_DB
from speech.bench.detection_data import (
    DEFAULT_THRESHOLDS, HALVES, SYNTH_ENGINES, BenchStream, benchmark_streams, load_inputs, make_synth_negatives, stream_seeds,
)
from speech.bench.detection_report import det_plot, detection_tables
from speech.bench.detection_score import (  # noqa: F401 (score_stream, pool_sweeps: part of this module's interface)
    BUDGETS, POOLED_COUNTS, latency_summary, pool_sweeps, score_stream, within_budgets,
)
from speech.bench.streaming import default_noise_dir, error, feed_fast, write_report

if TYPE_CHECKING:
    import numpy as np

    from speech.data.streams import StreamEvent
    from speech.streaming import SmoothingConfig

EXIT_OK, EXIT_USAGE = 0, 2
# ------------------------------------------------------------------------------------------ the model, once per stream
class Fired(NamedTuple):
    """A detection of a replayed smoothing: the hop's time (seconds), the label and its averaged score."""

    time: float
    label: str
    score: float


@dataclass
class Posteriors:
    """The model's output on a stream: ``times`` ``(hops,)`` (window ends, seconds), ``probabilities``
    ``(hops, classes)``, and when it ran here (not from the cache) the detections of that run and its
    compute (seconds in the model, model calls, wall seconds of the whole pipeline)."""

    times: np.ndarray
    probabilities: np.ndarray
    detections: list | None = None
    compute_seconds: float = 0.0
    model_calls: int = 0
    wall_seconds: float = 0.0


def stream_posteriors(recognizer, audio: np.ndarray, hop_seconds: float = 0.1, smoothing: SmoothingConfig | None = None,
                      block_ms: float = 50.0, gate_db: float | None = None) -> Posteriors:
    """Run ``audio`` (at the model's rate) through the pipeline of ``speech listen --input-file --fast``
    (``make_stage``: :class:`~speech.streaming.CommandSpotter`, one window per hop, ``smoothing``) and keep
    the posteriors of every hop next to the run's own detections. ``gate_db``: the spotter's energy gate
    (None: off; gated hops carry the ``_silence_`` posterior the spotter gives them)."""
    import numpy as np

    from speech.streaming import RecognizeCommands, StreamPipeline, make_stage

    class Recorder(RecognizeCommands):
        """The spotter's smoothing, keeping what it is given."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen: list[tuple[float, np.ndarray]] = []

        def process(self, time_s, probabilities):
            self.seen.append((time_s, np.array(probabilities, copy=True)))
            return super().process(time_s, probabilities)

    rate = recognizer.sample_rate
    stage = make_stage(recognizer, hop_seconds, smoothing, gate_db=gate_db)
    stage.smoother = Recorder(recognizer.labels, stage.smoother.config)
    found, summary, wall = feed_fast(StreamPipeline(stage, rate, rate), audio, rate, block_ms)
    seen = stage.smoother.seen
    times = np.array([t for t, _ in seen], dtype=np.float64)
    probs = np.stack([p for _, p in seen]) if seen else np.zeros((0, len(recognizer.labels)), np.float32)
    return Posteriors(times, probs, [Fired(d.time, d.label, d.score) for d in found],
                      summary.compute_seconds, summary.model_calls, wall)


def replay(times: np.ndarray, probabilities: np.ndarray, labels: Sequence[str], smoothing: SmoothingConfig) -> list[Fired]:
    """The detections :class:`~speech.streaming.RecognizeCommands` makes with ``smoothing`` on the
    posteriors of a stream (``times (hops,)``, ``probabilities (hops, classes)``): the same as a run of the
    pipeline with that smoothing, without running the model again."""
    from speech.streaming import RecognizeCommands

    smoother = RecognizeCommands(list(labels), smoothing)
    fired = []
    for t, p in zip(times.tolist(), probabilities):
        hit = smoother.process(t, p)
        if hit is not None:
            fired.append(Fired(t, hit[0], hit[1]))
    return fired


def posteriors_cached(cache: str | os.PathLike | None, key: str, compute: Callable[[], Posteriors]) -> tuple[Posteriors, bool]:
    """``(posteriors, from the cache)``: ``cache/key.npz`` when it is there, else ``compute()`` (saved
    there when ``cache`` is given)."""
    import numpy as np

    path = Path(cache) / f"{key}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as data:
            return Posteriors(data["times"], data["probabilities"]), True
    result = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, times=result.times, probabilities=result.probabilities)
        os.replace(tmp, path)
    return result, False


# ------------------------------------------------------------------------------------------ the sweep
def sweep(times: np.ndarray, probabilities: np.ndarray, labels: Sequence[str], events: Sequence[StreamEvent],
          seconds: float, smoothing: SmoothingConfig, thresholds: Sequence[float], tolerance: float = 1.0) -> list[dict]:
    """:func:`score_stream` of :func:`replay` for each threshold (the other smoothing settings as given),
    in the order of ``thresholds``; each row has its ``threshold``."""
    from dataclasses import replace

    rows = []
    for t in thresholds:
        fired = replay(times, probabilities, labels, replace(smoothing, detection_threshold=float(t)))
        rows.append({"threshold": float(t), **score_stream(fired, events, seconds, tolerance)})
    return rows


# ------------------------------------------------------------------------------------------ the benchmark
def audio_key(*parts) -> str:
    """A short digest of the parts (arrays by their bytes) for cache file names."""
    digest = hashlib.sha256()
    for p in parts:
        digest.update(p.tobytes() if hasattr(p, "tobytes") else repr(p).encode())
    return digest.hexdigest()[:20]


def stream_report(runs: Sequence[tuple[int, BenchStream, list[dict], bool]], threshold: float, rate: int) -> dict:
    """The report of one stream, or of the same stream built with several seeds (``runs``: ``(seed, stream,
    rows of its sweep, cached)``; several: pooled by :func:`pool_sweeps`, each seed's counts kept under
    ``"seeds"``): its description, the scores at the operating point (``threshold``, one of the rows) with
    the false accepts by source, the sweep with latencies summarized, and the best hits within each budget
    (:func:`within_budgets`)."""
    stream = runs[0][1]
    rows = runs[0][2] if len(runs) == 1 else pool_sweeps([r[2] for r in runs])
    point = next(r for r in rows if r["threshold"] == threshold)
    report = {
        "stream": stream.name, "half": stream.half, "negatives": stream.kind,
        "seconds": round(sum(len(r[1].audio) for r in runs) / rate, 1),
        "words": sum(len(r[1].events) for r in runs), "negative_words": sum(not e.is_command for r in runs for e in r[1].events),
        "speakers": stream.speakers, "cached": all(r[3] for r in runs),
        "operating_point": {**{k: v for k, v in point.items() if k != "latencies"}, **latency_summary(point["latencies"])},
        "sweep": [{k: v for k, v in r.items() if k not in ("latencies", "by_source")} | latency_summary(r["latencies"]) for r in rows],
        "budgets": within_budgets(rows),
    }
    if len(runs) > 1:
        keep = POOLED_COUNTS + ("threshold", "miss_rate", "false_accepts_per_hour")
        report["seeds"] = [{"seed": seed, "seconds": round(len(s.audio) / rate, 1), "budgets": within_budgets(r),
                            "sweep": [{k: v for k, v in row.items() if k in keep} for row in r]} for seed, s, r, _ in runs]
    return report


def detection_benchmark(
    recognizer, shared: str | os.PathLike, noise_dir: str | os.PathLike, *, synth_dir: str | os.PathLike | None = None,
    halves: Sequence[str] = HALVES, snr_db: float = 10.0, minutes: float | None = None, hop_seconds: float = 0.1,
    smoothing: SmoothingConfig | None = None, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, block_ms: float = 50.0,
    seed: int | Sequence[int] = 0, tolerance: float = 1.0, noise_rms: float = 0.01, cache: str | os.PathLike | None = None,
    model_key: str = "", progress: Callable[[str], None] | None = None, gate_db: float | None = None,
) -> dict:
    """Build the streams of each half (:func:`benchmark_streams`: real negatives; synthesized ones when
    ``synth_dir`` holds a ``synth.jsonl``), run the model once over each, sweep the threshold and return
    the report: ``{"streams": [...], "speakers": {...}, "config": {...}, "compute": {...}, "notes": [...]}``.
    ``model_key`` names the model in cache keys (e.g. a digest of its file). Several seeds: each stream is
    built once per seed (the same clips in other orders, with other noise and gaps) and the runs of a stream
    are pooled (:func:`stream_report`), five 30-minute DEV streams weighing a false accept a fifth as much
    as one (they share their clips, so pooling narrows the stream's noise, not the speakers'). CTC models:
    :func:`speech.bench.detection_ctc.ctc_detection_benchmark`.
    """
    import torch

    from speech.streaming import SmoothingConfig

    if recognizer.is_ctc:
        raise ValueError("detection_benchmark scores classifiers; CTC models: speech.bench.detection_ctc")
    smoothing = smoothing or SmoothingConfig()
    thresholds = sorted(set(float(t) for t in thresholds) | {float(smoothing.detection_threshold)})
    notes: list[str] = []
    rate = recognizer.sample_rate
    noise, clips, split = load_inputs(recognizer, shared, noise_dir, synth_dir, notes.append)

    seeds = stream_seeds(seed)
    threshold = float(smoothing.detection_threshold)
    runs: dict[str, list] = {}
    compute, calls, wall, audio_seconds, checks, hops = 0.0, 0, 0.0, 0.0, [], 0
    for one_seed in seeds:
        for stream in benchmark_streams(clips, noise, rate, halves=halves, snr_db=snr_db, minutes=minutes, seed=one_seed,
                                        noise_rms=noise_rms, progress=progress):
            audio, events = stream.audio, stream.events
            seconds = len(audio) / rate
            key = audio_key(model_key, getattr(recognizer, "engine", ""), hop_seconds, recognizer.window_seconds,
                            *([] if gate_db is None else [f"gate{gate_db:g}"]), audio)
            post, cached = posteriors_cached(
                cache, key, lambda: stream_posteriors(recognizer, audio, hop_seconds, smoothing, block_ms, gate_db))
            rows = sweep(post.times, post.probabilities, recognizer.labels, events, seconds, smoothing, thresholds, tolerance)
            if post.detections is not None:  # the replayed smoothing equals the run itself at its own settings
                checks.append(post.detections == replay(post.times, post.probabilities, recognizer.labels, smoothing))
                compute, calls, wall = compute + post.compute_seconds, calls + post.model_calls, wall + post.wall_seconds
                audio_seconds, hops = audio_seconds + seconds, hops + len(post.times)
            runs.setdefault(stream.name, []).append((one_seed, stream, rows, cached))
    streams = [stream_report(r, threshold, rate) for r in runs.values()]
    if synth_dir is None:
        notes.append("no --synth-dir: the synthesized negatives are skipped")
    return {
        "streams": streams,
        "speakers": split,
        "notes": notes,
        "checks": {"replay_equals_direct_run": all(checks) if checks else None, "streams_checked": len(checks)},
        "compute": {"model_ms_per_call": round(1000 * compute / max(calls, 1), 3), "model_calls": calls, "hops": hops,
                    "model_ms_per_hop": round(1000 * compute / max(hops, 1), 3),
                    "gated_fraction": round(1 - calls / hops, 4) if hops else None,
                    "model_real_time_factor": round(compute / audio_seconds, 5) if audio_seconds else None,
                    "pipeline_real_time_factor": round(wall / audio_seconds, 5) if audio_seconds else None,
                    "audio_seconds": round(audio_seconds, 1), "threads": torch.get_num_threads()},
        "config": {"snr_db": snr_db, "minutes_per_stream": minutes, "hop_ms": hop_seconds * 1000,
                   "window_s": recognizer.window_seconds, "block_ms": block_ms, "tolerance_s": tolerance,
                   "seed": seeds[0] if len(seeds) == 1 else seeds,
                   "noise_rms": noise_rms, "gap_s": [0.5, 1.5], **smoothing.__dict__, "thresholds": thresholds,
                   "gate_db": gate_db},
    }


# ------------------------------------------------------------------------------------------ command line
def add_detection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", default="commands", help="model name or file (default: commands)")
    parser.add_argument("--engine", choices=("auto", "torch", "onnx"), default="auto",
                        help="PyTorch or onnxruntime, as 'speech listen --engine' (default: auto, what the live tool uses)")
    parser.add_argument("--data", default=str(shared_data_dir()),
                        help="the shared data folder: speech_commands_v2_test_dev, fsdd, speech_commands_v1_sample (default: $SPEECH_DATA_DIR or ../shared/data)")
    parser.add_argument("--noise-dir", default=default_noise_dir(),
                        help="background noise recordings (default: the shared data's background_noise/)")
    parser.add_argument("--synth-dir", metavar="DIR",
                        help="synthesized negatives: the output of 'speech synth --phrases'; made there from the built-in "
                             "sentences (or --sentences) when DIR has no synth.jsonl. Without it they are skipped")
    parser.add_argument("--sentences", metavar="FILE", help="sentences to synthesize into --synth-dir, one a line, no command word")
    parser.add_argument("--synth-engines", default=SYNTH_ENGINES, help="engines for --synth-dir (default: %(default)s)")
    parser.add_argument("--synth-variants", type=int, default=4, help="voices per engine for --synth-dir; even ones DEV, odd TEST (default: 4)")
    parser.add_argument("--synth-jobs", type=int, default=1, help="synthesis processes (default: 1)")
    parser.add_argument("--halves", nargs="+", choices=HALVES, default=list(HALVES), help="speaker halves to measure (default: test dev)")
    parser.add_argument("--snr", type=float, default=10.0, help="SNR of every word over the noise, dB (default: 10)")
    parser.add_argument("--minutes", type=float, help="length of each stream (default: as long as every clip of the half once)")
    parser.add_argument("--hop-ms", type=float, default=100.0, help="window hop (default: 100)")
    parser.add_argument("--average-window-ms", type=float, default=500.0, help="posterior averaging window (default: 500)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="the operating point's threshold (default: the model's saved operating point, as speech listen; else 0.5)")
    parser.add_argument("--false-accepts-per-hour", type=float, metavar="RATE",
                        help="instead of --threshold: the threshold the model's saved DEV curve gives for this rate, as "
                             "'speech listen --false-accepts-per-hour' (measure it on TEST: --halves test)")
    parser.add_argument("--suppression-ms", type=float, default=1000.0, help="suppression time (default: 1000)")
    parser.add_argument("--minimum-count", type=int, default=3, help="windows needed in the average (default: 3)")
    parser.add_argument("--gate-db", type=float, default=DEFAULT_GATE_DB,
                        help="the spotter's energy gate, as 'speech listen --gate-db'; 0: off (default: %(default)s)")
    parser.add_argument("--thresholds", type=float, nargs="+",
                        help="the sweep (default: 0.2 .. 0.99; CTC models: rejections 0 .. 0.9)")
    parser.add_argument("--block-ms", type=float, default=50.0, help="audio block length (default: 50)")
    parser.add_argument("--tolerance", type=float, default=1.0, help="seconds after a word's end a detection still hits it (default: 1.0)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], metavar="SEED",
                        help="seed of the stream building; several (e.g. 0 1 2 3 4): each stream built once per seed, the "
                             "same clips in other orders with other noise, and the runs pooled: counts and hours of other "
                             "speech summed at each threshold (default: 0)")
    parser.add_argument("--cache", metavar="DIR", help="keep the posteriors of each stream (CTC models: its utterances) here (a rerun skips the model)")
    parser.add_argument("--out", metavar="FILE", action="append", default=[],
                        help="also write the tables (FILE.md) or the report (FILE.json); may be given twice")
    parser.add_argument("--plot", metavar="FILE.png", help="write the DET curves as a PNG")
    from speech.bench.detection_ctc import add_ctc_arguments

    add_ctc_arguments(parser)


def run_detection(args: argparse.Namespace) -> int:
    import torch

    from speech.bench.detection_ctc import PLOT_MARKS, check_ctc_arguments, ctc_detection_tables, run_ctc_detection
    from speech.checkpoint import resolve_model_path
    from speech.streaming import SmoothingConfig, live_threshold, threshold_for_false_accepts
    from speech.transcribe import UsageError, load_recognizer

    torch.set_num_threads(1)
    info = machine_info()
    say = lambda line: print(f"detection: {line}", file=sys.stderr)  # noqa: E731
    try:
        if (args.minutes is not None and args.minutes <= 0) or args.hop_ms <= 0 or (args.threshold is not None and not 0 < args.threshold <= 1):
            raise UsageError("--minutes and --hop-ms must be positive, --threshold in (0, 1]")
        if not args.noise_dir or not Path(args.noise_dir).is_dir():
            raise UsageError(f"--noise-dir {args.noise_dir}: no such folder")
        for name in (SPEECH_COMMANDS_TEST, "fsdd", "speech_commands_v1_sample"):
            if not (Path(args.data) / name).is_dir():
                raise UsageError(f"--data {args.data}: no {name}/ folder")
        for path in args.out + ([args.plot] if args.plot else []):
            if not Path(path).resolve().parent.is_dir():
                raise UsageError(f"{path}: the folder does not exist")
        check_ctc_arguments(args)
        stream_seeds(args.seed)  # a seed given twice: said before anything is loaded or synthesized
        recognizer = load_recognizer(args.model, "cpu", batch_size=64, engine=args.engine, threads=1)
        if not recognizer.is_ctc and (args.grammar or args.reject is not None):
            raise UsageError("--grammar and --reject are for CTC models (this model is a classifier)")
        if recognizer.is_ctc and args.false_accepts_per_hour is not None:
            raise UsageError("--false-accepts-per-hour picks a classifier's threshold (CTC models: --reject)")
        if not recognizer.is_ctc and args.thresholds and any(not 0 < t <= 1 for t in args.thresholds):
            raise UsageError("--thresholds must be in (0, 1]")
        model_file = resolve_model_path(args.model)
        model_key = hashlib.sha256(Path(model_file).read_bytes()).hexdigest() if Path(model_file).is_file() else str(model_file)
        synth_dir = args.synth_dir
        if synth_dir:
            why = make_synth_negatives(synth_dir, args.sentences, args.synth_engines, args.synth_variants, jobs=args.synth_jobs)
            if why:
                say(why)
                synth_dir = None
        if recognizer.is_ctc:
            report = run_ctc_detection(args, recognizer, model_key, synth_dir, say)
        else:
            asked = None
            if args.false_accepts_per_hour is not None:
                if args.threshold is not None:
                    raise UsageError("give --threshold or --false-accepts-per-hour, not both")
                asked = threshold_for_false_accepts(
                    recognizer.operating_point, args.false_accepts_per_hour,
                    SmoothingConfig(args.average_window_ms, 0.5, args.suppression_ms, args.minimum_count), args.hop_ms, say)
            threshold = asked["threshold"] if asked else live_threshold(recognizer.operating_point, args.threshold)
            smoothing = SmoothingConfig(args.average_window_ms, threshold, args.suppression_ms, args.minimum_count)
            report = detection_benchmark(
                recognizer, args.data, args.noise_dir, synth_dir=synth_dir, halves=[h for h in HALVES if h in args.halves],
                snr_db=args.snr, minutes=args.minutes, hop_seconds=args.hop_ms / 1000, smoothing=smoothing,
                thresholds=args.thresholds or DEFAULT_THRESHOLDS, block_ms=args.block_ms, seed=args.seed,
                tolerance=args.tolerance, cache=args.cache, model_key=model_key, progress=say,
                gate_db=args.gate_db if args.gate_db > 0 else None)
        if args.synth_dir and synth_dir is None:
            report["notes"] = [n for n in report["notes"] if "--synth-dir" not in n] + [why]
    except (UsageError, ValueError, OSError) as err:
        error("detection", str(err))
        return EXIT_USAGE
    report["config"].update(model=str(args.model), engine=recognizer.engine, data=str(args.data),
                            **({} if args.false_accepts_per_hour is None or recognizer.is_ctc else {
                                "false_accepts_per_hour_on_dev": args.false_accepts_per_hour, "dev_curve_row": asked}))
    report["machine"] = machine_line(info, load_now())
    table = ctc_detection_tables(report) if recognizer.is_ctc else detection_tables(report)
    print(table)
    for path in args.out:
        write_report(path, report, table)
    if args.plot:
        title = f"DET of '{args.model}' ({recognizer.engine}), {args.snr:g} dB SNR, speakers never trained on"
        if len(args.seed) > 1:
            title += f"\n{len(args.seed)} streams of each half pooled (--seed {' '.join(map(str, args.seed))})"
        if recognizer.is_ctc:
            det_plot(report, args.plot, title, threshold_name="rejection", marks=PLOT_MARKS)
        else:
            det_plot(report, args.plot, title)
    return EXIT_OK
