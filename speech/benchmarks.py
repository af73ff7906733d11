"""Benchmarks: ``features`` (our batched front end against librosa), ``train`` (our training data path
against a plain per-item loop, plus a Speech Commands-size memory check) and ``transcribe``
(``speech transcribe`` against PocketSphinx, speed and accuracy).

The machine may be shared, so no number stands alone: each timing is a ratio against a reference
measured in the same run. Reference and ours alternate (their order rotates), every measurement is
repeated, and the tables give medians; the headline ratio is the median of the per-repeat ratios.
Every result carries the machine (CPU model, cores, torch threads, load average before and after).

One function per benchmark returns a plain result dict (``benchmark_features``, ``benchmark_train``,
``benchmark_transcribe``); ``format_features`` / ``format_train`` / ``format_transcribe`` turn it into
markdown. The command-line entry points are ``add_<name>_arguments(parser)`` and ``run_<name>(args)``
(``tools/bench_<name>.py``, or ``speech bench <name>`` once wired). Work that needs its own process
(training loops and memory checks, whose peak resident memory must not mix; the CLI under test;
PocketSphinx) runs as ``python -m speech.benchmarks <worker> '<json parameters>'``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEECH_COMMANDS_TEST = "speech_commands_v2_test_dev"
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
LABELS_12 = list(COMMANDS) + [UNKNOWN, SILENCE]
# the 35 words of Speech Commands v0.02 (the 25 that are not commands count as _unknown_)
SPEECH_COMMANDS_WORDS = COMMANDS + (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "bed", "bird", "cat",
    "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "backward", "forward", "follow", "learn",
    "visual",
)
SPEECH_COMMANDS_V2_TRAIN_CLIPS = 84_843  # the v0.02 training split (validation/testing lists removed)
RESULT_PREFIX = "BENCHMARK-RESULT "


# ====================================================================================================
# shared pieces: machine, threads, timing, memory, tables, data
# ====================================================================================================
def shared_data_dir() -> Path:
    """``$SPEECH_DATA_DIR``, else ``<repo>/../shared/data`` (as the tests and recipes use)."""
    env = os.environ.get("SPEECH_DATA_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT.parent / "shared" / "data"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def set_threads(threads: int) -> None:
    """One knob for every thread pool a benchmark touches: torch's, and numpy's/scipy's BLAS (librosa's
    mel projection is a BLAS call; with its default of one thread per core it stalls on a busy machine)."""
    import torch

    torch.set_num_threads(max(1, threads))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(max(1, threads))
    except ImportError:  # librosa depends on scikit-learn, which brings threadpoolctl; be safe anyway
        pass


def thread_env(threads: int) -> dict:
    """Environment for a subprocess with ``threads`` threads in torch (OpenMP) and BLAS."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(max(1, threads))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def machine_info() -> dict:
    """CPU model, cores, torch threads, versions, GPU and the load average now."""
    import numpy as np
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        cores_usable = len(os.sched_getaffinity(0))
    except AttributeError:
        cores_usable = os.cpu_count()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": cores_usable,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "gpu": gpu,
    }


def machine_line(info: dict, load_after: list[float] | None = None) -> str:
    load = info.get("load_average")
    text = (f"{info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), torch {info['torch']} with "
            f"{info['torch_threads']} thread{'s' if info['torch_threads'] != 1 else ''}, numpy {info['numpy']}, "
            f"Python {info['python']}, {'GPU ' + info['gpu'] if info['gpu'] else 'no GPU here'}; {info['date']}")
    if load:
        text += f"; load average {load[0]:.2f} at start"
        if load_after:
            text += f", {load_after[0]:.2f} at end"
    return text


def load_now() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def median(values) -> float:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else float("nan")


def interleaved(tasks: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Run each task ``repeats`` times, alternating between tasks (the order rotates every repeat, so no
    task always runs first or after the same neighbour); returns wall seconds per run, per task."""
    names = list(tasks)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        order = names[k:] + names[:k]
        for name in order:
            start = time.perf_counter()
            tasks[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(reference: list[float], ours: list[float]) -> float:
    """Median over repeats of ``reference[i] / ours[i]`` (both are costs: > 1 means ours is faster)."""
    return median([a / b for a, b in zip(reference, ours) if b > 0])


def memory_status() -> dict:
    """``VmRSS``, ``VmHWM`` (peak RSS), ``RssAnon``, ``RssFile`` of this process in MB (Linux), else the
    peak from ``getrusage``."""
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        import resource

        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


class PeakSampler:
    """Samples :func:`memory_status` every ``interval`` seconds in a thread; ``peak[key]`` is the max seen."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak = interval, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for k, v in memory_status().items():
            self.peak[k] = max(self.peak.get(k, 0.0), v)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakSampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def run_measured(cmd: list[str], env: dict | None = None, stdin_path: str | None = None, cwd: str | None = None) -> dict:
    """Run ``cmd``; return ``rc``, ``wall_s``, ``stdout`` and ``stderr``. (Peak memory comes from the
    child's own ``VmHWM``: a child's ``ru_maxrss`` from ``wait4`` also counts the parent's pages it was
    forked or vforked from.)"""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, open(stdin_path or os.devnull, "rb") as inp:
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdin=inp, stdout=out, stderr=err, env=env, cwd=cwd or str(REPO_ROOT))
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return {"rc": proc.returncode, "wall_s": wall,
                "stdout": out.read().decode("utf-8", "replace"), "stderr": err.read().decode("utf-8", "replace")}


def run_worker(name: str, params: dict, threads: int) -> dict:
    """Run ``python -m speech.benchmarks NAME PARAMS`` and return the dict it printed (with ``vmhwm_mb``, its
    peak RSS, and ``wall_s``); raises ``RuntimeError`` with its stderr when it fails."""
    proc = run_measured([sys.executable, "-m", "speech.benchmarks", name, json.dumps(params)], env=thread_env(threads))
    lines = [l for l in proc["stdout"].splitlines() if l.startswith(RESULT_PREFIX)]
    if proc["rc"] != 0 or not lines:
        raise RuntimeError(f"benchmark worker {name} failed (exit {proc['rc']}):\n{proc['stderr'][-3000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["wall_s"] = proc["wall_s"]
    return result


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def cell(x) -> str:
        if isinstance(x, float):
            if x != x:
                return "-"
            return f"{x:,.0f}" if abs(x) >= 100 else (f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}")
        return "-" if x is None else str(x)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def evenly_spaced(items: list, count: int) -> list:
    """``count`` items spread over the (sorted) list, so every class of a folder-per-class set is in."""
    if count <= 0 or count >= len(items):
        return list(items)
    return [items[(i * len(items)) // count] for i in range(count)]


def speech_commands_files(data_dir: str | os.PathLike | None, count: int) -> list[tuple[str, str]]:
    """``(path, label)`` of ``count`` clips of the shared Speech Commands v0.02 test part (12 classes:
    the folder name), spread evenly over the classes; ``count <= 0``: all."""
    root = Path(data_dir or shared_data_dir()) / SPEECH_COMMANDS_TEST
    files = sorted(root.glob("*/*.wav"))
    if not files:
        raise SystemExit(f"{root}: no clips (set --data-dir or SPEECH_DATA_DIR to a copy of shared/data)")
    return [(str(f), f.parent.name) for f in evenly_spaced(files, count)]


def fsdd_files(data_dir: str | os.PathLike | None, count: int) -> list[tuple[str, str]]:
    """``(path, digit)`` of ``count`` FSDD recordings (8 kHz, 0.2-2 s), spread evenly."""
    root = Path(data_dir or shared_data_dir()) / "fsdd" / "recordings"
    files = sorted(root.glob("*.wav"))
    if not files:
        raise SystemExit(f"{root}: no recordings (set --data-dir or SPEECH_DATA_DIR to a copy of shared/data)")
    return [(str(f), f.name.split("_")[0]) for f in evenly_spaced(files, count)]


def to_12_classes(text: str) -> str:
    """A recognizer's answer on the 12-class task: a command, ``_silence_`` (no answer) or ``_unknown_``."""
    text = (text or "").strip().lower()
    if text in COMMANDS:
        return text
    if text in ("", SILENCE, "<sil>"):
        return SILENCE
    return UNKNOWN


def _fit(wave, samples: int):
    """Centre ``wave`` (numpy) in ``samples`` (zero padding), or take its centre."""
    import numpy as np

    n = len(wave)
    if n >= samples:
        start = (n - samples) // 2
        return wave[start : start + samples]
    left = (samples - n) // 2
    return np.pad(wave, (left, samples - n - left))


def _command_line(prog: str, args: argparse.Namespace, skip: tuple[str, ...] = ()) -> str:
    """The command that reproduces a run: ``prog`` (or ``speech bench NAME`` when run through the
    dispatcher) and every option with its value."""
    if isinstance(getattr(args, "benchmark", None), str):
        prog = f"speech bench {args.benchmark}"
    options = {k: v for k, v in vars(args).items() if k not in skip and k != "benchmark" and not k.startswith("_")
               and isinstance(v, (str, int, float)) and v is not None}
    return prog + "".join(f" --{k.replace('_', '-')}" if v is True else f" --{k.replace('_', '-')} {shlex.quote(str(v))}"
                          for k, v in options.items() if v is not False)


# ====================================================================================================
# features: FrontEnd (batched) vs librosa (one clip at a time)
# ====================================================================================================
def benchmark_features(
    clips: int = 512,
    batch_size: int = 64,
    reference_clips: int = 128,
    repeats: int = 7,
    threads: int = 1,
    kind: str = "mfcc",
    data_dir: str | None = None,
) -> dict:
    """Our front end (``FrontEnd``, ``torch.inference_mode``, batches of ``batch_size`` 1 s clips) against
    ``librosa`` one clip at a time with the same parameters (Hann window 25 ms in a 512-point FFT, hop
    10 ms, 40 slaney mel bands from 20 Hz, power dB without ``top_db``, 13 orthonormal DCT-II
    coefficients for MFCC), in the same run. Also timed: ours one clip at a time, ours with the conv STFT
    (the export path), and librosa with numpy's BLAS at one thread per core (its default)."""
    import librosa
    import numpy as np
    import torch

    from speech.audio import load_audio
    from speech.features import FeatureConfig, FrontEnd

    set_threads(threads)
    info = machine_info()
    cfg = FeatureConfig(kind=kind, normalize="none")
    sr, seconds = cfg.sample_rate, 1.0
    files = speech_commands_files(data_dir, max(clips, reference_clips))
    waves = [_fit(load_audio(p, sr).numpy(), int(sr * seconds)) for p, _ in files]
    X = torch.from_numpy(np.stack(waves[:clips]))
    lengths = torch.full((len(X),), X.shape[1])
    picked = evenly_spaced(list(range(len(waves))), reference_clips)  # spread over the classes too
    ref_waves = [waves[i] for i in picked]
    front_end = FrontEnd(cfg).eval()

    mel_args = dict(sr=sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, window="hann",
                    center=True, pad_mode="constant", power=2.0, n_mels=cfg.n_mels, fmin=cfg.f_min,
                    fmax=cfg.f_max or sr / 2, htk=False, norm="slaney")

    def librosa_features(y):
        # what librosa.feature.mfcc(y=...) runs inside, with top_db=None as our front end (no clipping)
        db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, **mel_args), ref=1.0, amin=1e-10, top_db=None)
        return librosa.feature.mfcc(S=db, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho") if kind == "mfcc" else db

    def ours(conv: bool = False, batch: int = batch_size, data: torch.Tensor = X):
        front_end.use_conv_stft = conv
        with torch.inference_mode():
            for s in range(0, len(data), batch):
                front_end(data[s : s + batch], lengths[s : s + batch])
        front_end.use_conv_stft = False

    def librosa_loop(n: int = len(ref_waves)):
        for y in ref_waves[:n]:
            librosa_features(y)

    X_ref = torch.from_numpy(np.stack(ref_waves))
    default_blas = os.cpu_count() or 1
    blas_clips = max(1, len(ref_waves) // 4)

    def librosa_default_blas():
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return librosa_loop(blas_clips)
        with threadpool_limits(default_blas):
            librosa_loop(blas_clips)

    # (name, how, clips per run, task)
    methods = [
        ("ours", f"FrontEnd {kind}, batches of {batch_size}, torch.stft", len(X), lambda: ours()),
        ("ours, one clip at a time", f"FrontEnd {kind}, batch 1", len(X_ref), lambda: ours(batch=1, data=X_ref)),
        ("ours, conv STFT (export path)", f"FrontEnd {kind}, use_conv_stft, batches of {batch_size}", len(X),
         lambda: ours(conv=True)),
        ("librosa (reference)", f"librosa {librosa.__version__}, one clip at a time, BLAS {threads} thread{'s' if threads > 1 else ''}",
         len(ref_waves), librosa_loop),
    ]
    if hasattr(front_end, "chunk_frames"):  # speech/features.py runs CPU batches in cache-sized groups
        whole = FrontEnd(cfg).eval()
        whole.chunk_frames = 1 << 40

        def ours_whole_batch():
            with torch.inference_mode():
                for s in range(0, len(X), batch_size):
                    whole(X[s : s + batch_size], lengths[s : s + batch_size])

        methods.insert(1, ("ours, whole batch at once (before the fix)",
                           f"FrontEnd {kind}, batches of {batch_size}, chunk_frames off", len(X), ours_whole_batch))
    if default_blas > threads:
        methods.append((f"librosa, BLAS {default_blas} threads (its default)", "one clip at a time",
                        blas_clips, librosa_default_blas))
    for _, _, _, task in methods:  # warm-up: first calls allocate, build filter banks, load FFT plans
        task()

    # parity: our features against librosa's on a few clips (same parameters, so they must agree)
    with torch.inference_mode():
        feats, _ = front_end(X_ref[:4], lengths[:4])
    parity = max(float(np.abs(feats[i].numpy() - librosa_features(ref_waves[i]).T).max()) for i in range(min(4, len(X_ref))))

    faults: dict[str, list[int]] = {name: [] for name, _, _, _ in methods}

    def counting(name: str, task: Callable[[], object]) -> Callable[[], object]:
        def run():  # minor page faults: fresh memory pages the allocator had to map for the run
            before = _minor_faults()
            task()
            faults[name].append(_minor_faults() - before)
        return run

    times = interleaved({name: counting(name, task) for name, _, _, task in methods}, repeats)
    counts = {name: n for name, _, n, _ in methods}
    per_clip = {name: [t / counts[name] for t in ts] for name, ts in times.items()}
    reference = "librosa (reference)"
    rows = []
    for name, how, n, _ in methods:
        cps = 1.0 / median(per_clip[name])
        rows.append({"name": name, "how": how, "clips_per_run": n, "clips_per_second": cps,
                     "times_real_time": cps * seconds, "ms_per_clip": 1000 * median(per_clip[name]),
                     "page_faults_per_clip": median(f / n for f in faults[name]),
                     "ratio_vs_librosa": paired_ratio(per_clip[reference], per_clip[name])})
    ratio = rows[0]["ratio_vs_librosa"]
    ratio_of_medians = rows[0]["clips_per_second"] / next(r["clips_per_second"] for r in rows if r["name"] == reference)
    return {
        "benchmark": "features", "machine": info, "load_after": load_now(),
        "params": {"clips": len(X), "reference_clips": len(ref_waves), "batch_size": batch_size, "repeats": repeats,
                   "threads": threads, "kind": kind, "clip_seconds": seconds, "sample_rate": sr,
                   "data": f"{SPEECH_COMMANDS_TEST} (1 s clips, 16 kHz)"},
        "rows": rows, "ratio": ratio, "ratio_of_medians": ratio_of_medians, "target_ratio": 20.0,
        "parity_max_abs_diff": parity,
        "seconds_per_run": {k: median(v) for k, v in times.items()},
    }


def _minor_faults() -> int:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except ImportError:  # pragma: no cover - not Unix
        return 0


def format_features(result: dict) -> str:
    p = result["params"]
    rows = [[r["name"], r["how"], r["clips_per_run"], r["clips_per_second"], r["times_real_time"], r["ms_per_clip"],
             r.get("page_faults_per_clip"), f"{r['ratio_vs_librosa']:.2f}x"] for r in result["rows"]]
    table = markdown_table(["front end", "how", "clips per run", "clips/s", "x real time", "ms/clip",
                            "page faults/clip", "vs librosa (median of paired ratios)"], rows)
    verdict = "met" if result["ratio"] >= result["target_ratio"] else "NOT met"
    return "\n".join([
        f"### features: {p['kind']} of 1 s clips, ours vs librosa",
        "",
        f"Machine: {machine_line(result['machine'], result.get('load_after'))}.",
        f"Data: {p['clips']} clips of {p['data']}; {p['repeats']} interleaved repeats, medians.",
        "",
        table,
        "",
        f"Ours / librosa: **{result['ratio']:.2f}x** (median of the per-repeat ratios; ratio of the medians "
        f"{result['ratio_of_medians']:.2f}x; target >= {result['target_ratio']:.0f}x: {verdict}). "
        f"Largest difference between our features and librosa's: {result['parity_max_abs_diff']:.2g}.",
    ])


def add_features_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Our batched front end (FrontEnd) against librosa, one clip at a time, same run."
    parser.add_argument("--clips", type=int, default=512, help="1 s clips for our front end (default: 512)")
    parser.add_argument("--reference-clips", type=int, default=128, help="clips for librosa per repeat (default: 128)")
    parser.add_argument("--batch-size", type=int, default=64, help="clips per front end batch (default: 64)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats (default: 7)")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default: 1)")
    parser.add_argument("--kind", choices=("mfcc", "log_mel"), default="mfcc", help="features (default: mfcc)")
    parser.add_argument("--data-dir", help="shared data folder (default: $SPEECH_DATA_DIR or ../shared/data)")
    parser.add_argument("--json", metavar="FILE", help="also write the result dict as JSON")


def run_features(args: argparse.Namespace) -> int:
    result = benchmark_features(args.clips, args.batch_size, args.reference_clips, args.repeats, args.threads,
                                args.kind, args.data_dir)
    result["command"] = _command_line("python tools/bench_features.py", args, skip=("json",))
    return _report(result, format_features, args.json)


def _report(result: dict, formatter: Callable[[dict], str], json_path: str | None) -> int:
    print(formatter(result))
    if result.get("command"):
        print(f"\nCommand: `{result['command']}`")
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2, default=str))
    return 0


# ====================================================================================================
# train: speech.train's data path vs a plain per-item DataLoader, same model and optimizer
# ====================================================================================================
def _augment_config(name: str, data_dir: str | None):
    """``default`` (AugmentConfig()) or ``strong`` (conf/augment/strong.yaml, noise from the shared data)."""
    import dataclasses

    from speech.augment import AugmentConfig

    if name == "default":
        return AugmentConfig()
    if name != "strong":
        raise ValueError(f"augment must be default or strong, got {name!r}")
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf" / "augment" / "strong.yaml"), resolve=False)
    fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    values = {k: v for k, v in raw.items() if k in fields and k != "noise_dir"}
    if "speeds" in values:
        values["speeds"] = tuple(values["speeds"])
    values["noise_dir"] = str(Path(data_dir or shared_data_dir()) / "background_noise")
    return AugmentConfig(**values)


def _train_worker(p: dict) -> dict:
    """One timed training run in this process: ``which`` = ``ours`` or ``reference``."""
    import numpy as np
    import torch

    set_threads(p["threads"])
    from speech.augment import SpecAugment, WaveformAugment, load_noise_bank, seed_everything
    from speech.config import TrainConfig
    from speech.data.dataset import AudioDataset
    from speech.data.manifest import read_manifest
    from speech.models import ModelConfig, SpeechModel
    from speech.train import FeaturesToOutput, autocast_dtype, make_loader, make_scheduler, optimizer_step

    rows = read_manifest(p["manifest"])
    labels = sorted({r.label for r in rows})
    index = {l: i for i, l in enumerate(labels)}
    cfg = TrainConfig()
    cfg.model = ModelConfig(**p.get("model", {}))
    cfg.data.batch_size, cfg.data.num_workers, cfg.data.clip_seconds = p["batch_size"], p["workers"], p["clip_seconds"]
    cfg.augment = _augment_config(p["augment"], p.get("data_dir"))
    sr = cfg.features.sample_rate
    seed_everything(cfg.trainer.seed)
    device = torch.device(p["device"])
    model = SpeechModel(cfg.model, cfg.features, labels).to(device)
    net = FeaturesToOutput(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                  weight_decay=cfg.optim.weight_decay)
    steps_per_epoch = -(-len(rows) // cfg.data.batch_size)
    scheduler = make_scheduler(cfg, optimizer, steps_per_epoch * (p["epochs"] + 1))
    # the reference trains as speech.train does by default (trainer.precision=auto); ours with --precision
    amp_dtype = autocast_dtype(p.get("precision", "auto") if p["which"] == "ours" else "auto", device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16 and device.type == "cuda")
    cache_build_s = 0.0

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if p["which"] == "ours":
        start = time.perf_counter()
        dataset = AudioDataset(rows, sr, lambda u: index[u.label], p["clip_seconds"], None)
        cache_build_s = time.perf_counter() - start
        loader, sampler = make_loader(dataset, cfg, True)
        noise = load_noise_bank(cfg.augment.noise_dir, sr)
        augment = WaveformAugment(cfg.augment, sr, noise).to(device)
        spec_augment = SpecAugment(cfg.augment)

        def batches(epoch: int):  # speech.train's loop, up to the features
            sampler.set_epoch(epoch)
            for batch in loader:
                wave, lengths = batch["waveform"].to(device, non_blocking=True), batch["lengths"].to(device)
                with torch.no_grad():
                    wave, lengths = augment(wave, lengths)
                    feats, n_frames = model.front_end(wave, lengths)
                    feats = spec_augment(feats)
                yield feats, n_frames, batch["targets"]
    else:
        dataset = _ReferenceDataset(rows, index, sr, p["clip_seconds"], cfg.features, p["reference_features"])
        generator = torch.Generator().manual_seed(cfg.trainer.seed)
        loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.data.batch_size, shuffle=True,
                                             num_workers=p["workers"], collate_fn=_pad_features, generator=generator)
        mean, std = model.front_end.mean, model.front_end.std

        def batches(epoch: int):
            for feats, n_frames, targets in loader:
                feats, n_frames = feats.to(device), n_frames.to(device)
                yield (feats - mean) / std, n_frames, targets

    def step(feats, n_frames, targets):  # speech.train's loop, from the features on
        return float(optimizer_step(net, model, feats, n_frames, {"targets": targets}, cfg, device, optimizer,
                                    scaler, scheduler, amp_dtype))

    net.train()
    step(*next(iter(batches(10_000))))  # warm-up step (allocations), not timed
    sync()
    data_s = model_s = 0.0
    utts = steps = 0
    losses = []
    wall_start = time.perf_counter()
    for epoch in range(p["epochs"]):
        it = iter(batches(epoch))
        while True:
            t0 = time.perf_counter()
            try:
                feats, n_frames, targets = next(it)
            except StopIteration:
                break
            sync()
            t1 = time.perf_counter()
            losses.append(step(feats, n_frames, targets))
            sync()
            t2 = time.perf_counter()
            data_s += t1 - t0
            model_s += t2 - t1
            utts += len(targets)
            steps += 1
    wall = time.perf_counter() - wall_start
    return {"which": p["which"], "device": str(device), "utterances": utts, "steps": steps, "epochs": p["epochs"],
            "loop_s": wall, "epoch_s": wall / p["epochs"], "utterances_per_second": utts / wall,
            "data_s": data_s, "model_s": model_s, "cache_build_s": cache_build_s,
            "mean_loss": float(np.mean(losses)) if losses else None}


class _ReferenceDataset:
    """The plain way: each item decodes its file (``librosa.load``, resampling with soxr) and computes
    its own log-mel (torchaudio's ``MelSpectrogram`` or librosa's), every epoch."""

    def __init__(self, rows, index, sample_rate, clip_seconds, features, backend: str):
        import torch
        import torchaudio

        self.rows, self.index, self.sample_rate, self.backend = rows, index, sample_rate, backend
        self.clip_samples = int(round(clip_seconds * sample_rate)) if clip_seconds else None
        self.features = features
        if backend == "torchaudio":
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate, n_fft=features.n_fft, win_length=features.win_length, hop_length=features.hop_length,
                f_min=features.f_min, f_max=features.f_max, n_mels=features.n_mels, window_fn=torch.hann_window,
                power=2.0, center=True, pad_mode="constant", norm="slaney", mel_scale="slaney")
        elif backend != "librosa":
            raise ValueError(f"reference features must be torchaudio or librosa, got {backend!r}")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        import librosa
        import numpy as np
        import torch

        f = self.features
        y, _ = librosa.load(self.rows[i].audio_filepath, sr=self.sample_rate)
        if self.clip_samples:
            y = _fit(y, self.clip_samples)
        if self.backend == "torchaudio":
            mel = self.mel(torch.from_numpy(np.ascontiguousarray(y)))
        else:
            mel = torch.from_numpy(librosa.feature.melspectrogram(
                y=y, sr=self.sample_rate, n_fft=f.n_fft, hop_length=f.hop_length, win_length=f.win_length,
                center=True, pad_mode="constant", n_mels=f.n_mels, fmin=f.f_min, fmax=f.f_max or self.sample_rate / 2))
        feats = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        return feats.T.contiguous(), self.index[self.rows[i].label]


def _pad_features(batch):
    import torch

    n_frames = torch.tensor([len(x) for x, _ in batch])
    feats = torch.zeros(len(batch), int(n_frames.max()), batch[0][0].shape[1])
    for i, (x, _) in enumerate(batch):
        feats[i, : len(x)] = x
    return feats, n_frames, torch.tensor([t for _, t in batch])


# --- memory check: a Speech Commands-size DecodedAudioCache --------------------------------------------
def simulated_utterances(count: int):
    """``count`` rows standing for a Speech Commands-size training set (1 s, 12 labels); their files do not
    exist: the samples come from a cache written by :func:`write_simulated_cache`."""
    from speech.data.manifest import Utterance

    return [Utterance(f"simulated-speech-commands/clip{i:06d}.wav", 1.0, LABELS_12[i % len(LABELS_12)])
            for i in range(count)]


def _cache_key(utterances, sample_rate: int) -> str:
    # DecodedAudioCache's file key (speech/data/dataset.py: the clip list and rate, and each file's size and
    # mtime, (-1, -1) for the simulated clips' absent files); check_cache_layout() proves it still matches
    from speech.data import dataset

    stat = getattr(dataset, "_stat", None)
    rows = [(u.audio_filepath, u.offset, u.duration, *(stat(u.audio_filepath) if stat else ())) for u in utterances]
    return hashlib.sha1(json.dumps([sample_rate] + rows).encode()).hexdigest()[:16]


def write_simulated_cache(cache_dir: str | os.PathLike, clips: list, count: int, sample_rate: int = 16000) -> Path:
    """Write a DecodedAudioCache memmap for :func:`simulated_utterances` (``count``) by repeating ``clips``
    (int16 numpy arrays) end to end; returns the samples file."""
    import numpy as np

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _cache_key(simulated_utterances(count), sample_rate)
    lengths = np.array([len(clips[i % len(clips)]) for i in range(count)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    block = np.concatenate(clips)
    samples = cache_dir / f"audio_{key}.int16"
    with open(samples, "wb") as f:
        for _ in range(count // len(clips)):
            block.tofile(f)
        rest = count % len(clips)
        if rest:
            np.concatenate(clips[:rest]).tofile(f)
    (cache_dir / f"audio_{key}.json").write_text(json.dumps({"kept": list(range(count)), "offsets": offsets.tolist()}))
    return samples


def check_cache_layout(work_dir: str | os.PathLike) -> None:
    """Raise ``RuntimeError`` unless DecodedAudioCache opens a cache written by :func:`write_simulated_cache`
    (a guard against its file layout changing under this benchmark)."""
    import contextlib
    import io

    import numpy as np

    from speech.data.dataset import DecodedAudioCache

    probe = Path(work_dir) / "layout-probe"
    clips = [np.arange(n, dtype=np.int16) for n in (5, 7, 3)]
    write_simulated_cache(probe, clips, 3)
    with contextlib.redirect_stderr(io.StringIO()):
        cache = DecodedAudioCache(simulated_utterances(3), 16000, str(probe), verbose=False)
    if not (isinstance(cache.samples, np.memmap) and len(cache) == 3 and cache.length(1) == 7):
        raise RuntimeError("DecodedAudioCache no longer reads the cache layout speech/benchmarks.py writes "
                           "(file key or index format changed): update write_simulated_cache")


def _memory_worker(p: dict) -> dict:
    """Phase 1: one epoch of data loading (speech.train's loader, no model) over the memmap cache, with
    resident memory sampled; phase 2: hold ``float_clips`` float32 copies, for the per-clip cost."""
    import numpy as np
    import torch  # noqa: F401  (in the baseline: the loader needs it anyway)

    set_threads(1)
    from speech.config import TrainConfig
    from speech.data.dataset import AudioDataset
    from speech.train import make_loader

    base = memory_status()
    rows = simulated_utterances(p["clips"])
    index = {l: i for i, l in enumerate(LABELS_12)}
    dataset = AudioDataset(rows, 16000, lambda u: index[u.label], 1.0, p["cache_dir"])
    if not isinstance(dataset.cache.samples, np.memmap) or len(dataset) != p["clips"]:
        raise RuntimeError("the simulated cache was not opened as a memmap")
    cfg = TrainConfig()
    cfg.data.batch_size = p["batch_size"]
    loader, sampler = make_loader(dataset, cfg, True)
    opened = memory_status()
    peak: dict[str, float] = {}
    start = time.perf_counter()
    seen = 0
    for i, batch in enumerate(loader):
        seen += len(batch["lengths"])
        if i % 50 == 0:
            for k, v in memory_status().items():
                peak[k] = max(peak.get(k, 0.0), v)
    epoch_s = time.perf_counter() - start
    for k, v in memory_status().items():
        peak[k] = max(peak.get(k, 0.0), v)
    after_epoch = memory_status()
    del loader, sampler
    k = min(p["float_clips"], len(dataset))
    before_floats = memory_status()
    held = [dataset.cache[i] for i in range(k)]
    floats = memory_status()
    measured_mb = floats.get("RssAnon", floats["VmRSS"]) - before_floats.get("RssAnon", before_floats["VmRSS"])
    held_mb = sum(t.numel() * t.element_size() for t in held) / 2**20
    del held
    samples = dataset.cache.samples
    return {"clips": p["clips"], "clips_seen": seen, "epoch_s": epoch_s, "clips_per_second": seen / epoch_s,
            "cache_file_gb": samples.nbytes / 2**30, "baseline": base, "opened": opened, "peak": peak,
            "after_epoch": after_epoch, "vmhwm_after_epoch_mb": after_epoch.get("VmHWM"),
            "float_clips": k, "float_held_mb": held_mb, "float_measured_growth_mb": measured_mb,
            # float32 copies of every clip: 4 bytes a sample, on top of the process before the data set
            "float_copies_gb": samples.size * 4 / 2**30 + base.get("RssAnon", base.get("VmRSS", 0)) / 1024}


def _build_worker(p: dict) -> dict:
    """Build a DecodedAudioCache (decoding real files, memmap in ``cache_dir``) and sample its peak memory."""
    import torch  # noqa: F401  (imported before the baseline so it is not counted as the build's)

    set_threads(1)
    from speech.data.dataset import DecodedAudioCache
    from speech.data.manifest import read_manifest

    base = read_manifest(p["manifest"])
    rows = [base[i % len(base)] for i in range(p["clips"])]
    before = memory_status()
    start = time.perf_counter()
    with PeakSampler(0.01) as sampler:
        cache = DecodedAudioCache(rows, 16000, p["cache_dir"], verbose=False)
    build_s = time.perf_counter() - start
    int16_mb = cache.samples.nbytes / 2**20
    growth = sampler.peak.get("RssAnon", sampler.peak.get("VmRSS", 0)) - before.get("RssAnon", before.get("VmRSS", 0))
    return {"clips": len(cache), "build_s": build_s, "int16_mb": int16_mb, "peak_anon_growth_mb": growth,
            "peak_over_int16": growth / max(int16_mb, 1e-9)}


def benchmark_train(
    clips: int = 320,
    batch_size: int = 32,
    epochs: int = 1,
    repeats: int = 3,
    threads: int = 1,
    workers: int = 0,
    data: str = "speech_commands",
    augment: str = "default",
    reference_features: str = "torchaudio",
    model: dict | None = None,
    memory_clips: int = 105_000,
    float_clips: int = 10_000,
    build_clips: int = 4_000,
    gpu: bool = True,
    data_dir: str | None = None,
    work_dir: str | None = None,
    precision: str = "auto",
) -> dict:
    """Training throughput of speech.train's data path (DecodedAudioCache, BucketingBatchSampler, batched
    augmentation and features) against a plain per-item loop (decode + features per item in a standard
    DataLoader), with the same model (``ModelConfig()`` + log-mel 40 unless ``model`` overrides fields),
    optimizer and loss, each run in its own process (``repeats`` times, alternating). Then the memory
    check: a ``memory_clips`` x 1 s DecodedAudioCache memmap read through one epoch of loading."""
    import torch

    set_threads(threads)
    info = machine_info()
    files = speech_commands_files(data_dir, clips) if data == "speech_commands" else fsdd_files(data_dir, clips)
    clip_seconds = 1.0 if data == "speech_commands" else None
    own_tmp = tempfile.TemporaryDirectory(prefix="speech-bench-train-", dir=work_dir)
    tmp = Path(own_tmp.name)
    try:
        import soundfile as sf

        from speech.data.manifest import Utterance, write_manifest

        manifest = tmp / "train.jsonl"
        write_manifest(manifest, [Utterance(p, sf.info(p).duration, label) for p, label in files])
        devices = ["cpu"] + (["cuda"] if gpu and torch.cuda.is_available() else [])
        runs: dict[str, dict[str, list[dict]]] = {}
        for device in devices:
            runs[device] = {"reference": [], "ours": []}
            for r in range(repeats):
                for which in (("reference", "ours") if r % 2 == 0 else ("ours", "reference")):
                    params = {"which": which, "manifest": str(manifest), "batch_size": batch_size, "epochs": epochs,
                              "threads": threads, "workers": workers, "device": device, "clip_seconds": clip_seconds,
                              "augment": augment, "reference_features": reference_features, "model": model or {},
                              "data_dir": data_dir, "precision": precision}
                    runs[device][which].append(run_worker("train-worker", params, threads))
        summary = {device: _summarize_train(r) for device, r in runs.items()}
        memory = None
        if memory_clips > 0:
            memory = memory_check(memory_clips, float_clips, build_clips, [p for p, _ in files], manifest,
                                  batch_size, tmp)
    finally:
        own_tmp.cleanup()
    return {
        "benchmark": "train", "machine": info, "load_after": load_now(),
        "params": {"clips": len(files), "batch_size": batch_size, "epochs": epochs, "repeats": repeats,
                   "threads": threads, "workers": workers, "augment": augment, "reference_features": reference_features,
                   "precision": precision,
                   "data": f"{SPEECH_COMMANDS_TEST} (1 s, 16 kHz)" if data == "speech_commands"
                   else "fsdd (8 kHz, resampled to 16 kHz, 0.2-2 s)",
                   "model": model or "ModelConfig() defaults", "features": "log-mel 40 (FeatureConfig() defaults)"},
        "summary": summary, "gpu": "cuda" in summary, "runs": runs, "memory": memory,
        "ratio": summary["cpu"]["ratio"], "target_ratio": 5.0,
    }


def _summarize_train(runs: dict[str, list[dict]]) -> dict:
    out: dict = {}
    for which, rs in runs.items():
        utts = rs[0]["utterances"]
        out[which] = {
            "utterances_per_second": median(r["utterances_per_second"] for r in rs),
            "epoch_s": median(r["epoch_s"] for r in rs),
            "data_ms_per_clip": 1000 * median(r["data_s"] / r["utterances"] for r in rs),
            "model_ms_per_clip": 1000 * median(r["model_s"] / r["utterances"] for r in rs),
            "data_fraction": median(r["data_s"] / (r["data_s"] + r["model_s"]) for r in rs),
            "cache_build_s": median(r["cache_build_s"] for r in rs),
            "peak_rss_mb": max(r["vmhwm_mb"] or 0 for r in rs),
            "utterances_per_epoch": utts,
        }
        out[which]["speech_commands_epoch_min"] = SPEECH_COMMANDS_V2_TRAIN_CLIPS / out[which]["utterances_per_second"] / 60
    ref, ours = runs["reference"], runs["ours"]
    out["ratio"] = paired_ratio([r["loop_s"] / r["utterances"] for r in ref], [r["loop_s"] / r["utterances"] for r in ours])
    out["data_ratio"] = paired_ratio([r["data_s"] / r["utterances"] for r in ref], [r["data_s"] / r["utterances"] for r in ours])
    return out


def memory_check(clips: int, float_clips: int, build_clips: int, sources: list[str], manifest: Path,
                 batch_size: int, work_dir: Path) -> dict:
    """Write a ``clips`` x 1 s simulated cache (the ``sources`` repeated), read it in a worker; optionally
    build a real ``build_clips`` cache in another worker to see the build's peak."""
    import numpy as np

    from speech.audio import load_audio

    check_cache_layout(work_dir)
    unique = [(_fit(load_audio(p, 16000).numpy(), 16000).clip(-1, 1) * 32767).round().astype(np.int16) for p in sources]
    cache_dir = work_dir / "simulated-cache"
    start = time.perf_counter()
    samples = write_simulated_cache(cache_dir, unique, clips)
    write_s = time.perf_counter() - start
    try:
        result = run_worker("memory-worker", {"clips": clips, "cache_dir": str(cache_dir), "batch_size": batch_size,
                                              "float_clips": float_clips}, 1)
    finally:
        for f in cache_dir.iterdir():
            f.unlink()
    result["write_s"] = write_s
    result["file"] = str(samples)
    if build_clips > 0:
        result["build"] = run_worker("build-worker", {"clips": build_clips, "manifest": str(manifest),
                                                      "cache_dir": str(work_dir / "build-cache")}, 1)
    return result


def format_train(result: dict) -> str:
    p = result["params"]
    out = [f"### train: utterances per second, speech.train's data path vs a plain per-item loop", "",
           f"Machine: {machine_line(result['machine'], result.get('load_after'))}.",
           f"Data: {p['clips']} clips of {p['data']}; batch {p['batch_size']}, {p['epochs']} epoch(s) per run after one "
           f"warm-up step; model {p['model']}, {p['features']}; AdamW; DataLoader workers {p['workers']}; augment "
           f"'{p['augment']}' (ours only); each run in its own process, {p['repeats']} alternating repeats, medians.", ""]
    for device, s in result["summary"].items():
        rows = []
        for which, name in (("reference", f"reference: librosa.load + {p['reference_features']} log-mel per item"),
                            ("ours", "ours: DecodedAudioCache + BucketingBatchSampler + batched augment/features"
                             + (f", precision {p['precision']}" if str(p.get("precision", "auto")) != "auto" else ""))):
            r = s[which]
            rows.append([name, r["utterances_per_second"], r["epoch_s"],
                         r["speech_commands_epoch_min"] if p["data"].startswith(SPEECH_COMMANDS_TEST) else None,
                         r["data_ms_per_clip"], r["model_ms_per_clip"], f"{100 * r['data_fraction']:.0f} %",
                         r["cache_build_s"] if which == "ours" else None, r["peak_rss_mb"]])
        out += [f"Device: {device}", "",
                markdown_table(["loop", "utt/s", f"epoch s ({s['ours']['utterances_per_epoch']} clips)",
                                "epoch min (SC v2 train, 84,843 clips, extrapolated)", "data ms/clip", "model ms/clip",
                                "data share of a step", "decode once s", "peak RSS MB"], rows), "",
                f"Ours / reference, whole loop: **{s['ratio']:.2f}x** (target >= {result['target_ratio']:.0f}x: "
                f"{'met' if s['ratio'] >= result['target_ratio'] else 'NOT met'}); data path alone: "
                f"**{s['data_ratio']:.1f}x**. The model (forward, backward, optimizer) is "
                f"{100 * (1 - s['reference']['data_fraction']):.0f} % of a reference step and "
                f"{100 * (1 - s['ours']['data_fraction']):.0f} % of ours: with the model's cost per clip unchanged, "
                f"even a free data path would give at most {1 / (1 - s['reference']['data_fraction']):.2f}x on this "
                f"device." + _model_cost_note(s, p.get("precision", "auto"), device), ""]
    if not result["gpu"]:
        out += ["GPU: no GPU here (the same code runs with device cuda when torch.cuda.is_available()).", ""]
    m = result.get("memory")
    if m:
        peak = m["peak"]
        base = m["baseline"]
        memmap_mb = peak.get("RssFile", 0) - base.get("RssFile", 0)
        out += [f"Memory check: {m['clips']:,} x 1 s clips (Speech Commands v0.02 has 105,829) in a DecodedAudioCache "
                f"memmap ({m['cache_file_gb']:.2f} GiB of int16, written in {m['write_s']:.0f} s), read through "
                f"speech.train's loader (batch {result['params']['batch_size']}, shuffled) for one epoch, no model: "
                f"{m['epoch_s']:.1f} s, {m['clips_per_second']:,.0f} clips/s. Resident memory of that process:", "",
                markdown_table(["what", "MB"], [
                    ["before the data set (torch imported): total", base.get("VmRSS")],
                    ["  anonymous / file-backed (shared libraries)",
                     f"{base.get('RssAnon', 0):,.0f} / {base.get('RssFile', 0):,.0f}"],
                    ["peak during the epoch (VmHWM)", m.get("vmhwm_after_epoch_mb")],
                    ["  anonymous (its own memory)", peak.get("RssAnon")],
                    ["  memmap pages touched (page cache, reclaimable)", memmap_mb],
                    [f"float32 copies of all clips instead (4 bytes/sample; {m['float_clips']:,} copies held: "
                     f"{m['float_held_mb']:.0f} MB, RSS grew {m['float_measured_growth_mb']:.0f} MB)",
                     m["float_copies_gb"] * 1024],
                ]), ""]
        anon_gb = peak.get("RssAnon", 0) / 1024
        out.append(f"Through the memmap the process holds {anon_gb:.2f} GiB of its own (anonymous) memory at its peak "
                   f"(target: fits in 4 GB: {'met' if anon_gb < 4 else 'NOT met'}); the memmap pages it touched "
                   f"({memmap_mb / 1024:.2f} GiB) are page cache that the kernel drops when memory is short (peak RSS "
                   f"counting them: {m.get('vmhwm_after_epoch_mb', 0) / 1024:.2f} GiB). Float32 copies would need "
                   f"{m['float_copies_gb']:.1f} GiB.")
        b = m.get("build")
        if b:
            out += ["", f"Building the cache (decode once, {b['clips']:,} real clips): {b['build_s']:.1f} s, peak heap growth "
                    f"{b['peak_anon_growth_mb']:.0f} MB = {b['peak_over_int16']:.2f}x the {b['int16_mb']:.0f} MB of int16 "
                    f"samples; at {m['clips']:,} clips that is about "
                    f"{b['peak_over_int16'] * m['cache_file_gb']:.1f} GiB on top of the process."]
    return "\n".join(out)


def _model_cost_note(s: dict, precision: str = "auto", device: str = "cpu") -> str:
    ratio = s["reference"]["model_ms_per_clip"] / max(s["ours"]["model_ms_per_clip"], 1e-9)
    if 0.9 <= ratio <= 1.1:
        return ""
    reference = "16" if device.startswith("cuda") else "32"  # trainer.precision=auto
    if str(precision) not in ("auto", reference):
        why = f" (ours trains with precision {precision}, the reference with {reference})."
    elif ratio > 1:
        why = " (BucketingBatchSampler batches clips of similar length, so less padding runs through the GRU)."
    else:
        why = "."
    return f" Here the model step itself costs {ratio:.2f}x less per clip in ours" + why


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Training throughput: speech.train's data path against a plain per-item DataLoader loop, "
                          "same model and optimizer; and a Speech Commands-size memory check.")
    parser.add_argument("--clips", type=int, default=320, help="real clips in the training set (default: 320)")
    parser.add_argument("--batch-size", type=int, default=32, help="(default: 32, DataConfig's)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per run (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loop, alternating (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads per process (default: 1)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes, both loops (default: 0)")
    parser.add_argument("--data", choices=("speech_commands", "fsdd"), default="speech_commands",
                        help="speech_commands: 1 s 16 kHz clips of the v2 test part; fsdd: 8 kHz digits (resampled)")
    parser.add_argument("--augment", choices=("default", "strong"), default="default",
                        help="our loop's augmentation: AugmentConfig() or conf/augment/strong.yaml (default: default)")
    parser.add_argument("--reference-features", choices=("torchaudio", "librosa"), default="torchaudio",
                        help="per-item features of the reference loop (default: torchaudio)")
    parser.add_argument("--memory-clips", type=int, default=105_000,
                        help="clips of the simulated Speech Commands-size cache; 0 skips the memory check (default: 105000)")
    parser.add_argument("--float-clips", type=int, default=10_000,
                        help="float32 copies held to measure their cost per clip (default: 10000)")
    parser.add_argument("--build-clips", type=int, default=4_000,
                        help="real clips decoded into a new cache to measure the build's peak; 0 skips (default: 4000)")
    parser.add_argument("--no-gpu", action="store_true", help="CPU only even when CUDA is available")
    parser.add_argument("--precision", choices=("auto", "32", "16", "bf16"), default="auto",
                        help="our loop's trainer.precision (the reference keeps auto: fp16 on CUDA, float32 on CPU)")
    parser.add_argument("--data-dir", help="shared data folder (default: $SPEECH_DATA_DIR or ../shared/data)")
    parser.add_argument("--work-dir", help="where the temporary manifest and the simulated cache go (default: $TMPDIR)")
    parser.add_argument("--json", metavar="FILE", help="also write the result dict as JSON")


def run_train(args: argparse.Namespace) -> int:
    result = benchmark_train(args.clips, args.batch_size, args.epochs, args.repeats, args.threads, args.workers,
                             args.data, args.augment, args.reference_features, None, args.memory_clips,
                             args.float_clips, args.build_clips, not args.no_gpu, args.data_dir, args.work_dir,
                             args.precision)
    result["command"] = _command_line("python tools/bench_train.py", args, skip=("json", "work_dir"))
    return _report(result, format_train, args.json)


# ====================================================================================================
# transcribe: `speech transcribe` vs PocketSphinx, speed and 12-class accuracy
# ====================================================================================================
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


def _pocketsphinx_worker(p: dict) -> dict:
    """``pocketsphinx_decode`` of the files listed on stdin; writes ``{path: text}`` to ``p['out']``."""
    paths = [line.strip() for line in sys.stdin if line.strip()]
    start = time.perf_counter()
    out = pocketsphinx_decode(paths, p["grammar"], p["pad"])
    seconds = time.perf_counter() - start
    Path(p["out"]).write_text(json.dumps(out))
    return {"clips": len(out), "seconds": seconds}


def _transcribe_worker(p: dict) -> dict:
    """``speech.cli.main(argv)`` (the ``speech`` console script's entry point) in this process, timed: the
    process wall time minus this is the interpreter start and imports."""
    import speech.recognizer  # noqa: F401  (imports are start-up, not recognition: load them before timing)
    import speech.transcribe  # noqa: F401
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
) -> dict:
    """``speech transcribe`` (``speech.cli.main``, the console script's entry point, in a process of its own
    per run) against PocketSphinx (a process per run, decoding each clip with a JSGF grammar of the 35
    words) on the same 1 s clips: throughput steady (inside the process: model or decoder load, reading
    and recognizing every clip) and end to end (process start to exit), times real time, the process's
    peak RSS, and accuracy on the 12-class task. ``random_model``: a random-weight model of the default shape instead
    of ``model`` (timings hold, accuracy does not)."""
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
                "--batch-size", str(batch_size), "--device", "cpu"] + (["--jobs", str(jobs)] if jobs else [])
        outputs = {"ours": tmp / "ours.tsv", "sphinx": tmp / "sphinx.json"}
        commands = {
            "ours": [sys.executable, "-m", "speech.benchmarks", "transcribe-worker", json.dumps({"argv": argv})],
            "sphinx": [sys.executable, "-m", "speech.benchmarks", "pocketsphinx-worker",
                       json.dumps({"grammar": str(grammar), "pad": pad, "out": str(outputs["sphinx"])})],
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
                   "data": f"{SPEECH_COMMANDS_TEST} (12 classes, 1 s, 16 kHz)"},
        "rows": rows, "ratio_steady": ratio_steady, "ratio_end_to_end": ratio_e2e, "provisional": random_model,
    }


def format_transcribe(result: dict) -> str:
    p = result["params"]
    rows = [[r["name"], r["clips_per_second_steady"], r["times_real_time_steady"], r["clips_per_second_end_to_end"],
             r["startup_s"], r["peak_rss_mb"], f"{100 * r['accuracy']:.1f} % ({r['correct']}/{r['count']})"]
            for r in result["rows"].values()]
    out = [f"### transcribe: speech transcribe vs PocketSphinx on {p['clips']} clips", "",
           f"Machine: {machine_line(result['machine'], result.get('load_after'))}.",
           f"Data: {p['clips']} clips ({p['audio_s']:.0f} s of audio) of {p['data']}, spread over the classes. "
           f"Each tool runs as its own process: {p['repeats']} alternating repeats, medians. torch/BLAS threads "
           f"{p['threads']}; speech transcribe --batch-size {p['batch_size']}"
           f"{' --jobs ' + str(p['jobs']) if p['jobs'] else ' (default --jobs)'}; PocketSphinx with "
           f"{p['pad_s']:g} s of zeros on both sides of each clip.", "",
           markdown_table(["recognizer", "clips/s (steady)", "x real time (steady)", "clips/s (end to end)",
                           "interpreter start + imports s", "peak RSS MB", "accuracy, 12 classes"], rows), "",
           f"Ours / PocketSphinx: **{result['ratio_steady']:.1f}x** steady (inside the process: model load, reading and "
           f"recognizing every clip), **{result['ratio_end_to_end']:.1f}x** end to end (process start to exit)."]
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
    parser.add_argument("--pad", type=float, default=0.5, help="seconds of zeros around each clip for PocketSphinx (default: 0.5)")
    parser.add_argument("--data-dir", help="shared data folder (default: $SPEECH_DATA_DIR or ../shared/data)")
    parser.add_argument("--work-dir", help="where temporary files go (default: $TMPDIR)")
    parser.add_argument("--json", metavar="FILE", help="also write the result dict as JSON")


def run_transcribe(args: argparse.Namespace) -> int:
    result = benchmark_transcribe(args.model, args.clips, args.repeats, args.threads, args.batch_size, args.jobs,
                                  args.pad, args.data_dir, args.work_dir, args.random_model, args.manifest)
    result["command"] = _command_line("python tools/bench_transcribe.py", args, skip=("json", "work_dir"))
    return _report(result, format_transcribe, args.json)


# ====================================================================================================
# workers: python -m speech.benchmarks WORKER '<json>'
# ====================================================================================================
WORKERS = {"train-worker": "_train_worker", "memory-worker": "_memory_worker", "build-worker": "_build_worker",
           "pocketsphinx-worker": "_pocketsphinx_worker", "transcribe-worker": "_transcribe_worker"}


def _worker_main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in WORKERS:
        print(f"usage: python -m speech.benchmarks {{{','.join(WORKERS)}}} '<json parameters>' "
              "(internal; run tools/bench_*.py)", file=sys.stderr)
        return 2
    result = globals()[WORKERS[argv[0]]](json.loads(argv[1]))
    result["vmhwm_mb"] = memory_status().get("VmHWM")  # this process's peak resident memory
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
