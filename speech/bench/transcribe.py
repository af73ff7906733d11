"""``speech bench transcribe``: ``speech transcribe`` against PocketSphinx on the same 1 s clips, each tool
in a process of its own per run (``transcribe_worker``, ``pocketsphinx_worker``): throughput, peak memory
and accuracy on the 12-class task. ``benchmark_transcribe`` returns the result dict, ``format_transcribe``
its markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from speech.bench.measure import (
    COMMANDS, LABELS_12, REPO_ROOT, RESULT_PREFIX, SILENCE, SPEECH_COMMANDS_TEST, UNKNOWN, command_line, interleaved, load_now,
    machine_info, machine_line, markdown_table, median, paired_ratio, print_report, run_measured, set_threads,
    speech_commands_files, thread_env, worker_command,
)

# the 35 words of Speech Commands v0.02 (the 25 that are not commands count as _unknown_)
SPEECH_COMMANDS_WORDS = COMMANDS + (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "bed", "bird", "cat",
    "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "backward", "forward", "follow", "learn",
    "visual",
)


def to_12_classes(text: str) -> str:
    """A recognizer's answer on the 12-class task: a command, ``_silence_`` (no answer) or ``_unknown_``."""
    text = (text or "").strip().lower()
    if text in COMMANDS:
        return text
    if text in ("", SILENCE, "<sil>"):
        return SILENCE
    return UNKNOWN


def make_random_model(path: str | os.PathLike, labels: list[str] | None = None, seed: int = 0, **model_overrides) -> Path:
    """A model file with random weights (``ModelConfig()`` + ``FeatureConfig()`` unless overridden): the same
    compute as a trained model of that shape, for timing when no trained model exists."""
    import torch

    from speech.checkpoint import save_model
    from speech.features import FeatureConfig
    from speech.models import ModelConfig, SpeechModel

    torch.manual_seed(seed)
    model = SpeechModel(ModelConfig(**model_overrides), FeatureConfig(), labels or LABELS_12)
    save_model(model, path, {"clip_seconds": 1.0, "note": "random weights (benchmark stand-in)"})
    return Path(path)


def write_grammar(path: str | os.PathLike, words=SPEECH_COMMANDS_WORDS) -> Path:
    """A JSGF grammar: exactly one of ``words``."""
    Path(path).write_text("#JSGF V1.0;\ngrammar commands;\npublic <command> = " + " | ".join(words) + " ;\n")
    return Path(path)


def pocketsphinx_decode(paths: list[str], grammar: str | os.PathLike, pad: float = 0.5) -> dict[str, str]:
    """Decode each file with PocketSphinx (its en-us model, the JSGF ``grammar``), ``pad`` seconds of
    zeros on both sides: ``{path: text}`` (empty text: no hypothesis). Needs ``pip install pocketsphinx``."""
    import numpy as np
    import soundfile as sf
    from pocketsphinx import Config, Decoder

    rate = 16000
    decoder = Decoder(Config(jsgf=str(grammar), loglevel="FATAL", samprate=rate))
    zeros = np.zeros(int(pad * rate), dtype=np.int16)
    out = {}
    for path in paths:
        data, sr = sf.read(path, dtype="int16", always_2d=True)
        x = data.mean(axis=1).astype(np.int16) if data.shape[1] > 1 else data[:, 0]
        if sr != rate:
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(sr, rate)
            x = np.clip(resample_poly(x.astype(np.float32), rate // g, sr // g), -32768, 32767).astype(np.int16)
        decoder.start_utt()
        decoder.process_raw(np.concatenate([zeros, x, zeros]).tobytes(), no_search=False, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        out[str(path)] = hyp.hypstr.strip() if hyp is not None else ""
    return out


def pocketsphinx_worker(p: dict) -> dict:
    """``pocketsphinx_decode`` of the files listed on stdin; writes ``{path: text}`` to ``p['out']``."""
    paths = [line.strip() for line in sys.stdin if line.strip()]
    start = time.perf_counter()
    out = pocketsphinx_decode(paths, p["grammar"], p["pad"])
    seconds = time.perf_counter() - start
    Path(p["out"]).write_text(json.dumps(out))
    return {"clips": len(out), "seconds": seconds}


def transcribe_worker(p: dict) -> dict:
    """``speech.cli.main(argv)`` (the ``speech`` console script's entry point) in this process, timed: the
    process wall time minus this is the interpreter start and imports."""
    import speech.transcribe  # noqa: F401  (imports are start-up, not recognition: load them before timing)

    from speech.lite import onnx_for

    argv = p["argv"]
    engine = argv[argv.index("--engine") + 1] if "--engine" in argv else None
    if engine == "torch" or onnx_for(argv[argv.index("--model") + 1]) is None:  # else the torch-free path may run
        import speech.recognizer  # noqa: F401
    from speech.cli import main

    start = time.perf_counter()
    rc = main(p["argv"])
    seconds = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(rc)
    return {"seconds": seconds}


def _read_tsv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            out[fields[0]] = fields[1]
    return out


def _accuracy(truth: dict[str, str], answers: dict[str, str]) -> dict:
    correct = sum(to_12_classes(answers.get(p, "")) == label for p, label in truth.items())
    return {"accuracy": correct / max(len(truth), 1), "correct": correct, "count": len(truth),
            "missing": sum(p not in answers for p in truth)}


def benchmark_transcribe(
    model: str = "commands",
    clips: int = 300,
    repeats: int = 3,
    threads: int = 1,
    batch_size: int = 32,
    jobs: int | None = None,
    pad: float = 0.5,
    data_dir: str | None = None,
    work_dir: str | None = None,
    random_model: bool = False,
    manifest: str | None = None,
    engine: str = "default",
    workers: int = 0,
    cold_repeats: int = 5,
) -> dict:
    """``speech transcribe`` (``speech.cli.main``, the console script's entry point, in a process of its own
    per run) against PocketSphinx (a process per run, decoding each clip with a JSGF grammar of the 35
    words) on the same 1 s clips: throughput steady (inside the process: model or decoder load, reading
    and recognizing every clip) and end to end (process start to exit), times real time, the process's
    peak RSS, and accuracy on the 12-class task. ``random_model``: a random-weight model of the default shape instead
    of ``model`` (timings hold, accuracy does not). ``engine`` and ``workers``: ``speech transcribe --engine
    --workers`` ("default" and 0: not given, as a user runs it). Also the cold start (:func:`cold_start`): one file, a fresh process each, ``cold_repeats`` times."""
    import soundfile as sf

    set_threads(threads)
    info = machine_info()
    if manifest:  # e.g. only the speakers a model was not trained on
        from speech.data.manifest import read_manifest

        files = [(r.audio_filepath, to_12_classes(r.label) if r.label != SILENCE else SILENCE) for r in read_manifest(manifest)]
    else:
        files = speech_commands_files(data_dir, clips)
    truth = dict(files)
    audio_s = sum(sf.info(p).duration for p, _ in files)
    own_tmp = tempfile.TemporaryDirectory(prefix="speech-bench-transcribe-", dir=work_dir)
    tmp = Path(own_tmp.name)
    try:
        if random_model:
            model_path = str(make_random_model(tmp / "random-model.pt"))
            model_name = "random weights, ModelConfig() + FeatureConfig() defaults, 12 labels"
        else:
            from speech.checkpoint import ModelFileError, resolve_model_path

            try:
                model_path = str(resolve_model_path(model))
            except ModelFileError as err:
                raise SystemExit(f"{err}\n(use --random-model to time a random-weight model of the default shape)")
            model_name = model
        all_list = tmp / "all.txt"
        all_list.write_text("\n".join(p for p, _ in files) + "\n")
        grammar = write_grammar(tmp / "commands.gram")
        env = thread_env(threads)
        argv = ["transcribe", "-", "--model", model_path, "--format", "tsv", "--output", str(tmp / "ours.tsv"),
                "--batch-size", str(batch_size), "--device", "cpu", "--threads", str(threads)] \
            + (["--engine", engine] if engine != "default" else []) + (["--workers", str(workers)] if workers else []) \
            + (["--jobs", str(jobs)] if jobs else [])
        outputs = {"ours": tmp / "ours.tsv", "sphinx": tmp / "sphinx.json"}
        commands = {
            "ours": worker_command("transcribe-worker", {"argv": argv}),
            "sphinx": worker_command("pocketsphinx-worker", {"grammar": str(grammar), "pad": pad, "out": str(outputs["sphinx"])}),
        }
        runs: dict[str, list[dict]] = {"ours": [], "sphinx": []}

        def task(name: str):
            def run():
                r = run_measured(commands[name], env=env, stdin_path=str(all_list))
                lines = [l for l in r["stdout"].splitlines() if l.startswith(RESULT_PREFIX)]
                if r["rc"] != 0 or not lines:
                    raise RuntimeError(f"{name} run failed (exit {r['rc']}): {r['stderr'][-2000:]}")
                r.update(json.loads(lines[-1][len(RESULT_PREFIX):]))
                runs[name].append(r)
            return run

        interleaved({"ours": task("ours"), "sphinx": task("sphinx")}, repeats)
        cold = cold_start(files[0][0], model, str(grammar), env, cold_repeats) if cold_repeats > 0 and not random_model else None
        answers_ours = _read_tsv(outputs["ours"])
        answers_sphinx = json.loads(outputs["sphinx"].read_text())
    finally:
        own_tmp.cleanup()

    n = len(files)
    rows = {}
    for name, label in (("ours", f"speech transcribe ({model_name})"),
                        ("sphinx", "PocketSphinx 5 en-us, JSGF grammar of the 35 words")):
        steady = [r["seconds"] for r in runs[name]]
        whole = [r["wall_s"] for r in runs[name]]
        rows[name] = {
            "name": label,
            "clips_per_second_steady": n / median(steady),
            "times_real_time_steady": audio_s / median(steady),
            "clips_per_second_end_to_end": n / median(whole),
            "startup_s": median(w - s for w, s in zip(whole, steady)),
            "wall_s": median(whole),
            "peak_rss_mb": max(r["vmhwm_mb"] or 0 for r in runs[name]),
            **_accuracy(truth, answers_ours if name == "ours" else answers_sphinx),
            "_steady": steady, "_whole": whole,
        }
    ratio_steady = paired_ratio(rows["sphinx"].pop("_steady"), rows["ours"].pop("_steady"))
    ratio_e2e = paired_ratio(rows["sphinx"].pop("_whole"), rows["ours"].pop("_whole"))
    return {
        "benchmark": "transcribe", "machine": info, "load_after": load_now(),
        "params": {"clips": n, "audio_s": audio_s, "repeats": repeats, "threads": threads, "batch_size": batch_size,
                   "jobs": jobs, "pad_s": pad, "model": model_name, "random_model": random_model,
                   "engine": engine, "workers": workers,
                   "data": f"{SPEECH_COMMANDS_TEST} (12 classes, 1 s, 16 kHz)"},
        "rows": rows, "ratio_steady": ratio_steady, "ratio_end_to_end": ratio_e2e, "provisional": random_model,
        "cold_start": cold,
        "compute_bound_clips_per_second": compute_bound(info),
    }


SPHINX_COLD = """
import sys, numpy as np, soundfile as sf
from pocketsphinx import Config, Decoder
data, rate = sf.read(sys.argv[1], dtype="int16")
decoder = Decoder(Config(jsgf=sys.argv[2], loglevel="FATAL", samprate=rate))
zeros = np.zeros(rate // 2, dtype=np.int16)
decoder.start_utt()
decoder.process_raw(np.concatenate([zeros, data, zeros]).tobytes(), no_search=False, full_utt=True)
decoder.end_utt()
hyp = decoder.hyp()
print(sys.argv[1], hyp.hypstr if hyp else "", sep="\t")
"""


IMPORTS_TORCH = """
import sys
from speech.cli import main
rc = main(sys.argv[1:])
print("imports torch:", any(m.split(".")[0] in ("torch", "torchaudio") for m in sys.modules))
sys.exit(rc)
"""


def cold_start(path: str, model: str, grammar: str, env: dict, repeats: int) -> dict:
    """Seconds from process start to exit for one file, a fresh process each time, alternating: ``speech
    transcribe PATH`` (the console script's code, ``--model`` only when not the default) against
    PocketSphinx's Python package importing, loading its model and decoding the file (medians).
    ``imports_torch``: whether that command imported torch (one more run, not timed): the bundled model's
    default path (:mod:`speech.lite`) does not."""
    ours = [sys.executable, "-m", "speech.cli", "transcribe", path] + ([] if model == "commands" else ["--model", model])
    sphinx = [sys.executable, "-c", SPHINX_COLD, path, grammar]
    times: dict[str, list[float]] = {"ours": [], "sphinx": []}

    def timed(name: str, cmd: list[str]):
        def run():
            r = run_measured(cmd, env=env)
            if r["rc"] != 0:
                raise RuntimeError(f"cold start of {name} failed (exit {r['rc']}): {r['stderr'][-1000:]}")
            times[name].append(r["wall_s"])
        return run

    interleaved({"ours": timed("ours", ours), "sphinx": timed("sphinx", sphinx)}, repeats)
    probe = run_measured([sys.executable, "-c", IMPORTS_TORCH, *ours[3:]], env=env)
    return {"ours_s": median(times["ours"]), "sphinx_s": median(times["sphinx"]),
            "ratio": median(times["sphinx"]) / median(times["ours"]), "repeats": repeats,
            "command": " ".join(["speech", *ours[3:]]), "imports_torch": "imports torch: True" in probe["stdout"]}


def benchmark_cold_start(model: str = "commands", repeats: int = 5, threads: int = 1, data_dir: str | None = None,
                         work_dir: str | None = None) -> dict:
    """:func:`cold_start` alone (``speech bench transcribe --cold-only``), on the first clip
    :func:`benchmark_transcribe` would use."""
    files = speech_commands_files(data_dir, 12)
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="speech-bench-cold-", dir=work_dir) as tmp:
        grammar = write_grammar(Path(tmp) / "commands.gram")
        cold = cold_start(files[0][0], model, str(grammar), thread_env(threads), repeats)
    return {"benchmark": "transcribe-cold-start", "machine": info, "load_after": load_now(),
            "params": {"model": model, "repeats": repeats, "threads": threads}, "cold_start": cold}


def _cold_line(cold: dict) -> str:
    path = "torch not imported" if not cold.get("imports_torch", True) else "imports torch"
    return (f"Cold start, one file, a fresh process each ({cold['repeats']} alternating runs, medians): "
            f"`{cold['command']}` ({path}) **{cold['ours_s']:.2f} s**, PocketSphinx (import, load, decode) "
            f"**{cold['sphinx_s']:.2f} s**: ours / PocketSphinx speed {cold['ratio']:.2f}x.")


def format_cold_start(result: dict) -> str:
    return "\n".join(["### transcribe: cold start vs PocketSphinx", "",
                      f"Machine: {machine_line(result['machine'], result.get('load_after'))}.", "",
                      _cold_line(result["cold_start"])])


TRANSCRIBE_PEAK = """
import sys
from pathlib import Path
from speech.cli import main
rc = main(sys.argv[1:])
hwm = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM")]
print("PEAK_KB", hwm[0].split()[1] if hwm else 0, "RC", rc)
"""


def link_folder(folder: str | os.PathLike, files: list[str], count: int, per_folder: int = 1000) -> Path:
    """A folder of ``count`` audio files without copying any: symbolic links to ``files`` (cycled), in
    subfolders of ``per_folder``. Returns the folder."""
    root = Path(folder)
    for i in range(count):
        sub = root / f"{i // per_folder:04d}"
        if i % per_folder == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:06d}{Path(files[i % len(files)]).suffix}").symlink_to(Path(files[i % len(files)]).resolve())
    return root


MEMORY_SAMPLE_S = 0.05  # TreePeak's interval: a quiet 1,000-file run's workers may live under half a second


def transcribe_memory(counts: list[int], model: str = "commands", data_dir: str | None = None, work_dir: str | None = None,
                      threads: int = 1, interval: float = MEMORY_SAMPLE_S) -> list[dict]:
    """Peak memory of ``speech transcribe FOLDER --output FILE`` (every other option at its default: the
    torch-free path under 1,000 files, one worker process per core from 1,000 on) on folders of each of
    ``counts`` files (:func:`link_folder` to the clips of the shared Speech Commands part), each run a
    process of its own: the main process's peak RSS (its own ``VmHWM``), the largest worker's, and the
    largest total at one moment of the main process's RSS and the workers' private memory
    (:class:`~speech.bench.measure.TreePeak`, sampled every ``interval`` s: the pool's workers may live under half
    a second of a 1,000-file run on a quiet machine, and a worker counts once seen in two samples), wall time and files/s."""
    import subprocess

    from speech.bench.measure import TreePeak

    files = [p for p, _ in speech_commands_files(data_dir, 0)]
    env = thread_env(threads)
    out = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix=f"speech-bench-memory-{count}-", dir=work_dir) as tmp:
            folder = link_folder(Path(tmp) / "clips", files, count)
            answers = Path(tmp) / "out.tsv"
            cmd = [sys.executable, "-c", TRANSCRIBE_PEAK, "transcribe", str(folder), "--model", model, "--output", str(answers)]
            with open(Path(tmp) / "stdout", "w+b") as stdout, open(Path(tmp) / "stderr", "w+b") as stderr:
                start = time.perf_counter()
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env, cwd=str(REPO_ROOT))
                sampler = TreePeak(proc.pid, interval).start()
                proc.wait()
                wall = time.perf_counter() - start
                sampler.stop()
                stdout.seek(0)
                stderr.seek(0)
                text, err = stdout.read().decode(), stderr.read().decode("utf-8", "replace")
            line = [ln for ln in text.splitlines() if ln.startswith("PEAK_KB")]
            if proc.returncode != 0 or not line or line[0].split()[-1] != "0":
                raise RuntimeError(f"speech transcribe on {count} files failed (exit {proc.returncode}): {err[-1500:]}")
            with open(answers, encoding="utf-8") as f:
                lines = sum(1 for _ in f)
            workers = list(sampler.lasting().values())  # the pool's workers, not a helper that came and went
            out.append({"files": count, "lines": lines, "wall_s": wall, "files_per_second": count / wall,
                        "main_peak_mb": int(line[0].split()[1]) / 1024, "workers": len(workers),
                        "worker_peak_mb": max(workers) if workers else None, "all_processes_peak_mb": sampler.tree_mb})
    return out


def format_memory(rows: list[dict]) -> str:
    table = markdown_table(
        ["files", "wall s", "files/s", "main process peak RSS MB", "worker processes", "largest worker peak RSS MB",
         "all processes at their peak MB"],
        [[r["files"], r["wall_s"], r["files_per_second"], r["main_peak_mb"], r["workers"], r["worker_peak_mb"],
          r["all_processes_peak_mb"]] for r in rows])
    return ("### transcribe: memory against the number of files\n\n`speech transcribe FOLDER --output FILE` with the default "
            "options (symbolic links to the shared clips; the torch-free path under 1,000 files, worker processes from "
            f"1,000 on); sampled every {MEMORY_SAMPLE_S:g} s. \"All processes\": the main process's RSS plus what only each worker maps "
            "(its private memory; pages it shares with the main process are counted once).\n\n" + table)


def compute_bound(info: dict) -> float:
    """Clips per second all cores could reach for the default model: 46 MFLOP per 1 s clip at ~50 GFLOP/s
    a core (docs/benchmarks.md works out both numbers)."""
    return (info.get("cores_usable") or os.cpu_count() or 1) * 50e9 / 46e6


def format_transcribe(result: dict) -> str:
    p = result["params"]
    rows = [[r["name"], r["clips_per_second_steady"], r["times_real_time_steady"], r["clips_per_second_end_to_end"],
             r["startup_s"], r["peak_rss_mb"], f"{100 * r['accuracy']:.1f} % ({r['correct']}/{r['count']})"]
            for r in result["rows"].values()]
    out = [f"### transcribe: speech transcribe vs PocketSphinx on {p['clips']} clips", "",
           f"Machine: {machine_line(result['machine'], result.get('load_after'))}.",
           f"Data: {p['clips']} clips ({p['audio_s']:.0f} s of audio) of {p['data']}, spread over the classes. "
           f"Each tool runs as its own process: {p['repeats']} alternating repeats, medians. torch/BLAS threads "
           f"{p['threads']}; speech transcribe {'--engine ' + p['engine'] if p['engine'] != 'default' else '(no --engine)'} "
           f"{'--workers ' + str(p['workers']) if p['workers'] else '(default --workers)'} --batch-size {p['batch_size']}"
           f"{' --jobs ' + str(p['jobs']) if p['jobs'] else ' (default --jobs)'}; PocketSphinx with "
           f"{p['pad_s']:g} s of zeros on both sides of each clip.", "",
           markdown_table(["recognizer", "clips/s (steady)", "x real time (steady)", "clips/s (end to end)",
                           "interpreter start + imports s", "peak RSS MB", "accuracy, 12 classes"], rows), "",
           f"Ours / PocketSphinx: **{result['ratio_steady']:.1f}x** steady (inside the process: model load, reading and "
           f"recognizing every clip), **{result['ratio_end_to_end']:.1f}x** end to end (process start to exit). "
           f"The compute bound of this machine's cores for the default model: about "
           f"{result['compute_bound_clips_per_second']:.0f} clips/s; steady state reaches "
           f"{100 * result['rows']['ours']['clips_per_second_steady'] / result['compute_bound_clips_per_second']:.0f} % of it."]
    cold = result.get("cold_start")
    if cold:
        out += ["", _cold_line(cold)]
    if result.get("provisional"):
        out += ["", "**Provisional:** our model here has random weights (the bundled `commands` model did not exist "
                "yet): the speed and memory hold for a trained model of the same shape, our accuracy does not."]
    return "\n".join(out)


def add_transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "speech transcribe against PocketSphinx: speed, peak memory and 12-class accuracy."
    parser.add_argument("--model", "-m", default="commands", help="our model: bundled name or path (default: commands)")
    parser.add_argument("--random-model", action="store_true",
                        help="time a random-weight model of the default shape instead of --model (accuracy is then meaningless)")
    parser.add_argument("--clips", type=int, default=300, help="clips of the v2 test part, spread over the classes; 0: all 1451 (default: 300)")
    parser.add_argument("--manifest", help="score these clips instead (12-class labels), e.g. the speakers the model was not trained on")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each tool, alternating (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads of each process (default: 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="speech transcribe --batch-size (default: 32)")
    parser.add_argument("--jobs", type=int, default=None, help="speech transcribe --jobs (default: its own default)")
    parser.add_argument("--engine", choices=("default", "torch", "onnx", "auto"), default="default",
                        help="speech transcribe --engine; default: not given, what a user's plain 'speech transcribe' runs "
                             "(the bundled model without torch where it can)")
    parser.add_argument("--workers", type=int, default=0,
                        help="speech transcribe --workers; 0: not given, its own default (one per core from 1,000 files) (default: 0)")
    parser.add_argument("--cold-repeats", type=int, default=5, help="fresh processes for the one-file cold start; 0: skip (default: 5)")
    parser.add_argument("--cold-only", action="store_true", help="only the one-file cold start (--cold-repeats runs of each tool)")
    parser.add_argument("--memory-files", type=int, nargs="+", metavar="N",
                        help="only the peak memory of 'speech transcribe FOLDER' on folders of N files each (links to the clips), e.g. 1000 10000 100000")
    parser.add_argument("--pad", type=float, default=0.5, help="seconds of zeros around each clip for PocketSphinx (default: 0.5)")
    parser.add_argument("--data-dir", help="shared data folder (default: $SPEECH_DATA_DIR or ../shared/data)")
    parser.add_argument("--work-dir", help="where temporary files go (default: $TMPDIR)")
    parser.add_argument("--json", metavar="FILE", help="also write the result dict as JSON")


def run_transcribe(args: argparse.Namespace) -> int:
    if args.memory_files:
        if any(n < 1 for n in args.memory_files):
            print("speech bench transcribe: --memory-files must be 1 or more", file=sys.stderr)
            return 2
        info = machine_info()
        rows = transcribe_memory(args.memory_files, args.model, args.data_dir, args.work_dir, args.threads)
        result = {"benchmark": "transcribe-memory", "machine": info, "load_after": load_now(), "rows": rows,
                  "command": command_line("python tools/bench_transcribe.py", args, skip=(
                      "json", "work_dir", "clips", "repeats", "batch_size", "jobs", "engine", "workers", "pad", "manifest",
                      "cold_repeats"))
                  + " --memory-files " + " ".join(str(n) for n in args.memory_files)}
        return print_report(result, lambda r: format_memory(r["rows"]) + f"\n\nMachine: {machine_line(r['machine'], r['load_after'])}.",
                            args.json)
    if args.cold_only:
        result = benchmark_cold_start(args.model, max(1, args.cold_repeats), args.threads, args.data_dir, args.work_dir)
        result["command"] = command_line("python tools/bench_transcribe.py", args, skip=(
            "json", "work_dir", "clips", "repeats", "batch_size", "jobs", "engine", "workers", "pad", "manifest"))
        return print_report(result, format_cold_start, args.json)
    result = benchmark_transcribe(args.model, args.clips, args.repeats, args.threads, args.batch_size, args.jobs,
                                  args.pad, args.data_dir, args.work_dir, args.random_model, args.manifest,
                                  args.engine, args.workers, args.cold_repeats)
    result["command"] = command_line("python tools/bench_transcribe.py", args, skip=("json", "work_dir"))
    return print_report(result, format_transcribe, args.json)

