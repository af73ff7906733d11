"""A whole run: every planned clip rendered, post-processed and saved, in a process pool, resumably.

Runs resume: a clip whose file exists (kept or filtered) is not synthesized again, and the
manifests (sorted by path) are rebuilt from what exists plus what was made; clips of earlier runs
with other engines, words or variants stay in them while their files exist (delete files to drop them).
``synthesize(..., keep=fn)`` also drops new clips for which ``fn(path, label)`` is false (a trained
model's check, say).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import soundfile as sf

from speech.synth.engines import DEFAULT_ENGINES, ENGINES, SynthError, find_voices, render
from speech.synth.plan import ClipSpec, plan_clips
from speech.synth.postprocess import ClipSettings, postprocess, rms_db, speech_span

STATS_KEYS = ("reason", "speech_seconds", "rms_db", "over_clip")  # what postprocess measures, per clip


@dataclass
class ClipResult:
    """What became of one planned clip."""

    spec: ClipSpec
    relpath: str | None = None  # relative to the output folder; None on error
    duration: float = 0.0
    stats: dict = field(default_factory=dict)
    error: str | None = None
    existed: bool = False

    @property
    def kept(self) -> bool:
        return self.error is None and not self.stats.get("reason")

    def stats_row(self) -> dict:
        spec = asdict(self.spec)
        row = {"audio_filepath": self.relpath, "duration": round(self.duration, 4), **spec, "speaker": self.spec.speaker}
        if self.spec.engine != "piper":
            row.pop("noise_scale")
        return {**row, **self.stats}


def synthesize_clip(spec: ClipSpec, out_dir: str | os.PathLike, settings: ClipSettings) -> ClipResult:
    """Render, post-process and save one clip under ``audio/`` (kept) or ``filtered/`` (dropped).

    Engine failures come back as ``ClipResult.error`` (one line), never as an exception, so a
    worker pool keeps going.
    """
    from speech.audio import save_audio

    out_dir = Path(out_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
            raw, rate = render(spec, Path(tmp), use_sox=settings.use_sox)
        audio, stats = postprocess(raw, rate, spec, settings)
    except SynthError as err:
        return ClipResult(spec, error=str(err))
    relpath = spec.relpath("filtered" if stats["reason"] else "audio")
    path = out_dir / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    save_audio(path, audio, settings.sample_rate)
    return ClipResult(spec, relpath, len(audio) / settings.sample_rate, stats)


def _init_worker() -> None:
    """Worker processes: one torch thread each, so ``--jobs`` is the number of busy cores."""
    import torch

    torch.set_num_threads(1)


@dataclass
class SynthSummary:
    """Counts of a run, per engine."""

    made: Counter = field(default_factory=Counter)  # newly synthesized (kept or dropped)
    existing: Counter = field(default_factory=Counter)  # found from an earlier run
    kept: Counter = field(default_factory=Counter)  # in the manifest (new + existing)
    dropped: dict[str, Counter] = field(default_factory=dict)  # engine -> reason -> count (new + existing)
    failed: Counter = field(default_factory=Counter)
    over_clip: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per engine plus a total, for stderr and docs."""
        out = []
        for engine in sorted(set(self.made) | set(self.existing) | set(self.failed), key=_engine_order):
            drops = self.dropped.get(engine, Counter())
            total = self.kept[engine] + sum(drops.values())
            reasons = ", ".join(f"{r} {n}" for r, n in drops.most_common())
            out.append(
                f"{engine:<9} clips {total:>5} (new {self.made[engine]}, existing {self.existing[engine]})  kept {self.kept[engine]:>5}"
                f"  dropped {sum(drops.values()):>4} ({100 * sum(drops.values()) / max(total, 1):.1f} %{': ' + reasons if reasons else ''})"
                + (f"  failed {self.failed[engine]}" if self.failed[engine] else "")
            )
        made = sum(self.made.values())
        rate = made / self.seconds if self.seconds > 0 else 0.0
        out.append(f"total     {made} new clips in {self.seconds:.1f} s ({rate:.1f} clips/s)")
        return out


def _engine_order(engine: str) -> int:
    names = list(ENGINES)
    return names.index(engine) if engine in names else len(names)


# --------------------------------------------------------------------------------------------
# Resuming: what earlier runs left in the output folder
# --------------------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> dict[str, dict]:
    """Rows of a JSON-lines file keyed by ``audio_filepath`` ({} when missing or unreadable)."""
    rows: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "audio_filepath" in row:
                rows[row["audio_filepath"]] = row
    return rows


def _saved_result(spec: ClipSpec, out_dir: Path, relpath: str, old_row: dict) -> ClipResult:
    """A clip an earlier run saved at ``relpath``, with the stats of its old stats row: a clip under
    ``filtered/`` keeps its reason (``dropped_earlier`` when lost), one under ``audio/`` is kept."""
    stats = {k: old_row.get(k) for k in STATS_KEYS}
    if relpath.startswith("filtered/"):
        stats["reason"] = stats["reason"] or "dropped_earlier"
    else:
        stats["reason"] = None
    info = sf.info(str(out_dir / relpath))
    return ClipResult(spec, relpath, info.frames / info.samplerate, stats, existed=True)


def _existing_result(spec: ClipSpec, out_dir: Path, old_stats: dict[str, dict], settings: ClipSettings) -> ClipResult | None:
    """A clip an earlier run made (kept or filtered), with its stats; None when it must be made."""
    for folder in ("audio", "filtered"):
        relpath = spec.relpath(folder)
        path = out_dir / relpath
        if not path.is_file():
            continue
        result = _saved_result(spec, out_dir, relpath, old_stats.get(relpath, {}))
        if folder == "audio" and result.stats["speech_seconds"] is None:
            result.stats.update(_measure_saved(path, settings))
        return result
    return None


def _carried_results(old_stats: dict[str, dict], planned: set[str], out_dir: Path) -> list[ClipResult]:
    """Clips of earlier runs that this run does not plan (other engines, words, variants) but whose
    files still exist: they stay in the manifests."""
    fields = ("engine", "voice", "variant", "label", "text", "rate", "semitones", "peak_db")
    carried = []
    for relpath, row in old_stats.items():
        if relpath in planned or not (out_dir / relpath).is_file() or not all(k in row for k in fields):
            continue
        try:
            spec = ClipSpec(**{k: row[k] for k in fields}, noise_scale=row.get("noise_scale", 0.667))
        except TypeError:
            continue
        carried.append(_saved_result(spec, out_dir, relpath, row))
    return carried


def _measure_saved(path: Path, settings: ClipSettings) -> dict:
    """Speech duration and RMS of an already saved clip (for stats lost with an old stats file)."""
    audio, rate = sf.read(str(path), dtype="float32")
    span = speech_span(audio, rate)
    if span is None:
        return {"speech_seconds": 0.0, "rms_db": -120.0, "over_clip": False}
    speech = audio[span[0] : span[1]]
    over = bool(settings.clip_seconds) and len(audio) > int(round(settings.clip_seconds * rate))
    return {"speech_seconds": round(len(speech) / rate, 3), "rms_db": rms_db(speech), "over_clip": over}


def _reject(result: ClipResult, out_dir: Path, reason: str) -> None:
    """Move a kept clip to ``filtered/`` with ``reason``."""
    new_rel = result.spec.relpath("filtered")
    (out_dir / new_rel).parent.mkdir(parents=True, exist_ok=True)
    os.replace(out_dir / result.relpath, out_dir / new_rel)
    result.relpath, result.stats["reason"] = new_rel, reason


def synthesize(
    items: Sequence[tuple[str, str]],
    out_dir: str | os.PathLike,
    *,
    engines: Sequence[str] = DEFAULT_ENGINES,
    variants: int = 10,
    seed: int = 0,
    jobs: int = 1,
    settings: ClipSettings = ClipSettings(),
    keep: Callable[[Path, str], bool] | None = None,
    progress: bool = True,
    voices: dict[str, Sequence[str]] | None = None,
) -> SynthSummary:
    """Synthesize ``items`` ((label, text) pairs) with every usable engine into ``out_dir``.

    ``jobs > 1`` runs clips in a process pool; ``keep(path, label) -> bool``, called in this process
    for every newly kept clip, moves the clips it rejects to ``filtered/`` (reason ``rejected``).
    ``voices`` (engine -> voice names) overrides the discovered voices, e.g. to test one voice.
    Writes ``synth.jsonl``, ``filtered.jsonl`` and ``synth_stats.jsonl``, also when interrupted.
    """
    from speech.data.manifest import Utterance, write_manifest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if voices is None:
        voices = find_voices(engines)
    plan = plan_clips(items, voices, variants, seed)
    old_stats = _read_jsonl(out_dir / "synth_stats.jsonl") | _read_jsonl(out_dir / "filtered.jsonl")
    results: dict[ClipSpec, ClipResult] = {}
    todo = []
    for spec in plan:
        found = _existing_result(spec, out_dir, old_stats, settings)
        if found:
            results[spec] = found
        else:
            todo.append(spec)
    planned = {spec.relpath(folder) for spec in plan for folder in ("audio", "filtered")}
    for result in _carried_results(old_stats, planned, out_dir):
        results.setdefault(result.spec, result)
    summary = SynthSummary()
    new_drops = Counter()
    from tqdm import tqdm

    # a bar on a terminal (quiet elsewhere and with progress=False)
    bar = tqdm(total=len(todo), desc="synth", unit="clip", leave=False, disable=None if progress and todo else True)
    start = time.monotonic()

    def finish(result: ClipResult) -> None:
        if result.kept and keep is not None and not keep(out_dir / result.relpath, result.spec.label):
            _reject(result, out_dir, "rejected")
        results[result.spec] = result
        if result.error:
            summary.errors.append(result.error)
            summary.failed[result.spec.engine] += 1
        else:
            summary.made[result.spec.engine] += 1
            new_drops["dropped"] += bool(result.stats.get("reason"))
        bar.update(1)
        if not bar.disable:
            bar.set_postfix(dropped=new_drops["dropped"], failed=len(summary.errors), refresh=False)

    try:
        if jobs <= 1 or len(todo) <= 1:
            for spec in todo:
                finish(synthesize_clip(spec, out_dir, settings))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker) as pool:
                pending = {pool.submit(synthesize_clip, spec, str(out_dir), settings) for spec in todo}
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            finish(future.result())
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise
    finally:
        bar.close()
        summary.seconds = time.monotonic() - start
        ordered = sorted(results.values(), key=lambda r: r.relpath or "")
        for result in ordered:
            engine = result.spec.engine
            if result.existed:
                summary.existing[engine] += 1
            if result.error:
                continue
            if result.kept:
                summary.kept[engine] += 1
                summary.over_clip += bool(result.stats.get("over_clip"))
            else:
                summary.dropped.setdefault(engine, Counter())[result.stats["reason"]] += 1
        kept = [r for r in ordered if r.kept]
        write_manifest(
            out_dir / "synth.jsonl",
            (Utterance(r.relpath, round(r.duration, 4), r.spec.label, r.spec.text, r.spec.speaker) for r in kept),
        )
        write_manifest(out_dir / "filtered.jsonl", (r.stats_row() for r in ordered if not r.error and not r.kept))
        write_manifest(out_dir / "synth_stats.jsonl", (r.stats_row() for r in ordered if not r.error))
    return summary
