"""``speech bench SUBCOMMAND``: benchmarks, one function per subcommand.

Each subcommand is a pair in :data:`SUBCOMMANDS`: ``add_<name>(parser)`` adds its options and
``<name>(args) -> int`` runs it (exit status 0, or 2 for a usage problem). Imports happen inside the
functions so ``speech bench --help`` stays fast.

- ``features``, ``train``, ``transcribe``: see :mod:`speech.benchmarks` and docs/benchmarks.md.
- ``streaming``: the live pipeline on a long stream of background noise with command words inserted at
  known times (several SNRs), noise alone and other words alone: hit rate, false accepts per hour,
  latency after the word's end, compute per hop (one thread). See docs/live.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE = 0, 2
REPO_ROOT = Path(__file__).resolve().parents[1]


def error(sub: str, message: str) -> None:
    print(f"speech bench {sub}: {message}", file=sys.stderr)


def write_report(path: str, report: dict, table: str) -> None:
    """``.json``: the report as JSON; anything else: the markdown table. Written atomically."""
    import os

    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=2) + "\n" if out.suffix.lower() == ".json" else table + "\n", encoding="utf-8")
    os.replace(tmp, out)


# ------------------------------------------------------------------------------------------ streaming
def default_noise_dir() -> str | None:
    import os

    root = Path(os.environ["SPEECH_DATA_DIR"]) if os.environ.get("SPEECH_DATA_DIR") else REPO_ROOT.parent / "shared" / "data"
    path = root / "background_noise"
    return str(path) if path.is_dir() else None


def add_streaming(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--out", metavar="FILE", help="also write the table (FILE.md) or the report (FILE.json)")


def streaming(args: argparse.Namespace) -> int:
    import torch

    from speech.data.manifest import ManifestError, read_manifest
    from speech.bench_streaming import benchmark_table, streaming_benchmark
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
            progress=lambda name: print(f"streaming: {name}", file=sys.stderr))
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


# ------------------------------------------------------------------------------------------ dispatch
# name -> (one-line help, add_arguments, run)
def _lazy(name: str, kind: str):
    """``speech.benchmarks.add_<name>_arguments`` / ``run_<name>``, imported only when used."""

    def call(arg):
        from speech import benchmarks

        return getattr(benchmarks, f"{kind}_{name}" if kind == "run" else f"add_{name}_arguments")(arg)

    return call


SUBCOMMANDS = {
    "features": ("our batched front end vs librosa.feature.mfcc one clip at a time: clips/s, x real time",
                 _lazy("features", "add"), _lazy("features", "run")),
    "train": ("training throughput and peak memory vs a plain per-item DataLoader loop (CPU, and GPU when present)",
              _lazy("train", "add"), _lazy("train", "run")),
    "transcribe": ("speech transcribe vs PocketSphinx on 1 s clips: throughput and accuracy",
                   _lazy("transcribe", "add"), _lazy("transcribe", "run")),
    "streaming": ("live pipeline on noise with inserted commands: hit rate, false accepts/hour, latency, compute",
                  add_streaming, streaming),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (help_, add, run_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add(p)
        p.set_defaults(bench_run=run_)


def run(args: argparse.Namespace) -> int:
    return args.bench_run(args)
