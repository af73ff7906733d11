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
from speech.bench.measure import load_now, machine_info, machine_line, shared_data_dir
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
    """Scores of one benchmark stream, and what it cost: seconds in the model (wall clock and the CPU
    time of the recognition thread), model calls (windows scored), the process's CPU seconds and the wall
    seconds of the whole pipeline."""

    name: str
    seconds: float
    words: int
    hits: int
    false_accepts: int
    latencies: list[float]
    compute_seconds: float
    model_calls: int
    wall_seconds: float
    compute_cpu_seconds: float = 0.0
    process_cpu_seconds: float = 0.0

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


def feed(pipeline: StreamPipeline, audio: np.ndarray, sample_rate: int, block_ms: float, realtime: bool = False):
    """Feed ``audio`` through ``pipeline`` as ``speech listen --input-file`` does (a file feeder thread, the
    block queue, :func:`~speech.streaming.run_stream`), as fast as it goes (``--fast``) or at real-time
    pace: ``(detections, summary, wall seconds, CPU seconds of this process)``."""
    from speech.streaming import BlockQueue, FileInput, run_stream

    blocks = BlockQueue()
    source = FileInput(audio, sample_rate, max(1, int(sample_rate * block_ms / 1000)), realtime=realtime)
    found: list[Detection] = []
    t0, c0 = time.perf_counter(), time.process_time()
    source.start(blocks)
    try:
        summary = run_stream(blocks, pipeline, found.append)
    finally:
        source.stop()
    return found, summary, time.perf_counter() - t0, time.process_time() - c0


def feed_fast(pipeline: StreamPipeline, audio: np.ndarray, sample_rate: int, block_ms: float):
    """:func:`feed` as ``speech listen --input-file --fast``: ``(detections, summary, wall seconds)``."""
    found, summary, wall, _ = feed(pipeline, audio, sample_rate, block_ms)
    return found, summary, wall


def run_condition(name: str, audio: np.ndarray, events: list[WordEvent], make_pipeline: Callable[[], StreamPipeline],
                  sample_rate: int, block_ms: float, tolerance: float, realtime: bool = False) -> ConditionResult:
    """Feed ``audio`` through a fresh pipeline as ``--input-file [--fast]`` does and score it."""
    found, summary, wall, cpu = feed(make_pipeline(), audio, sample_rate, block_ms, realtime)
    hits, false, latencies = score_detections(found, events, tolerance)
    return ConditionResult(name, summary.seconds, len(events), hits, false, latencies, summary.compute_seconds,
                           summary.model_calls, wall, summary.compute_cpu_seconds, cpu)


def compute_summary(results: list[ConditionResult], hop_seconds: float, per_hop: bool, **config) -> dict:
    """What the streams cost together: the model's milliseconds per hop (wall clock and CPU), the share
    of the hops it ran on, real-time factors of the model and of the whole pipeline, and the process's CPU
    time per second of audio as a percentage of one core (``config``: how the spotter ran)."""
    import torch

    seconds = sum(r.seconds for r in results)
    compute = sum(r.compute_seconds for r in results)
    cpu = sum(r.compute_cpu_seconds for r in results)
    calls = sum(r.model_calls for r in results)
    hops = sum(int(r.seconds / hop_seconds) for r in results) if per_hop else calls
    wall = sum(r.wall_seconds for r in results)
    process = sum(r.process_cpu_seconds for r in results)
    words = [r for r in results if r.words]
    word_hops = sum(int(r.seconds / hop_seconds) for r in words)
    return {
        **config,
        "command_streams": {  # the streams with words to find: speech about a third of the time
            "model_share_of_hops": round(sum(r.model_calls for r in words) / max(word_hops, 1), 4),
            "model_cpu_ms_per_hop": round(1000 * sum(r.compute_cpu_seconds for r in words) / max(word_hops, 1), 3),
            "process_cpu_percent_of_a_core": round(100 * sum(r.process_cpu_seconds for r in words) / max(sum(r.seconds for r in words), 1e-9), 3),
        } if words and per_hop else None,
        "model_ms_per_hop": round(1000 * compute / max(hops, 1), 3),
        "model_cpu_ms_per_hop": round(1000 * cpu / max(hops, 1), 3),
        "model_ms_per_call": round(1000 * compute / max(calls, 1), 3),
        "model_cpu_ms_per_call": round(1000 * cpu / max(calls, 1), 3),
        "model_calls": calls, "hops": hops,
        "model_real_time_factor": round(compute / seconds, 5) if seconds else None,
        "pipeline_real_time_factor": round(wall / seconds, 5) if seconds else None,
        "process_cpu_percent_of_a_core": round(100 * process / seconds, 3) if seconds else None,
        "audio_seconds": round(seconds, 1), "threads": torch.get_num_threads(),
        "per_stream": [{"condition": r.name, "model_calls": r.model_calls,
                        "model_ms_per_hop": round(1000 * r.compute_seconds / max(int(r.seconds / hop_seconds), 1), 3),
                        "model_cpu_ms_per_hop": round(1000 * r.compute_cpu_seconds / max(int(r.seconds / hop_seconds), 1), 3),
                        "process_cpu_percent_of_a_core": round(100 * r.process_cpu_seconds / r.seconds, 3) if r.seconds else None}
                       for r in results],
    }


def streaming_benchmark(
    recognizer, rows, noise_dir: str, *, minutes: float = 3.0, snrs: tuple[float, ...] = (20.0, 10.0, 5.0),
    hop_seconds: float = 0.1, smoothing: SmoothingConfig | None = None, block_ms: float = 50.0,
    seed: int = 0, tolerance: float = 1.5, noise_rms: float = 0.01, progress: Callable[[str], None] | None = None,
    gate_db: float | None = None, compare_gate: bool = False, skipping: str | None = None, realtime_minutes: float = 0.0,
) -> dict:
    """Build the benchmark streams from manifest ``rows`` and the noise recordings, run them and return
    ``{"conditions": [ConditionResult.to_json()...], "compute": {...}, "compare": [...], "realtime": {...},
    "config": {...}}``.

    Streams (``minutes`` each): command words (labels the model can say, except ``_silence_``/``_unknown_``)
    at each SNR; noise alone; other words (``_unknown_`` and words the model does not know) at the
    highest SNR. Words come from ``rows`` with replacement; classifiers are scored on labels, CTC
    models on the text. ``gate_db``: the command spotter's energy gate (None: off); ``skipping``: its hop
    skipping (``off``, ``quiet``, ``suppressed``; None: the default of ``speech listen``); ``compare_gate``:
    run every stream again with the gate and each other kind of skipping, and with neither gate nor
    skipping, and report those too (``compare``). ``realtime_minutes``: also feed the first command stream
    (the middle SNR) for that long at real-time pace, as a microphone would, and report the process's CPU
    time (``realtime``): what a user's ``top`` shows for the pipeline.
    """
    import numpy as np

    from speech.audio import find_audio_files, load_audio
    from speech.streaming import NEVER_FIRE, SILENCE, UNKNOWN, StreamPipeline, make_stage
    from speech.streaming.detection import LISTEN_SKIPPING, SKIPPING

    skipping = skipping or LISTEN_SKIPPING

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

    def pipeline_with(gate: float | None, skip: str) -> Callable[[], StreamPipeline]:
        def make() -> StreamPipeline:
            return StreamPipeline(make_stage(recognizer, hop_seconds, smoothing, gate_db=gate, skipping=skip), rate, rate)
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

    def describe(gate: float | None, skip: str) -> str:
        if gate is None:
            return "no gate" if skip == "off" else f"no gate, hop skipping {skip}"
        return f"gate {gate:g} dB, " + ("every hop scored" if skip == "off" else f"hop skipping {skip}")

    def run_all(gate: float | None, skip: str) -> tuple[list[ConditionResult], dict]:
        skip = "off" if recognizer.is_ctc else skip
        results = []
        for name, audio, events in streams:
            if progress:
                progress(f"{name} ({describe(gate, skip)})")
            results.append(run_condition(name, audio, events, pipeline_with(gate, skip), rate, block_ms, tolerance))
        return results, compute_summary(results, hop_seconds, not recognizer.is_ctc, gate_db=gate, skipping=skip,
                                        setting=describe(gate, skip))

    results, compute = run_all(gate_db, skipping)
    compare = []
    if compare_gate and not recognizer.is_ctc:
        others = [(gate_db, mode) for mode in SKIPPING if mode != skipping] + [(None, "off")]
        for gate, skip in dict.fromkeys(c for c in others if c != (gate_db, skipping)):
            plain, plain_compute = run_all(gate, skip)
            compare.append({"conditions": [r.to_json() for r in plain], "compute": plain_compute})
    realtime = None
    if realtime_minutes > 0:
        name, audio, events = streams[min(len(snrs) // 2, len(snrs) - 1)]
        part = audio[: int(realtime_minutes * 60 * rate)]
        if progress:
            progress(f"{name}, first {len(part) / rate / 60:g} min at real-time pace ({describe(gate_db, skipping)})")
        result = run_condition(name, part, [e for e in events if e.end <= len(part) / rate], pipeline_with(gate_db, skipping),
                               rate, block_ms, tolerance, realtime=True)
        realtime = {"condition": result.to_json(), "compute": compute_summary(
            [result], hop_seconds, not recognizer.is_ctc, gate_db=gate_db, skipping=skipping, setting=describe(gate_db, skipping))}
    return {
        "conditions": [r.to_json() for r in results],
        "compute": compute,
        "compare": compare,
        "realtime": realtime,
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
    if "detection_threshold" in report["config"]:
        cfg = report["config"]
        lines.append(f"threshold {cfg['detection_threshold']:g}, average window {cfg['average_window_ms']:g} ms, "
                     f"suppression {cfg['suppression_ms']:g} ms, minimum count {cfg['minimum_count']}")
    engine = report["config"].get("engine", "torch")
    hop = report["config"]["hop_ms"]
    for other in report.get("compare") or []:
        same = [(r["hits"], r["false_accepts"]) for r in other["conditions"]] == [(r["hits"], r["false_accepts"]) for r in report["conditions"]]
        what = "without the energy gate" if other["compute"]["setting"] == "no gate" else other["compute"]["setting"]
        lines.append(f"{what}: hits {', '.join(str(r['hits']) for r in other['conditions'] if r['words'])}, "
                     f"false accepts {', '.join(str(r['false_accepts']) for r in other['conditions'])} "
                     f"({'the same hits and false accepts' if same else 'hits or false accepts differ'})")
    for c in [report["compute"]] + [other["compute"] for other in report.get("compare") or []]:
        what = "without the gate: " if c["setting"] == "no gate" else ""
        lines.append(f"{what}compute ({c['threads']} thread, {engine}; {c['setting']}): model {c['model_cpu_ms_per_hop']:.2f} ms per hop "
                     f"of {hop:g} ms (CPU time; {c['model_ms_per_hop']:.2f} ms wall; the model on "
                     f"{100 * c['model_calls'] / max(c['hops'], 1):.0f} % of the hops, {c['model_cpu_ms_per_call']:.2f} ms CPU a window); "
                     f"the process {c['process_cpu_percent_of_a_core']:.2f} % of one core (whole pipeline real-time factor "
                     f"{c['pipeline_real_time_factor']:.4f}) over {c['audio_seconds']:.0f} s of audio, as fast as it goes"
                     + ("" if not c.get("command_streams") else
                        f"; the command streams alone: the model on {100 * c['command_streams']['model_share_of_hops']:.0f} % "
                        f"of the hops, {c['command_streams']['model_cpu_ms_per_hop']:.2f} ms per hop, the process "
                        f"{c['command_streams']['process_cpu_percent_of_a_core']:.2f} % of one core"))
    if report.get("realtime"):
        c, r = report["realtime"]["compute"], report["realtime"]["condition"]
        lines.append(f"at real-time pace ({r['condition']}, {c['audio_seconds']:.0f} s, {c['setting']}; hits {r['hits']} of "
                     f"{r['words']}, {r['false_accepts']} false accepts): model {c['model_cpu_ms_per_hop']:.2f} ms CPU per hop "
                     f"({c['model_cpu_ms_per_call']:.2f} ms a window, on {100 * c['model_calls'] / max(c['hops'], 1):.0f} % of the hops); "
                     f"the process **{c['process_cpu_percent_of_a_core']:.2f} % of one core**")
    if report.get("machine"):
        lines.append(f"machine: {report['machine']}")
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
    parser.add_argument("--threshold", type=float, default=None,
                        help="detection threshold (default: the model's saved operating point, as 'speech listen'; else 0.5)")
    parser.add_argument("--suppression-ms", type=float, default=1000.0, help="suppression time (default: 1000)")
    parser.add_argument("--minimum-count", type=int, default=3, help="windows needed in the average (default: 3)")
    parser.add_argument("--block-ms", type=float, default=50.0, help="audio block length (default: 50)")
    parser.add_argument("--tolerance", type=float, default=1.5, help="seconds after a word's end a detection still counts (default: 1.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stream building (default: 0)")
    parser.add_argument("--gate-db", type=float, default=DEFAULT_GATE_DB,
                        help="the energy gate, as 'speech listen --gate-db'; 0: off (default: %(default)s)")
    parser.add_argument("--hop-skipping", choices=("off", "quiet", "suppressed"), default=None,
                        help="which hops the model may leave out (speech.streaming.CommandSpotter; default: suppressed, what 'speech listen' uses)")
    parser.add_argument("--compare-gate", action="store_true",
                        help="also run every stream with the gate and each other --hop-skipping, and with neither, and report all")
    parser.add_argument("--realtime-minutes", type=float, default=0.0,
                        help="also feed this much of the middle-SNR command stream at real-time pace and report the process's CPU (default: 0: off)")
    parser.add_argument("--memory-minutes", type=float, nargs="*", default=[],
                        help="also measure the peak memory of 'speech listen --input-file --fast' on files this long (e.g. 1 60)")
    parser.add_argument("--out", metavar="FILE", help="also write the table (FILE.md) or the report (FILE.json)")


def run_streaming(args: argparse.Namespace) -> int:
    import torch

    from speech.data.manifest import ManifestError, read_manifest
    from speech.streaming import SmoothingConfig, live_threshold
    from speech.transcribe import UsageError, load_recognizer

    torch.set_num_threads(1)
    info = machine_info()
    try:
        if (args.minutes <= 0 or args.hop_ms <= 0 or args.realtime_minutes < 0
                or (args.threshold is not None and not 0 < args.threshold <= 1)):
            raise UsageError("--minutes and --hop-ms must be positive, --realtime-minutes >= 0, --threshold in (0, 1]")
        if not args.noise_dir or not Path(args.noise_dir).is_dir():
            raise UsageError(f"--noise-dir {args.noise_dir}: no such folder")
        if args.out and not Path(args.out).resolve().parent.is_dir():
            raise UsageError(f"--out {args.out}: the folder does not exist")
        try:
            rows = read_manifest(args.manifest)
        except ManifestError as err:
            raise UsageError(str(err)) from None
        recognizer = load_recognizer(args.model, "cpu", batch_size=64, engine=args.engine, threads=1)
        smoothing = SmoothingConfig(args.average_window_ms, live_threshold(recognizer.operating_point, args.threshold),
                                    args.suppression_ms, args.minimum_count)
        report = streaming_benchmark(
            recognizer, rows, args.noise_dir, minutes=args.minutes, snrs=tuple(args.snr), hop_seconds=args.hop_ms / 1000,
            smoothing=smoothing, block_ms=args.block_ms, seed=args.seed, tolerance=args.tolerance,
            progress=lambda name: print(f"streaming: {name}", file=sys.stderr),
            gate_db=args.gate_db if args.gate_db > 0 else None, compare_gate=args.compare_gate,
            skipping=args.hop_skipping, realtime_minutes=args.realtime_minutes)
        if args.memory_minutes:
            report["memory"] = listen_memory(args.model, args.memory_minutes, args.noise_dir, args.engine)
    except (UsageError, ValueError) as err:
        error("streaming", str(err))
        return EXIT_USAGE
    report["config"]["model"] = str(args.model)
    report["config"]["engine"] = recognizer.engine
    report["config"]["manifest"] = str(args.manifest)
    report["machine"] = machine_line(info, load_now())
    table = benchmark_table(report)
    print(table)
    if args.out:
        write_report(args.out, report, table)
    return EXIT_OK
