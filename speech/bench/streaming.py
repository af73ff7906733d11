"""``speech bench streaming``: a long stream of background noise with command words inserted at known
times and SNRs, run through :mod:`speech.streaming`'s pipeline exactly as ``speech listen --input-file
--fast`` runs it; scores hit rate, false accepts per hour, latency after the word's end and compute per hop
(one thread), on noise alone and other words alone too. See docs/live.md.

``streaming_benchmark`` returns the report, ``benchmark_table`` its markdown; numpy, torch and
:mod:`speech.streaming` are imported inside the functions, so ``speech bench --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from speech.api import DEFAULT_GATE_DB
from speech.bench.measure import shared_data_dir
from speech.data.streams import active_span, noise_track  # noqa: F401 (the stream pieces live in the library)

if TYPE_CHECKING:
    import numpy as np

    from speech.streaming import Detection, SmoothingConfig, StreamPipeline

EXIT_OK, EXIT_USAGE = 0, 2


@dataclass
class WordEvent:
    """A word inserted into a benchmark stream: its label (``text`` for CTC scoring) and where the
    spoken part lies (seconds)."""

    label: str
    start: float
    end: float


def insert_words(
    track: np.ndarray, clips: list[tuple[str, np.ndarray]], snr_db: float, sample_rate: int,
    rng: np.random.Generator, gap: tuple[float, float] = (1.5, 3.5), noise_rms: float = 0.01,
) -> list[WordEvent]:
    """Add clips to ``track`` in place, one after another with random gaps, until it is full; each word's
    spoken part is scaled to ``snr_db`` over the track's noise there. Returns the inserted words."""
    import numpy as np

    events = []
    pos = int(rng.uniform(*gap) * sample_rate)
    order = rng.permutation(len(clips))
    i = 0
    while True:
        label, wave = clips[order[i % len(clips)]]
        i += 1
        if pos + len(wave) > len(track):
            break
        a, b = active_span(wave, sample_rate)
        word_power = float(np.mean(np.square(wave[a:b], dtype=np.float64)))
        noise_power = float(np.mean(np.square(track[pos + a : pos + b], dtype=np.float64))) or noise_rms**2
        gain = math.sqrt(noise_power * 10 ** (snr_db / 10) / max(word_power, 1e-12))
        gain = min(gain, 0.99 / max(float(np.abs(wave).max()), 1e-6))  # no clipping
        track[pos : pos + len(wave)] += (wave * gain).astype(np.float32)
        events.append(WordEvent(label, (pos + a) / sample_rate, (pos + b) / sample_rate))
        pos += len(wave) + int(rng.uniform(*gap) * sample_rate)
    return events


@dataclass
class ConditionResult:
    """Scores of one benchmark stream."""

    name: str
    seconds: float
    words: int
    hits: int
    false_accepts: int
    latencies: list[float]
    compute_seconds: float
    model_calls: int
    wall_seconds: float

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.words if self.words else None

    @property
    def false_accepts_per_hour(self) -> float:
        return self.false_accepts / (self.seconds / 3600) if self.seconds else 0.0

    def to_json(self) -> dict:
        import numpy as np

        lat = np.asarray(self.latencies) if self.latencies else None
        return {
            "condition": self.name, "seconds": round(self.seconds, 1), "words": self.words, "hits": self.hits,
            "hit_rate": None if self.hit_rate is None else round(self.hit_rate, 4),
            "false_accepts": self.false_accepts, "false_accepts_per_hour": round(self.false_accepts_per_hour, 1),
            "latency_median_s": None if lat is None else round(float(np.median(lat)), 3),
            "latency_p90_s": None if lat is None else round(float(np.percentile(lat, 90)), 3),
        }


def score_detections(detections: list[Detection], events: list[WordEvent], tolerance: float = 1.5) -> tuple[int, int, list[float]]:
    """``(hits, false accepts, latencies)``: a detection hits the first unmatched word with its label
    whose span (extended by ``tolerance`` seconds after its end) holds the detection time; latency is
    detection time minus the word's end. Every other detection is a false accept."""
    matched = [False] * len(events)
    hits, false, latencies = 0, 0, []
    for d in detections:
        for i, e in enumerate(events):
            if not matched[i] and e.label == d.label and e.start <= d.time <= e.end + tolerance:
                matched[i] = True
                hits += 1
                latencies.append(d.time - e.end)
                break
        else:
            false += 1
    return hits, false, latencies


def feed_fast(pipeline: StreamPipeline, audio: np.ndarray, sample_rate: int, block_ms: float):
    """Feed ``audio`` through ``pipeline`` as ``speech listen --input-file --fast`` does (a file feeder
    thread, the block queue, :func:`~speech.streaming.run_stream`): ``(detections, summary, wall seconds)``."""
    from speech.streaming import BlockQueue, FileInput, run_stream

    blocks = BlockQueue()
    source = FileInput(audio, sample_rate, max(1, int(sample_rate * block_ms / 1000)), realtime=False)
    found: list[Detection] = []
    t0 = time.perf_counter()
    source.start(blocks)
    try:
        summary = run_stream(blocks, pipeline, found.append)
    finally:
        source.stop()
    return found, summary, time.perf_counter() - t0


def run_condition(name: str, audio: np.ndarray, events: list[WordEvent], make_pipeline: Callable[[], StreamPipeline],
                  sample_rate: int, block_ms: float, tolerance: float) -> ConditionResult:
    """Feed ``audio`` through a fresh pipeline as ``--input-file --fast`` does and score it."""
    found, summary, wall = feed_fast(make_pipeline(), audio, sample_rate, block_ms)
    hits, false, latencies = score_detections(found, events, tolerance)
    return ConditionResult(name, summary.seconds, len(events), hits, false, latencies,
                           summary.compute_seconds, summary.model_calls, wall)


def streaming_benchmark(
    recognizer, rows, noise_dir: str, *, minutes: float = 3.0, snrs: tuple[float, ...] = (20.0, 10.0, 5.0),
    hop_seconds: float = 0.1, smoothing: SmoothingConfig | None = None, block_ms: float = 50.0,
    seed: int = 0, tolerance: float = 1.5, noise_rms: float = 0.01, progress: Callable[[str], None] | None = None,
    gate_db: float | None = None, compare_gate: bool = False,
) -> dict:
    """Build the benchmark streams from manifest ``rows`` and the noise recordings, run them and return
    ``{"conditions": [ConditionResult.to_json()...], "compute": {...}, "config": {...}}``.

    Streams (``minutes`` each): command words (labels the model can say, except ``_silence_``/``_unknown_``)
    at each SNR; noise alone; other words (``_unknown_`` and words the model does not know) at the
    highest SNR. Words come from ``rows`` with replacement; classifiers are scored on labels, CTC
    models on the text. ``gate_db``: the command spotter's energy gate (None: off); ``compare_gate``: run
    every stream a second time without it and report both (hits and compute per hop).
    """
    import numpy as np
    import torch

    from speech.audio import find_audio_files, load_audio
    from speech.streaming import NEVER_FIRE, SILENCE, UNKNOWN, StreamPipeline, make_stage

    rate = recognizer.sample_rate
    rng = np.random.default_rng(seed)
    noise_files = find_audio_files(noise_dir)
    if not noise_files:
        raise ValueError(f"{noise_dir}: no noise recordings")
    recordings = [load_audio(f, rate).numpy() for f in noise_files]
    known = set(recognizer.labels) - set(NEVER_FIRE) if not recognizer.is_ctc else None

    def word_of(u) -> str:
        return (u.text or u.label) if recognizer.is_ctc else u.label

    commands, others = [], []
    for u in rows:
        if u.label == SILENCE:
            continue
        is_command = (u.label in known) if known is not None else (u.label != UNKNOWN)
        (commands if is_command else others).append(u)
    if not commands:
        raise ValueError("the manifest has no words this model can recognize")

    def load(us) -> list[tuple[str, np.ndarray]]:
        return [(word_of(u), load_audio(u.audio_filepath, rate, offset=u.offset,
                                        duration=u.duration if u.offset else None).numpy()) for u in us]

    command_clips, other_clips = load(commands), load(others)
    samples = int(minutes * 60 * rate)

    def pipeline_with(gate: float | None) -> Callable[[], StreamPipeline]:
        def make() -> StreamPipeline:
            return StreamPipeline(make_stage(recognizer, hop_seconds, smoothing, gate_db=gate), rate, rate)
        return make

    streams: list[tuple[str, np.ndarray, list[WordEvent]]] = []
    for snr in snrs:
        track = noise_track(recordings, samples, noise_rms, rng, rate)
        streams.append((f"commands, SNR {snr:g} dB", track, insert_words(track, command_clips, snr, rate, rng, noise_rms=noise_rms)))
    streams.append(("noise only", noise_track(recordings, samples, noise_rms, rng, rate), []))
    if other_clips:
        track = noise_track(recordings, samples, noise_rms, rng, rate)
        insert_words(track, other_clips, max(snrs), rate, rng, noise_rms=noise_rms)
        streams.append((f"other words, SNR {max(snrs):g} dB", track, []))

    def run_all(gate: float | None) -> tuple[list[ConditionResult], dict]:
        results = []
        for name, audio, events in streams:
            if progress:
                progress(name + ("" if gate is None else f", gate {gate:g} dB"))
            results.append(run_condition(name, audio, events, pipeline_with(gate), rate, block_ms, tolerance))
        seconds = sum(r.seconds for r in results)
        compute = sum(r.compute_seconds for r in results)
        calls = sum(r.model_calls for r in results)
        hops = sum(int(r.seconds / hop_seconds) for r in results) if not recognizer.is_ctc else calls
        wall = sum(r.wall_seconds for r in results)
        return results, {
            "gate_db": gate,
            "model_ms_per_hop": round(1000 * compute / max(hops, 1), 3),
            "model_ms_per_call": round(1000 * compute / max(calls, 1), 3),
            "model_calls": calls, "hops": hops,
            "model_real_time_factor": round(compute / seconds, 5) if seconds else None,
            "pipeline_real_time_factor": round(wall / seconds, 5) if seconds else None,
            "audio_seconds": round(seconds, 1), "threads": torch.get_num_threads(),
            "per_stream": [{"condition": r.name, "model_calls": r.model_calls,
                            "model_ms_per_hop": round(1000 * r.compute_seconds / max(int(r.seconds / hop_seconds), 1), 3)}
                           for r in results],
        }

    results, compute = run_all(gate_db)
    ungated = None
    if compare_gate and gate_db is not None and not recognizer.is_ctc:
        plain, plain_compute = run_all(None)
        ungated = {"conditions": [r.to_json() for r in plain], "compute": plain_compute}
    return {
        "conditions": [r.to_json() for r in results],
        "compute": compute,
        "without_gate": ungated,
        "config": {
            "minutes_per_stream": minutes, "snr_db": list(snrs), "hop_ms": hop_seconds * 1000,
            "window_s": recognizer.window_seconds, "block_ms": block_ms, "tolerance_s": tolerance, "seed": seed,
            "noise_rms": noise_rms, **({} if smoothing is None else smoothing.__dict__),
            "command_clips": len(command_clips), "other_clips": len(other_clips),
        },
    }


LISTEN_PEAK = """
import resource, sys
from speech.cli import main
rc = main(sys.argv[1:])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "RC", rc)
"""


def listen_memory(model: str, minutes: Sequence[float], noise_dir: str, engine: str = "auto") -> list[dict]:
    """Peak RSS of ``speech listen --input-file FILE --fast`` (its own process) on files of real background
    noise ``minutes`` long (the recordings looped): what a long recording costs in memory."""
    import subprocess
    import tempfile

    import numpy as np
    import soundfile as sf

    from speech.audio import find_audio_files, load_audio

    rate = 16000
    noise = np.concatenate([load_audio(f, rate, max_duration=None).numpy() for f in find_audio_files(noise_dir)])
    out = []
    with tempfile.TemporaryDirectory(prefix="speech-listen-memory-") as folder:
        for m in minutes:
            path = Path(folder) / f"{m:g}min.wav"
            with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
                left = int(m * 60 * rate)
                while left > 0:  # written a piece at a time: the benchmark itself stays small
                    piece = noise[: min(left, len(noise))]
                    f.write(0.3 * piece)
                    left -= len(piece)
            proc = subprocess.run([sys.executable, "-c", LISTEN_PEAK, "listen", "--model", model, "--engine", engine,
                                   "--input-file", str(path), "--fast", "--json"], capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PEAK_KB")]
            if proc.returncode != 0 or not line:
                raise ValueError(f"speech listen on {m:g} min failed: {proc.stderr.strip()[-300:]}")
            out.append({"minutes": m, "peak_mb": int(line[0].split()[1]) / 1024})
    return out


def benchmark_table(report: dict) -> str:
    """The benchmark report as a markdown table plus a compute line."""
    def fmt(v, pattern="{:.1f}"):
        return "-" if v is None else pattern.format(v)

    lines = ["| stream | audio (s) | words | hits | hit rate | false accepts | FA / hour | latency median (s) | latency p90 (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["conditions"]:
        rate = None if r["hit_rate"] is None else 100 * r["hit_rate"]
        lines.append(
            f"| {r['condition']} | {r['seconds']:.0f} | {r['words'] or '-'} | {r['hits'] if r['words'] else '-'} | "
            f"{fmt(rate, '{:.1f} %')} | {r['false_accepts']} | {r['false_accepts_per_hour']:.1f} | "
            f"{fmt(r['latency_median_s'], '{:.2f}')} | {fmt(r['latency_p90_s'], '{:.2f}')} |")
    lines.append("")
    engine = report["config"].get("engine", "torch")
    runs = [("", report["compute"])]
    if report.get("without_gate"):
        plain = report["without_gate"]
        same = [r["hits"] for r in plain["conditions"]] == [r["hits"] for r in report["conditions"]]
        lines.append(f"without the energy gate: hits {', '.join(str(r['hits']) for r in plain['conditions'] if r['words'])}, "
                     f"false accepts {', '.join(str(r['false_accepts']) for r in plain['conditions'])} "
                     f"({'the same hits' if same else 'hits differ'})")
        runs.append(("without the gate: ", plain["compute"]))
    for what, c in runs:
        gate = c.get("gate_db")
        gated = f"gate {gate:g} dB, the model on {100 * c['model_calls'] / max(c['hops'], 1):.0f} % of the hops" if gate else "no gate"
        lines.append(f"{what}compute ({c['threads']} thread, {engine}; {gated}): model {c['model_ms_per_hop']:.2f} ms "
                     f"per hop of {report['config']['hop_ms']:g} ms (real-time factor {c['model_real_time_factor']:.4f}); "
                     f"whole pipeline real-time factor {c['pipeline_real_time_factor']:.4f} over {c['audio_seconds']:.0f} s of audio")
    if report.get("memory"):
        lines.append("peak memory of `speech listen --input-file --fast`: " + ", ".join(
            f"{m['minutes']:g} min {m['peak_mb']:.0f} MB" for m in report["memory"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ command line
def error(sub: str, message: str) -> None:
    print(f"speech bench {sub}: {message}", file=sys.stderr)


def write_report(path: str, report: dict, table: str) -> None:
    """``.json``: the report as JSON; anything else: the markdown table. Written atomically."""
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=2) + "\n" if out.suffix.lower() == ".json" else table + "\n", encoding="utf-8")
    os.replace(tmp, out)


def default_noise_dir() -> str | None:
    path = shared_data_dir() / "background_noise"
    return str(path) if path.is_dir() else None


def add_streaming_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True,
                        help="clips to insert, e.g. DIR/test.jsonl of 'speech prepare speech-commands' (use speakers the model did not train on)")
    parser.add_argument("--model", "-m", default="commands", help="model name or file (default: commands)")
    parser.add_argument("--engine", choices=("auto", "torch", "onnx"), default="auto",
                        help="PyTorch or onnxruntime, as 'speech live --engine' (default: auto, what the live tool uses)")
    parser.add_argument("--noise-dir", default=default_noise_dir(),
                        help="background noise recordings (default: $SPEECH_DATA_DIR or ../shared/data, background_noise/)")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of each stream (default: 3)")
    parser.add_argument("--snr", type=float, nargs="+", default=[20.0, 10.0, 5.0], help="SNRs of the command streams in dB (default: 20 10 5)")
    parser.add_argument("--hop-ms", type=float, default=100.0, help="window hop (default: 100)")
    parser.add_argument("--average-window-ms", type=float, default=500.0, help="posterior averaging window (default: 500)")
    parser.add_argument("--threshold", type=float, default=0.5, help="detection threshold (default: 0.5)")
    parser.add_argument("--suppression-ms", type=float, default=1000.0, help="suppression time (default: 1000)")
    parser.add_argument("--minimum-count", type=int, default=3, help="windows needed in the average (default: 3)")
    parser.add_argument("--block-ms", type=float, default=50.0, help="audio block length (default: 50)")
    parser.add_argument("--tolerance", type=float, default=1.5, help="seconds after a word's end a detection still counts (default: 1.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stream building (default: 0)")
    parser.add_argument("--gate-db", type=float, default=DEFAULT_GATE_DB,
                        help="the energy gate, as 'speech listen --gate-db'; 0: off (default: %(default)s)")
    parser.add_argument("--compare-gate", action="store_true", help="also run every stream without the gate and report both")
    parser.add_argument("--memory-minutes", type=float, nargs="*", default=[],
                        help="also measure the peak memory of 'speech listen --input-file --fast' on files this long (e.g. 1 60)")
    parser.add_argument("--out", metavar="FILE", help="also write the table (FILE.md) or the report (FILE.json)")


def run_streaming(args: argparse.Namespace) -> int:
    import torch

    from speech.data.manifest import ManifestError, read_manifest
    from speech.streaming import SmoothingConfig
    from speech.transcribe import UsageError, load_recognizer

    torch.set_num_threads(1)
    try:
        if args.minutes <= 0 or args.hop_ms <= 0 or not 0 < args.threshold <= 1:
            raise UsageError("--minutes and --hop-ms must be positive, --threshold in (0, 1]")
        if not args.noise_dir or not Path(args.noise_dir).is_dir():
            raise UsageError(f"--noise-dir {args.noise_dir}: no such folder")
        if args.out and not Path(args.out).resolve().parent.is_dir():
            raise UsageError(f"--out {args.out}: the folder does not exist")
        try:
            rows = read_manifest(args.manifest)
        except ManifestError as err:
            raise UsageError(str(err)) from None
        recognizer = load_recognizer(args.model, "cpu", batch_size=64, engine=args.engine, threads=1)
        smoothing = SmoothingConfig(args.average_window_ms, args.threshold, args.suppression_ms, args.minimum_count)
        report = streaming_benchmark(
            recognizer, rows, args.noise_dir, minutes=args.minutes, snrs=tuple(args.snr), hop_seconds=args.hop_ms / 1000,
            smoothing=smoothing, block_ms=args.block_ms, seed=args.seed, tolerance=args.tolerance,
            progress=lambda name: print(f"streaming: {name}", file=sys.stderr),
            gate_db=args.gate_db if args.gate_db > 0 else None, compare_gate=args.compare_gate)
        if args.memory_minutes:
            report["memory"] = listen_memory(args.model, args.memory_minutes, args.noise_dir, args.engine)
    except (UsageError, ValueError) as err:
        error("streaming", str(err))
        return EXIT_USAGE
    report["config"]["model"] = str(args.model)
    report["config"]["engine"] = recognizer.engine
    report["config"]["manifest"] = str(args.manifest)
    table = benchmark_table(report)
    print(table)
    if args.out:
        write_report(args.out, report, table)
    return EXIT_OK
