"""Work that needs a process of its own (training loops and memory checks, whose peak resident memory must
not mix; the CLI under test; PocketSphinx): ``python -m speech.bench.worker WORKER '<json parameters>'``.
The worker's result dict, with the process's peak resident memory (``vmhwm_mb``), is printed on one line
after ``RESULT_PREFIX``; :func:`speech.bench.measure.run_worker` reads it back.
"""
from __future__ import annotations

import importlib
import json
import sys

from speech.bench.measure import RESULT_PREFIX, WORKER_MODULE, memory_status

# worker -> (module, function taking the parameters dict and returning the result dict)
WORKERS = {
    "train-worker": ("speech.bench.train", "train_worker"),
    "memory-worker": ("speech.bench.train_memory", "memory_worker"),
    "build-worker": ("speech.bench.train_memory", "build_worker"),
    "pocketsphinx-worker": ("speech.bench.transcribe", "pocketsphinx_worker"),
    "transcribe-worker": ("speech.bench.transcribe", "transcribe_worker"),
    "whisper-worker": ("speech.bench.whisper", "whisper_worker"),
    "ours-worker": ("speech.bench.whisper", "ours_worker"),
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in WORKERS:
        print(f"usage: python -m {WORKER_MODULE} {{{','.join(WORKERS)}}} '<json parameters>' "
              "(internal; run tools/bench_*.py)", file=sys.stderr)
        return 2
    module, function = WORKERS[argv[0]]
    result = getattr(importlib.import_module(module), function)(json.loads(argv[1]))
    result["vmhwm_mb"] = memory_status().get("VmHWM")  # this process's peak resident memory
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
