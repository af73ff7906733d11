"""What every benchmark measures with: the machine, thread pools, interleaved timing and paired ratios,
resident memory, subprocesses (``run_measured``; ``run_worker`` for the workers of
:mod:`speech.bench.worker`), markdown tables, and the shared data files the benchmarks draw clips from.

The machine may be shared, so no number stands alone: each timing is a ratio against a reference
measured in the same run. Reference and ours alternate (their order rotates), every measurement is
repeated, and the tables give medians; the headline ratio is the median of the per-repeat ratios.
Every result carries the machine (CPU model, cores, torch threads, load average before and after).
Only the standard library is imported here at module level, so ``speech bench --help`` stays fast.
"""
from __future__ import annotations

import argparse
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

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEECH_COMMANDS_TEST = "speech_commands_v2_test_dev"
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
LABELS_12 = list(COMMANDS) + [UNKNOWN, SILENCE]
RESULT_PREFIX = "BENCHMARK-RESULT "
WORKER_MODULE = "speech.bench.worker"


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


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``/proc/PID/task/*/children``); processes that exit meanwhile are left out."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return out


def _status_kb(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in keys:
                found[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return found


def _private_kb(pid: int) -> int:
    """The memory only ``pid`` maps (``Private_Clean`` + ``Private_Dirty`` of ``/proc/PID/smaps_rollup``), kB."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    except (OSError, ValueError):
        pass
    return total


class TreePeak:
    """Samples the memory of a process and its descendants (a pool of forked workers) every ``interval``
    seconds in a thread: ``peaks`` (pid -> its largest ``VmHWM`` seen, MB) and ``tree_mb``, the largest
    total at one moment of the process's RSS and its descendants' private memory (what only they map): a
    page a forked worker still shares with its parent is counted once, a page it copied once more. (Not
    PSS: on a shared machine that also divides the pages of libraries other programs map.) ``samples``: in how
    many samples each pid was seen, so that :meth:`lasting` can leave out a helper that came and went between
    two samples (``ldconfig`` run by an import, say). Linux only; elsewhere it records nothing."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval = pid, interval
        self.peaks: dict[int, float] = {}
        self.samples: dict[int, int] = {}
        self.tree_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        total = 0
        for p in process_tree(self.pid):
            status = _status_kb(p, ("VmHWM", "VmRSS"))
            if "VmHWM" in status:
                self.peaks[p] = max(self.peaks.get(p, 0.0), status["VmHWM"] / 1024)
                self.samples[p] = self.samples.get(p, 0) + 1
                total += status.get("VmRSS", 0) if p == self.pid else _private_kb(p)
        self.tree_mb = max(self.tree_mb, total / 1024)

    def lasting(self, min_samples: int = 2) -> dict[int, float]:
        """``peaks`` of the descendants (not the process itself) seen in at least ``min_samples`` samples:
        the workers of a pool, which live for the whole run, without the short-lived helpers."""
        return {p: mb for p, mb in self.peaks.items() if p != self.pid and self.samples.get(p, 0) >= min_samples}

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> "TreePeak":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


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


def worker_command(name: str, params: dict) -> list[str]:
    """``python -m speech.bench.worker NAME '<json>'``: the command of a worker process (:mod:`speech.bench.worker`)."""
    return [sys.executable, "-m", WORKER_MODULE, name, json.dumps(params)]


def run_worker(name: str, params: dict, threads: int) -> dict:
    """Run ``python -m speech.bench.worker NAME PARAMS`` and return the dict it printed (with ``vmhwm_mb``, its
    peak RSS, and ``wall_s``); raises ``RuntimeError`` with its stderr when it fails."""
    proc = run_measured(worker_command(name, params), env=thread_env(threads))
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


def fit_clip(wave, samples: int):
    """Centre ``wave`` (numpy) in ``samples`` (zero padding), or take its centre."""
    import numpy as np

    n = len(wave)
    if n >= samples:
        start = (n - samples) // 2
        return wave[start : start + samples]
    left = (samples - n) // 2
    return np.pad(wave, (left, samples - n - left))


def command_line(prog: str, args: argparse.Namespace, skip: tuple[str, ...] = ()) -> str:
    """The command that reproduces a run: ``prog`` (or ``speech bench NAME`` when run through the
    dispatcher) and every option with its value."""
    if isinstance(getattr(args, "benchmark", None), str):
        prog = f"speech bench {args.benchmark}"
    options = {k: v for k, v in vars(args).items() if k not in skip and k != "benchmark" and not k.startswith("_")
               and isinstance(v, (str, int, float)) and v is not None}
    return prog + "".join(f" --{k.replace('_', '-')}" if v is True else f" --{k.replace('_', '-')} {shlex.quote(str(v))}"
                          for k, v in options.items() if v is not False)


def print_report(result: dict, formatter: Callable[[dict], str], json_path: str | None) -> int:
    print(formatter(result))
    if result.get("command"):
        print(f"\nCommand: `{result['command']}`")
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2, default=str))
    return 0

