"""Batch recognition of many audio files: inputs (files, folders, manifests, a list on stdin) -> one
:class:`Record` per input, in input order.

Audio is decoded in a thread pool one group ahead of the model, and each group goes to the
:class:`~speech.recognizer.Recognizer` (length-sorted batches). A file that cannot be read gives a record
with ``error`` set and the rest go on. ``speech transcribe`` and ``speech evaluate`` run this
(:meth:`speech.Model.transcribe` loads its clips itself and calls the same Recognizer). Importing this
module does not import torch (``speech transcribe`` runs the bundled model without it: :mod:`speech.lite`).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

from speech.lite import DEFAULT_MAX_DURATION, find_audio_files  # = speech.audio's, without importing torch

GROUP_SIZE = 256  # files decoded and handed to the Recognizer at a time (it batches them by length)


@dataclass
class Item:
    """One clip to recognize: a file, or a part of one (manifest rows with ``offset``/``duration``)."""

    path: str
    offset: float = 0.0
    duration: float | None = None
    utterance: object = None  # the manifest row, when the item came from one


class UsageError(Exception):
    """A problem with the command line (exit status 2); ``str(err)`` is one line."""


def is_manifest(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".jsonl") and Path(path).is_file()


def manifest_items(path: str | os.PathLike) -> list[Item]:
    """Items of a manifest; a bad manifest raises :class:`UsageError` (``path:line: cause``)."""
    from speech.data.manifest import ManifestError, read_manifest

    try:
        rows = read_manifest(path)
    except ManifestError as err:
        raise UsageError(str(err)) from None
    return [Item(u.audio_filepath, u.offset, u.duration, u) for u in rows]


def expand_inputs(
    paths: Iterable[str], stdin: TextIO | None = None, report: Callable[[str, str], None] | None = None
) -> tuple[list[Item], int]:
    """PATH arguments -> items in order, and the number of inputs that gave nothing (reported).

    A folder is searched recursively (sorted); a ``.jsonl`` file is a manifest; ``-`` reads one PATH per
    line from ``stdin``; anything else is taken as an audio file (a missing one fails when loaded).
    """
    items: list[Item] = []
    failed = 0
    for raw in paths:
        if raw == "-":
            lines = [line.strip() for line in (stdin or sys.stdin)]
            sub, bad = expand_inputs([line for line in lines if line and line != "-"], None, report)
            items += sub
            failed += bad
            continue
        p = Path(raw)
        if p.is_dir():
            found = find_audio_files(p)
            if not found:
                failed += 1
                if report:
                    report(raw, "no audio files in this folder")
            items += [Item(str(f)) for f in found]
        elif is_manifest(p):
            items += manifest_items(p)
        else:
            items.append(Item(raw))
    return items, failed


# ------------------------------------------------------------------------------------- processing
@dataclass
class Record:
    """What one input gave: its answer (or the error) and timings."""

    item: Item
    text: str = ""
    score: float = 0.0
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    duration: float = 0.0
    decode_s: float = 0.0
    model_s: float = 0.0
    segments: list | None = None  # list[Result] with start/end, for --segments
    error: str | None = None  # AudioError text ("path: cause") when the file failed


def load_item(item: Item, sample_rate: int, max_duration: float | None = DEFAULT_MAX_DURATION):
    """``(waveform, seconds spent decoding)``; raises :class:`~speech.audio.AudioError`."""
    from speech.audio import load_audio

    start = time.perf_counter()
    if item.utterance is not None or item.offset or item.duration is not None:
        wave = load_audio(item.path, sample_rate, offset=item.offset, duration=item.duration, max_duration=max_duration)
    else:
        wave = load_audio(item.path, sample_rate, max_duration=max_duration)
    return wave, time.perf_counter() - start


def load_item_safely(item: Item, sample_rate: int, max_duration: float | None = DEFAULT_MAX_DURATION):
    """:func:`load_item`, with the :class:`~speech.audio.AudioError` of an unusable file returned, not raised."""
    from speech.audio import AudioError

    try:
        return load_item(item, sample_rate, max_duration)
    except AudioError as err:
        return err


def recognize_items(
    recognizer,
    items: list[Item],
    options=None,
    *,
    segments: bool = False,
    hop_seconds: float = 0.25,
    jobs: int | None = None,
    group_size: int = GROUP_SIZE,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    load: Callable | None = None,
) -> Iterator[Record]:
    """Yield one :class:`Record` per item, in input order.

    Audio is decoded in a pool of ``jobs`` threads (none for a single item), one group ahead of the model; each group of
    ``group_size`` clips goes to ``recognizer.recognize`` (length-sorted batches of
    ``recognizer.batch_size``), or to ``recognizer.segments`` per clip with ``segments=True``.
    Files that cannot be read give a record with ``error`` set; the rest go on. ``load(item, sample_rate,
    max_duration)`` reads a clip: ``(waveform (samples,), seconds)``, or the exception (one line: ``path:
    cause``) of a file that cannot be used, returned (default :func:`load_item_safely`; :mod:`speech.lite`
    has its own, without torch).
    """
    if options is None:
        from speech.recognizer import DecodeOptions

        options = DecodeOptions()
    load = load or load_item_safely
    jobs = max(1, jobs or default_jobs())
    rate = recognizer.sample_rate
    groups = [items[i : i + group_size] for i in range(0, len(items), max(1, group_size))]
    if len(items) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="speech-load")
    else:  # one file (a cold `speech transcribe one.wav`): read here; importing the pool (and logging) costs ~10 ms
        pool = _Inline()

    def submit(group: list[Item]) -> list:
        return [pool.submit(load, item, rate, max_duration) for item in group]

    try:
        pending = submit(groups[0]) if groups else []
        for index, group in enumerate(groups):
            loaded = [f.result() for f in pending]
            pending = submit(groups[index + 1]) if index + 1 < len(groups) else []
            records = [Record(item) for item in group]
            good = []
            for rec, got in zip(records, loaded):
                if isinstance(got, Exception):
                    rec.error = str(got)
                else:
                    wave, rec.decode_s = got
                    rec.duration = len(wave) / rate
                    good.append((rec, wave))
            if segments:
                for rec, wave in good:
                    start = time.perf_counter()
                    found = recognizer.segments(wave, options, hop_seconds=hop_seconds)
                    rec.model_s = time.perf_counter() - start
                    for r in found:
                        r.end = min(r.end, rec.duration)
                    rec.segments = found
                    if found:
                        rec.text = " ".join(r.text for r in found)
                        rec.score = max(r.score for r in found)
                    rec.alternatives = [(rec.text, rec.score)]
            elif good:
                start = time.perf_counter()
                results = recognizer.recognize([w for _, w in good], options)
                elapsed = time.perf_counter() - start
                total = sum(len(w) for _, w in good) or 1
                for (rec, wave), res in zip(good, results):
                    rec.text, rec.score, rec.alternatives = res.text, float(res.score), list(res.alternatives)
                    rec.model_s = elapsed * len(wave) / total
            yield from records
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


class _Inline:
    """The part of a thread pool :func:`recognize_items` uses, running each call at once in this thread."""

    class Done:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

        def cancel(self) -> bool:
            return False

    def submit(self, fn: Callable, *args) -> "_Inline.Done":
        return self.Done(fn(*args))

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def default_jobs() -> int:
    return min(4, os.cpu_count() or 1)


# ------------------------------------------------------------------------------- worker processes
_WORKER: dict = {}  # set before the pool forks: the Recognizer and the arguments of recognize_items


def _start_worker() -> None:
    """One thread per process (one process per core: no thread of one process competes with another's)."""
    start = getattr(_WORKER["recognizer"], "start_worker", None)
    if start is not None:  # speech.lite.LiteModel: an onnxruntime session of the worker's own
        start()
        return
    import torch

    torch.set_num_threads(1)


def _work(items: list[Item], options) -> list[Record]:
    return list(recognize_items(_WORKER["recognizer"], items, options, jobs=1, group_size=len(items) or 1,
                                **_WORKER["kwargs"]))


def recognize_items_in_processes(
    recognizer, items: list[Item], options, *, workers: int, group_size: int = GROUP_SIZE, **kwargs,
) -> Iterator[Record]:
    """:func:`recognize_items` spread over ``workers`` processes forked from this one (so each has the
    loaded ``recognizer`` without loading it again, and runs one thread): groups of ``group_size`` items go
    to whichever process is free, and the records come back in input order. ``kwargs``: ``segments``,
    ``hop_seconds``, ``max_duration``, ``load``. The answers are those of one process (the same model, the
    same batching of each group). CPU models only (CUDA does not survive a fork); ``recognizer`` may be a
    :class:`speech.lite.LiteModel` (``load=recognizer.load_item``), then no worker imports torch."""
    import gc
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    device = getattr(recognizer, "device", None)  # a LiteModel runs on the CPU and has none
    if device is not None and device.type != "cpu":
        raise ValueError("worker processes run CPU models; use one process on a GPU")
    groups = [items[i : i + group_size] for i in range(0, len(items), max(1, group_size))]
    _WORKER.update(recognizer=recognizer, kwargs=kwargs)
    # The workers inherit every object of this process (the input list among them). Frozen, the workers'
    # garbage collector leaves them alone instead of writing to their pages, which would copy them into
    # each worker: without this, the workers' memory grew with the number of files (docs/benchmarks.md).
    gc.freeze()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_worker)
    pending: list = []
    try:
        ahead = iter(groups)
        for group in ahead:  # keep every process busy, two groups each at most
            pending.append(pool.submit(_work, group, options))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done = pending.pop(0).result()
            following = next(ahead, None)
            if following is not None:
                pending.append(pool.submit(_work, following, options))
            yield from done
    finally:
        for f in pending:
            f.cancel()
        # Every group answered: wait for the pool's manager thread to end. Left running (wait=False), it
        # closes its wake-up pipe while the interpreter's exit hook may write to it, and Python 3.11 then
        # prints "Exception ignored ... Bad file descriptor" to stderr at exit. Stopped early (an error, an
        # interrupt, the caller stopped reading): leave at once, the queued groups cancelled.
        pool.shutdown(wait=not pending, cancel_futures=True)
        _WORKER.clear()
        gc.unfreeze()
