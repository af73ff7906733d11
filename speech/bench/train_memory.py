"""The memory check of ``speech bench train``: a Speech Commands-size DecodedAudioCache memmap, simulated
by repeating real clips (``write_simulated_cache``), read through speech.train's loader for one epoch in a
worker process (``memory_worker``); and the peak memory of building a real cache (``build_worker``).
``check_cache_layout`` guards against DecodedAudioCache's file layout changing under this benchmark.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from speech.bench.measure import LABELS_12, PeakSampler, fit_clip, markdown_table, memory_status, run_worker, set_threads


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
        raise RuntimeError("DecodedAudioCache no longer reads the cache layout speech/bench/train_memory.py writes "
                           "(file key or index format changed): update write_simulated_cache")


def memory_worker(p: dict) -> dict:
    """Phase 1: one epoch of data loading (speech.train's loader, no model) over the memmap cache, with
    resident memory sampled; phase 2: hold ``float_clips`` float32 copies, for the per-clip cost."""
    import numpy as np
    import torch  # noqa: F401  (in the baseline: the loader needs it anyway)

    set_threads(1)
    from speech.config import TrainConfig
    from speech.data.dataset import AudioDataset
    from speech.data.loaders import make_loader

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


def build_worker(p: dict) -> dict:
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


def memory_check(clips: int, float_clips: int, build_clips: int, sources: list[str], manifest: Path,
                 batch_size: int, work_dir: Path) -> dict:
    """Write a ``clips`` x 1 s simulated cache (the ``sources`` repeated), read it in a worker; optionally
    build a real ``build_clips`` cache in another worker to see the build's peak."""
    import numpy as np

    from speech.audio import load_audio

    check_cache_layout(work_dir)
    unique = [(fit_clip(load_audio(p, 16000).numpy(), 16000).clip(-1, 1) * 32767).round().astype(np.int16) for p in sources]
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


def memory_lines(m: dict, batch_size: int) -> list[str]:
    """The memory check's paragraphs in ``format_train``: ``m`` is :func:`memory_check`'s result."""
    peak = m["peak"]
    base = m["baseline"]
    memmap_mb = peak.get("RssFile", 0) - base.get("RssFile", 0)
    out = [f"Memory check: {m['clips']:,} x 1 s clips (Speech Commands v0.02 has 105,829) in a DecodedAudioCache "
           f"memmap ({m['cache_file_gb']:.2f} GiB of int16, written in {m['write_s']:.0f} s), read through "
           f"speech.train's loader (batch {batch_size}, shuffled) for one epoch, no model: "
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
    return out
