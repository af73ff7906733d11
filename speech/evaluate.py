"""``speech evaluate``: score a model on a manifest.

Classifiers: accuracy, per-class precision/recall, confusion matrix (``metrics.classification_metrics``).
Rows whose label is not one of the model's labels are counted and reported; they are scored as
``_unknown_`` when the model has that class, otherwise left out. CTC models: CER, WER and sequence
accuracy (``metrics.transcript_metrics``) against ``normalize_text(row.text)`` (or the row's label when
it has no text; rows with neither usable are counted as ``no_reference`` and left out).

Clips are loaded like ``speech transcribe`` loads manifest rows (``load_audio`` with the row's offset and
duration) and recognized by the same :class:`~speech.recognizer.Recognizer`, so the two verbs agree.
Files that cannot be read are reported one line each on stderr and skipped (``skipped`` in the
metrics). With ``--out DIR``: ``metrics.json``, ``predictions.jsonl`` and, for classifiers,
``confusion.csv`` and ``confusion.png`` (every file written atomically).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

from speech.batch import GROUP_SIZE, Item, UsageError, default_jobs, recognize_items
from speech.options import add_engine_argument, add_threads_argument
from speech.transcribe import decode_options, load_recognizer, set_threads

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
PROG = "speech evaluate"
UNKNOWN = "_unknown_"

EPILOG = """\
classifiers: accuracy and a per-class precision/recall table; manifest labels that are not one of the
model's labels are counted and scored as _unknown_ when the model has that class (else left out).
CTC models: CER, WER and sequence accuracy against the normalized 'text' of each row.
--out DIR writes metrics.json, predictions.jsonl, and for classifiers confusion.csv and confusion.png.

exit status:
  0    every clip was scored
  1    some audio files could not be read (one line each on stderr; skipped and counted)
  2    usage error: bad option, model, manifest or grammar file
  130  interrupted (Ctrl-C)
"""


def _stderr_report(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _reference(recognizer, utt) -> str | None:
    """What the model should answer for a manifest row, or None when the row has nothing usable."""
    from speech.text import normalize_text

    if recognizer.is_ctc:
        if utt.text is not None:
            return normalize_text(utt.text)
        if utt.label is not None and not utt.label.startswith("_"):
            return normalize_text(utt.label)
        return None
    if utt.label is not None:
        return utt.label
    return normalize_text(utt.text) if utt.text is not None else None


def evaluate_manifest(
    recognizer,
    utterances: list,
    options=None,
    *,
    jobs: int | None = None,
    group_size: int = GROUP_SIZE,
    on_error: Callable[[str], None] | None = _stderr_report,
) -> dict:
    """Recognize manifest rows (:class:`~speech.data.manifest.Utterance`) and score them.

    Returns a dict: ``head``, ``count`` (clips scored), ``skipped`` (unreadable files) and
    ``skipped_files``, ``predictions`` (``[{path, reference, prediction, score, correct}]``), and
    for classifiers ``accuracy``, ``per_class``, ``confusion``, ``labels``, ``out_of_set`` (rows whose
    label is not a model label) with ``out_of_set_labels`` and ``out_of_set_as`` (``_unknown_`` or None
    when they were left out); for CTC models ``cer``, ``wer``, ``sequence_accuracy``, ``no_reference``.
    ``on_error(message)`` is called once per unreadable file.
    """
    from speech.metrics import classification_metrics, transcript_metrics
    from speech.recognizer import DecodeOptions

    options = options or DecodeOptions(top_k=1)
    labels = list(recognizer.labels)
    label_set = set(labels)
    out_of_set: Counter = Counter()
    out_of_set_as = UNKNOWN if (not recognizer.is_ctc and UNKNOWN in label_set) else None
    no_reference = 0
    items: list[Item] = []
    references: list[str] = []
    for utt in utterances:
        ref = _reference(recognizer, utt)
        if ref is None:
            no_reference += 1
            continue
        if not recognizer.is_ctc and ref not in label_set:
            out_of_set[ref] += 1
            if out_of_set_as is None:
                continue
            ref = out_of_set_as
        items.append(Item(utt.audio_filepath, utt.offset, utt.duration, utt))
        references.append(ref)

    predictions: list[dict] = []
    refs: list[str] = []
    hyps: list[str] = []
    skipped: list[str] = []
    for rec, ref in zip(recognize_items(recognizer, items, options, jobs=jobs, group_size=group_size), references):
        if rec.error is not None:
            skipped.append(rec.error)
            if on_error:
                on_error(rec.error)
            continue
        row = {"path": rec.item.path, "reference": ref, "prediction": rec.text, "score": round(rec.score, 6),
               "correct": rec.text == ref}
        if rec.item.offset:
            row["offset"] = rec.item.offset
        predictions.append(row)
        refs.append(ref)
        hyps.append(rec.text)

    result: dict = {"head": "ctc" if recognizer.is_ctc else "classification"}
    if recognizer.is_ctc:
        result.update(transcript_metrics(refs, hyps))
        result["no_reference"] = no_reference
    else:
        names = labels + sorted({h for h in hyps if h not in label_set})  # e.g. _unknown_ from a threshold
        index = {name: i for i, name in enumerate(names)}
        result.update(classification_metrics([index[r] for r in refs], [index[h] for h in hyps], names))
        result["labels"] = names
        result["out_of_set"] = sum(out_of_set.values())
        result["out_of_set_labels"] = dict(sorted(out_of_set.items()))
        result["out_of_set_as"] = out_of_set_as
        result["no_reference"] = no_reference
    result["count"] = len(refs)
    result["skipped"] = len(skipped)
    result["skipped_files"] = skipped
    result["predictions"] = predictions
    return result


# ----------------------------------------------------------------------------------------- reports
def summary(result: dict, model: str = "", manifest: str = "") -> str:
    """A readable report of :func:`evaluate_manifest`'s result."""
    lines = []
    if model or manifest:
        lines.append(f"model {model}  manifest {manifest}")
    extra = f", {result['skipped']} skipped (unreadable)" if result["skipped"] else ""
    if result.get("no_reference"):
        extra += f", {result['no_reference']} without a reference"
    lines.append(f"clips scored: {result['count']}{extra}")
    if result["head"] == "ctc":
        lines.append(f"CER {100 * result['cer']:.2f} %   WER {100 * result['wer']:.2f} %   "
                     f"sequence accuracy {100 * result['sequence_accuracy']:.2f} %")
        return "\n".join(lines)
    if result["out_of_set"]:
        where = f"scored as {result['out_of_set_as']}" if result["out_of_set_as"] else "left out (the model has no _unknown_ class)"
        shown = ", ".join(f"{k} {v}" for k, v in list(result["out_of_set_labels"].items())[:8])
        more = ", ..." if len(result["out_of_set_labels"]) > 8 else ""
        lines.append(f"labels not in the model's set: {result['out_of_set']} rows ({shown}{more}), {where}")
    correct = sum(p["correct"] for p in result["predictions"])
    lines.append(f"accuracy {100 * result['accuracy']:.2f} % ({correct}/{result['count']})")
    width = max([len("class")] + [len(n) for n in result["per_class"]])
    lines.append(f"{'class':<{width}}  precision  recall  support")
    for name, row in result["per_class"].items():
        lines.append(f"{name:<{width}}  {100 * row['precision']:8.1f}%  {100 * row['recall']:5.1f}%  {row['support']:7d}")
    return "\n".join(lines)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def metrics_json(result: dict, model: str, manifest: str, options=None) -> dict:
    """What ``metrics.json`` holds: the scores without the per-clip predictions."""
    keep = {k: v for k, v in result.items() if k not in ("predictions", "confusion")}
    keep["model"] = str(model)
    keep["manifest"] = str(manifest)
    if options is not None:
        keep["decode"] = {"beam": options.beam, "grammar": options.grammar,
                          "threshold": options.threshold if options.threshold is not None else 0.0}
    return keep


def confusion_csv(result: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true\\predicted"] + result["labels"])
    for name, row in zip(result["labels"], result["confusion"]):
        writer.writerow([name] + list(row))
    return buffer.getvalue()


def plot_confusion(result: dict, path: Path, title: str = "") -> None:
    """Confusion matrix image (Agg canvas, no pyplot state): rows true class, columns prediction."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels, matrix = result["labels"], result["confusion"]
    n = len(labels)
    size = max(4.0, 0.45 * n + 2.0)
    fig = Figure(figsize=(size, size * 0.9))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=90)
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title or f"accuracy {100 * result['accuracy']:.1f} % ({result['count']} clips)")
    if n <= 40:
        top = max((max(r) for r in matrix), default=0) or 1
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                if value:
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                            color="white" if value > top / 2 else "black")
    fig.tight_layout()
    _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def write_reports(result: dict, out: str | os.PathLike, model: str, manifest: str, options=None) -> list[Path]:
    """Write ``metrics.json``, ``predictions.jsonl`` (and ``confusion.csv/png`` for classifiers) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json", out / "predictions.jsonl"]
    _write_text(written[0], json.dumps(metrics_json(result, model, manifest, options), indent=2, ensure_ascii=False) + "\n")
    keys = ("path", "offset", "reference", "prediction", "score", "correct")
    _write_text(written[1], "".join(
        json.dumps({k: p[k] for k in keys if k in p}, ensure_ascii=False) + "\n" for p in result["predictions"]
    ))
    if result["head"] == "classification":
        _write_text(out / "confusion.csv", confusion_csv(result))
        plot_confusion(result, out / "confusion.png")
        written += [out / "confusion.csv", out / "confusion.png"]
    return written


# ---------------------------------------------------------------------------------------- the verb
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--model", "-m", default="commands",
                        help="bundled name, model.pt, a run folder, or an exported .onnx/.ts (default: commands)")
    parser.add_argument("--manifest", required=True, metavar="FILE", help="manifest (.jsonl) of the clips to score")
    parser.add_argument("--out", metavar="DIR", help="write metrics.json, predictions.jsonl, confusion.csv/png here")
    parser.add_argument("--batch-size", type=int, default=32, help="clips per model batch (default: 32)")
    parser.add_argument("--jobs", "-j", type=int, default=default_jobs(), help=f"audio decoding threads (default: {default_jobs()})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the model runs (default: auto)")
    add_engine_argument(parser)
    add_threads_argument(parser)
    parser.add_argument("--grammar", metavar="FILE", help="CTC models: only these phrases (one per line)")
    parser.add_argument("--beam", type=int, default=1, metavar="N", help="CTC models: beam width (default: 1 = greedy)")
    parser.add_argument("--threshold", type=float, default=0.0, metavar="P",
                        help="classifiers: score answers below P as _unknown_ (default: 0, the best class, whatever "
                             "operating point the model saved; give its value to score at it)")


def run(args: argparse.Namespace) -> int:
    from speech.data.manifest import ManifestError, read_manifest

    try:
        if args.batch_size < 1 or args.jobs < 1:
            raise UsageError("--batch-size and --jobs must be 1 or more")
        set_threads(args.threads)
        if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
            raise UsageError(f"--out {args.out}: exists and is not a folder")
        try:
            utterances = read_manifest(args.manifest)
        except ManifestError as err:
            raise UsageError(str(err)) from None
        recognizer = load_recognizer(args.model, args.device, args.batch_size, args.engine, args.threads)
        options = decode_options(recognizer, args, _stderr_report)
    except UsageError as err:
        _stderr_report(str(err))
        return EXIT_USAGE
    result = evaluate_manifest(recognizer, utterances, options, jobs=args.jobs)
    print(summary(result, args.model, args.manifest))
    if args.out:
        written = write_reports(result, args.out, args.model, args.manifest, options)
        print(f"wrote {', '.join(str(p) for p in written)}")
    return EXIT_PARTIAL if result["skipped"] else EXIT_OK
