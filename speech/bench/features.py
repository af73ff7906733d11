"""``speech bench features``: our batched front end (``FrontEnd``) against librosa one clip at a time,
same parameters, same run. ``benchmark_features`` returns the result dict, ``format_features`` its markdown.
"""
from __future__ import annotations

import argparse
import os
from typing import Callable

from speech.bench.measure import (
    SPEECH_COMMANDS_TEST, command_line, evenly_spaced, fit_clip, interleaved, load_now, machine_info, machine_line,
    markdown_table, median, paired_ratio, print_report, set_threads, speech_commands_files,
)


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
    waves = [fit_clip(load_audio(p, sr).numpy(), int(sr * seconds)) for p, _ in files]
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
    result["command"] = command_line("python tools/bench_features.py", args, skip=("json",))
    return print_report(result, format_features, args.json)
