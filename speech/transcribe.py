"""``speech transcribe``: label or transcribe audio files, folders, manifests or a list on stdin.

Every answer comes from :class:`speech.recognizer.Recognizer` (the one inference path); this module
only finds the inputs, decodes the audio in a thread pool, hands the model groups of clips (which it
runs in length-sorted batches) and writes one line per input file, in input order. One exception, for
start-up time: a run of the bundled ``commands`` model (or of a classifier ``.onnx``) with options
:func:`lite_model` accepts goes to :class:`speech.lite.LiteModel`, which gives the same answers from the
model's ONNX copy without importing torch (about 1.5 s of a cold start).

Output formats (``--format``):

``tsv`` (default)
    ``path<TAB>text<TAB>score`` (score with 4 decimals); with ``--top-k K`` the 2nd..Kth alternatives
    follow as more ``<TAB>text<TAB>score`` pairs. With ``--segments`` the text column lists every
    command found as ``label@start-end`` (seconds, 2 decimals) joined by spaces, and the score is the
    best segment's score (empty text and 0.0000 when nothing was found).
``json``
    one JSON object per line: ``path``, ``text``, ``score``, ``alternatives`` ``[{text, score}]``,
    ``duration`` (seconds), ``timing`` ``{decode_s, model_s}`` (audio decoding time of this file, and its
    share of its group's model + decoding time, in proportion to its length); ``offset`` for manifest rows
    that start inside a file; with ``--segments`` also ``segments`` ``[{text, score, start, end,
    alternatives}]`` (then ``text`` is the labels joined by spaces and ``score`` the best one).
``csv``
    a header row then rows written by the :mod:`csv` module: ``path,text,score`` plus
    ``text_2,score_2,...`` with ``--top-k``; with ``--segments`` one row per found command,
    ``path,text,score,start,end`` (a file with none gets one row with empty text, start and end).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, TextIO

from speech.options import add_engine_argument, add_threads_argument
from speech.batch import (
    GROUP_SIZE, Record, UsageError, default_jobs, expand_inputs, recognize_items, recognize_items_in_processes,
)
from speech.lite import DEFAULT_MAX_DURATION

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PARALLEL_FROM = 1000  # files: from here on, one model process per core by default
# files: from here on, without --engine, PyTorch workers: their ~1.9 s start-up (import torch) is paid back by
# batches ~1.4x faster than onnxruntime's (1,311 vs 944 clips/s on two cores: docs/benchmarks.md)
LITE_UP_TO = 6000
PROG = "speech transcribe"

EPILOG = """\
inputs:
  PATH is an audio file, a folder (searched recursively for .wav .flac .ogg .mp3 ...), a manifest
  (.jsonl; offset/duration of each row are honoured) or '-' (one such PATH per line on stdin).
  Any sample rate, bit depth or channel count is converted to the model's rate, mono.

output (one line per file, in input order):
  tsv   path<TAB>text<TAB>score [<TAB>text_2<TAB>score_2 ...with --top-k]
  json  {"path", "text", "score", "alternatives": [{"text", "score"}], "duration",
         "timing": {"decode_s", "model_s"}, "segments": [...with --segments]}
  csv   header row, then path,text,score[,text_2,score_2,...]
  --segments (classifiers, long audio): tsv text = 'label@start-end ...' (seconds);
             json adds "segments": [{"text", "score", "start", "end", "alternatives"}];
             csv has one row per command: path,text,score,start,end

engine:
  The bundled commands model (and a classifier .onnx) runs from its ONNX copy in onnxruntime, without
  importing PyTorch (~1.5 s of start-up), where that gives the PyTorch path's answers: files at the
  model's rate of up to 30 s, no --engine torch, --segments, --max-window or --device cuda, fewer than
  6,000 files unless --engine onnx (from 1,000 files on, one such process per core; from 6,000 PyTorch's
  faster batches pay back its start-up). Labels are the same; a score may differ by 1 in its 4th decimal when
  float32 puts it on a rounding boundary (about 1 file in 250).

exit status:
  0    every file was processed
  1    some files failed (one line each on stderr: 'speech transcribe: PATH: cause'); the rest were processed
  2    usage error: bad option, model file, manifest or grammar file
  130  interrupted (Ctrl-C); the files done so far are written (to --output too)
"""


# ----------------------------------------------------------------------------------------- output
def _seconds(x: float) -> str:
    return f"{x:.2f}"


class Writer:
    """Writes records in one of the formats (see the module docstring)."""

    def __init__(self, stream: TextIO, fmt: str = "tsv", top_k: int = 1, segments: bool = False):
        self.stream, self.fmt, self.top_k, self.segments = stream, fmt, max(1, top_k), segments
        self.csv = None
        if fmt == "csv":
            import csv

            self.csv = csv.writer(stream, lineterminator="\n")
        self.count = 0

    def header(self) -> None:
        if self.csv is None:
            return
        if self.segments:
            self.csv.writerow(["path", "text", "score", "start", "end"])
        else:
            row = ["path", "text", "score"]
            for k in range(2, self.top_k + 1):
                row += [f"text_{k}", f"score_{k}"]
            self.csv.writerow(row)

    def write(self, rec: Record) -> None:
        self.count += 1
        getattr(self, f"_write_{self.fmt}")(rec)

    def _write_tsv(self, rec: Record) -> None:
        if self.segments:
            text = " ".join(f"{r.text}@{_seconds(r.start)}-{_seconds(r.end)}" for r in rec.segments or [])
            fields = [rec.item.path, text, f"{rec.score:.4f}"]
        else:
            fields = [rec.item.path, rec.text, f"{rec.score:.4f}"]
            for text, score in rec.alternatives[1 : self.top_k]:
                fields += [text, f"{score:.4f}"]
        self.stream.write("\t".join(fields) + "\n")

    def _write_json(self, rec: Record) -> None:
        row: dict = {
            "path": rec.item.path,
            "text": rec.text,
            "score": round(rec.score, 6),
            "alternatives": [{"text": t, "score": round(s, 6)} for t, s in rec.alternatives[: self.top_k]],
            "duration": round(rec.duration, 4),
            "timing": {"decode_s": round(rec.decode_s, 6), "model_s": round(rec.model_s, 6)},
        }
        if rec.item.offset:
            row["offset"] = rec.item.offset
        if self.segments:
            row["segments"] = [
                {
                    "text": r.text,
                    "score": round(float(r.score), 6),
                    "start": round(r.start, 3),
                    "end": round(r.end, 3),
                    "alternatives": [{"text": t, "score": round(s, 6)} for t, s in r.alternatives[: self.top_k]],
                }
                for r in rec.segments or []
            ]
        self.stream.write(json.dumps(row, ensure_ascii=False) + "\n")

    def _write_csv(self, rec: Record) -> None:
        if self.segments:
            if not rec.segments:
                self.csv.writerow([rec.item.path, "", f"{0.0:.4f}", "", ""])
            for r in rec.segments or []:
                self.csv.writerow([rec.item.path, r.text, f"{r.score:.4f}", _seconds(r.start), _seconds(r.end)])
            return
        row = [rec.item.path, rec.text, f"{rec.score:.4f}"]
        for k in range(1, self.top_k):
            if k < len(rec.alternatives):
                row += [rec.alternatives[k][0], f"{rec.alternatives[k][1]:.4f}"]
            else:
                row += ["", ""]
        self.csv.writerow(row)


@contextmanager
def atomic_output(path: str | os.PathLike | None, encoding: str = "utf-8"):
    """Yield a text stream: stdout when ``path`` is None, else a temp file beside ``path`` that is renamed
    onto it when the block ends, normally or not (so Ctrl-C leaves what was done, never a half file)."""
    if path is None:
        yield sys.stdout
        return
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    stream = open(tmp, "w", encoding=encoding, newline="")
    try:
        yield stream
    finally:
        stream.close()
        os.replace(tmp, path)


# ---------------------------------------------------------------------------------------- the verb
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders, manifests (.jsonl) or '-' for stdin")
    parser.add_argument("--model", "-m", default="commands",
                        help="bundled name (commands, commands-ctc), model.pt, a run folder, or an exported .onnx/.ts (default: commands)")
    parser.add_argument("--format", "-f", choices=("tsv", "json", "csv"), default="tsv", help="output format (default: tsv)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the results to FILE (atomically) instead of stdout")
    parser.add_argument("--top-k", "-k", type=int, default=1, metavar="K", help="also print the K-1 next best answers (default: 1)")
    parser.add_argument("--threshold", type=float, default=None, metavar="P",
                        help="classifiers and --grammar: answer _unknown_ when the best score is below P (default: "
                             "a classifier's saved operating point, else 0)")
    parser.add_argument("--grammar", metavar="FILE", help="CTC models: only these phrases (one per line; '#' comments)")
    parser.add_argument("--beam", type=int, default=1, metavar="N", help="CTC models: prefix beam search width (default: 1 = greedy)")
    parser.add_argument("--segments", action="store_true",
                        help="classifiers: scan long audio and print each command found with its start/end time")
    parser.add_argument("--segment-hop", type=float, default=0.25, metavar="SECONDS",
                        help="window hop for --segments (default: 0.25)")
    parser.add_argument("--max-window", type=float, default=None, metavar="SECONDS",
                        help="longer clips are split: CTC decodes chunk by chunk, classifiers keep the best window (default: 30)")
    parser.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION, metavar="SECONDS",
                        help=f"files longer than this fail (default: {DEFAULT_MAX_DURATION:g})")
    parser.add_argument("--batch-size", type=int, default=32, help="clips per model batch (default: 32)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes running the model, each on one core (default: one per core for 1,000 files "
                             "or more, else 1)")
    parser.add_argument("--jobs", "-j", type=int, default=default_jobs(),
                        help=f"threads decoding audio files (default: {default_jobs()})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the model runs (default: auto)")
    add_engine_argument(parser)
    parser.set_defaults(engine=None)  # not given: torch, or the torch-free path of lite_model()
    add_threads_argument(parser)
    parser.add_argument("--group-size", type=int, default=GROUP_SIZE, help=argparse.SUPPRESS)


def set_threads(n: int) -> None:
    if n < 1:
        raise UsageError("--threads must be 1 or more")
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. under taskset or a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def load_recognizer(model: str, device: str = "auto", batch_size: int = 32, engine: str = "torch",
                    threads: int | None = None):
    """:func:`speech.load` for the verbs: the model's :class:`~speech.recognizer.Recognizer`, or
    :class:`UsageError` with the one-line problem (a bad model file, device or engine)."""
    from speech.api import load
    from speech.checkpoint import ModelFileError

    try:
        return load(model, engine=engine, device=device, threads=threads, batch_size=batch_size,
                    on_note=lambda note: print(f"note: {note}", file=sys.stderr)).recognizer
    except (ModelFileError, ValueError) as err:
        raise UsageError(str(err)) from None


def decode_options(recognizer, args: argparse.Namespace, report: Callable[[str], None] | None = None):
    """:meth:`speech.Model.decode_options` from the shared flags (``--top-k --threshold --grammar
    --beam``); grammar phrases the model cannot spell are dropped with a warning through ``report``."""
    from speech.api import Model

    try:
        return Model(recognizer).decode_options(
            top_k=getattr(args, "top_k", 1), threshold=getattr(args, "threshold", None),
            grammar=getattr(args, "grammar", None), beam=getattr(args, "beam", 1), on_warning=report or error)
    except ValueError as err:
        raise UsageError(str(err)) from None


def lite_model(args: argparse.Namespace, items: list):
    """The :class:`speech.lite.LiteModel` that answers this run as the PyTorch path would, without
    importing torch, or None (then the Recognizer runs it). It does when ``--model`` is the bundled
    ``commands`` (its ONNX copy, made from this ``commands.pt``) or a classifier ``.onnx``, onnxruntime is
    installed, the options are ones it runs (no ``--engine torch``, ``--segments``, ``--max-window``,
    ``--grammar``, ``--beam``, ``--device cuda``; ``--top-k`` and ``--threshold`` valid: else the
    Recognizer words the error), and every item is a whole file (not a manifest row) at the model's sample
    rate of at most 30 s, fewer than :data:`LITE_UP_TO` of them unless ``--engine onnx`` was given. Any number of
    worker processes may run it, each with a session of its own (:meth:`~speech.lite.LiteModel.start_worker`)."""
    if args.engine is None and len(items) >= LITE_UP_TO:
        return None
    if (args.engine == "torch" or args.segments or args.max_window is not None or args.device == "cuda"
            or args.grammar is not None or args.beam != 1 or args.top_k < 1
            or (args.threshold is not None and not 0.0 <= args.threshold <= 1.0)):
        return None
    from speech.lite import LiteModel, onnx_for

    found = onnx_for(args.model)
    if found is None:
        return None
    model = LiteModel.open(found[0], threads=args.threads, source=found[1], batch_size=args.batch_size)
    if model is None or not all(model.accepts(item) for item in items):
        return None
    return model


class _NoBar:
    """The progress bar where none is shown (without importing tqdm)."""

    disable = True

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, output: str | None):
    """A bar on a terminal's stderr for more than one file, unless the answers go to that terminal too."""
    if (output or not sys.stdout.isatty()) and total > 1:
        from tqdm import tqdm

        return tqdm(total=total, unit="file", leave=False, mininterval=0.5, disable=None)  # None: a terminal only
    return _NoBar()


def run(args: argparse.Namespace) -> int:
    try:
        if args.batch_size < 1 or args.jobs < 1 or args.group_size < 1 or (args.workers is not None and args.workers < 1):
            raise UsageError("--batch-size, --jobs and --workers must be 1 or more")
        if args.output and not Path(args.output).resolve().parent.is_dir():
            raise UsageError(f"--output {args.output}: the folder does not exist")
        if args.segment_hop <= 0 or (args.max_window is not None and args.max_window <= 0):
            raise UsageError("--segment-hop and --max-window must be positive")
        if args.threads < 1:
            raise UsageError("--threads must be 1 or more")
        items, failed = expand_inputs(args.paths, sys.stdin, lambda p, cause: error(f"{p}: {cause}"))
        workers = args.workers or (usable_cores() if len(items) >= PARALLEL_FROM else 1)
        recognizer, load = lite_model(args, items), None
        if recognizer is not None:  # the same answers without importing torch
            from speech.lite import Options

            options, load = Options(args.top_k, args.threshold), recognizer.load_item
        else:
            set_threads(args.threads)
            recognizer = load_recognizer(args.model, args.device, args.batch_size, args.engine or "torch", args.threads)
            if args.max_window is not None:
                recognizer.max_window_seconds = args.max_window
            options = decode_options(recognizer, args)
            if args.segments and recognizer.is_ctc:
                raise UsageError("--segments is for classifiers; CTC models transcribe long audio chunk by chunk")
    except UsageError as err:
        error(str(err))
        return EXIT_USAGE

    done = 0
    try:
        with atomic_output(args.output) as stream:
            writer = Writer(stream, args.format, options.top_k, args.segments)
            writer.header()
            if workers > 1 and (load is not None or recognizer.device.type == "cpu"):
                records = recognize_items_in_processes(
                    recognizer, items, options, workers=workers, group_size=args.group_size, segments=args.segments,
                    hop_seconds=args.segment_hop, max_duration=args.max_duration, load=load)
            else:
                records = recognize_items(
                    recognizer, items, options, segments=args.segments, hop_seconds=args.segment_hop,
                    jobs=args.jobs, group_size=args.group_size, max_duration=args.max_duration, load=load,
                )
            bar = progress_bar(len(items), args.output)
            try:
                for rec in records:
                    bar.update(1)
                    if rec.error is not None:
                        failed += 1
                        if bar.disable:
                            error(rec.error)
                        else:
                            bar.write(f"{PROG}: {rec.error}", file=sys.stderr)
                        continue
                    writer.write(rec)
                    stream.flush()  # stream the answers as they come
                    done += 1
            finally:
                bar.close()
                records.close()  # stops the decoding threads (Ctrl-C, broken pipe)
    except BrokenPipeError:  # `speech transcribe ... | head`: stop quietly
        _silence_stdout()
        return EXIT_PARTIAL
    finally:
        if args.output:
            print(f"{PROG}: wrote {done} results to {args.output}", file=sys.stderr)
    if failed:
        print(f"{PROG}: {failed} of {done + failed} inputs failed", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
