"""Does another decision rule, or several models averaged, beat the shipped live detector? DEV half only.

The posteriors of each model on the DEV real-speech stream of ``speech bench detection`` (same streams,
pipeline and cache key, so ``--cache`` shared with ``speech bench detection --halves dev --cache DIR`` skips
the model) are replayed through :class:`~speech.streaming.RecognizeCommands` for every averaging window and
minimum count asked for, swept over the benchmark's thresholds. ``A+B`` as a model averages the posteriors
of A and B hop by hop first (an ensemble; every model sees the same hops). Each row: the best hit rate
within each false-accept budget, and the balanced point (most hits - false accepts - wrong labels, the rule
of ``calibrate_stream.py``). TEST is not read. ``--stream-seeds 0 1 2 3 4``: the same DEV clips in five
orders with other noise, pooled: five times the hours of other speech, so one false accept weighs a fifth
as much at the low-false-accept end (the words are the same, so it averages out context, not speakers).

    python recipes/commands/decision.py --cache data/detection/cache_r4 --average-window-ms 500 1000 \
        commands A/model.pt A/model.pt+B/model.pt
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

BUDGETS = (2, 10, 30, 100)


def dev_posteriors(model: str, data: str, cache: str | None, streams: dict, say=print, half: str = "dev",
                   stream_seed: int = 0):
    """``(recognizer, DEV real stream, Posteriors)`` of one model, as ``speech bench detection`` computes them
    (``streams``: the stream of each sample rate and seed, built once; ``half="test"``: the TEST one;
    ``stream_seed``: the benchmark's ``--seed``, another order and noise of the same clips)."""
    from speech.bench.detection import audio_key, posteriors_cached, stream_posteriors
    from speech.bench.detection_data import benchmark_streams, load_inputs
    from speech.bench.streaming import default_noise_dir
    from speech.checkpoint import resolve_model_path
    from speech.streaming import SmoothingConfig
    from speech.streaming.detection import DEFAULT_GATE_DB
    from speech.transcribe import load_recognizer

    recognizer = load_recognizer(model, "cpu", batch_size=64, engine="auto", threads=1)
    model_key = hashlib.sha256(Path(resolve_model_path(model)).read_bytes()).hexdigest()
    rate = recognizer.sample_rate
    if (rate, stream_seed) not in streams:
        if rate not in streams:
            streams[rate] = load_inputs(recognizer, data, default_noise_dir(), None, lambda line: None)
        noise, clips, _ = streams[rate]
        streams[rate, stream_seed] = next(benchmark_streams(clips, noise, rate, halves=[half], seed=stream_seed))
    stream = streams[rate, stream_seed]
    key = audio_key(model_key, recognizer.engine, 0.1, recognizer.window_seconds, f"gate{DEFAULT_GATE_DB:g}", stream.audio)
    post, cached = posteriors_cached(cache, key, lambda: stream_posteriors(
        recognizer, stream.audio, 0.1, SmoothingConfig(), 50.0, DEFAULT_GATE_DB))
    say(f"{model}: {len(post.times)} hops{' (cached)' if cached else ''}")
    return recognizer, stream, post


def summarize(rows: list[dict]) -> dict:
    """Best hit rate within each budget, and the balanced point, of one sweep."""
    out = {}
    for budget in BUDGETS:
        ok = [r for r in rows if r["false_accepts_per_hour"] <= budget]
        out[budget] = max(ok, key=lambda r: (r["hits"], -r["threshold"]), default=None)
    out["balanced"] = max(rows, key=lambda r: (r["hits"] - r["false_accepts_on_speech"] - r["wrong_label"], r["threshold"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files or names; A+B: the mean posterior of A and B")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--cache", help="the posterior cache of speech bench detection")
    parser.add_argument("--average-window-ms", type=float, nargs="+", default=[500.0])
    parser.add_argument("--minimum-count", type=int, nargs="+", default=[3])
    parser.add_argument("--suppression-ms", type=float, default=1000.0)
    parser.add_argument("--stream-seeds", type=int, nargs="+", default=[0],
                        help="the benchmark's --seed of each DEV stream (the same clips in another order, with "
                             "other noise); several are pooled (hits and false accepts summed at each threshold)")
    parser.add_argument("--per-seed", action="store_true", help="also print each stream seed's row")
    parser.add_argument("--mean", choices=("arithmetic", "geometric"), default="arithmetic",
                        help="how several models' posteriors are averaged (default: arithmetic)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from speech.bench.detection import pool_sweeps, sweep
    from speech.bench.detection_data import DEFAULT_THRESHOLDS
    from speech.streaming import SmoothingConfig

    torch.set_num_threads(1)
    known: dict = {}
    streams: dict = {}

    def posteriors(model: str, seed: int):
        if (model, seed) not in known:
            known[model, seed] = dev_posteriors(model, args.data, args.cache, streams, say=lambda line: None,
                                                stream_seed=seed)
        return known[model, seed]

    def seed_rows(spec: str, seed: int, smoothing) -> tuple[list[dict], float, int]:
        got = [posteriors(m, seed) for m in spec.split("+")]
        recognizer, stream, first = got[0]
        for r, _, p in got[1:]:
            if list(r.labels) != list(recognizer.labels) or not np.array_equal(p.times, first.times):
                raise SystemExit(f"decision.py: {spec}: the models differ in labels or hops; they cannot be averaged")
        stack = np.stack([p.probabilities for _, _, p in got])
        if args.mean == "geometric":
            logs = np.log(np.clip(stack, 1e-8, 1.0)).mean(axis=0)
            probs = np.exp(logs - logs.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
        else:
            probs = stack.mean(axis=0)
        seconds = len(stream.audio) / recognizer.sample_rate
        return sweep(first.times, probs, recognizer.labels, stream.events, seconds, smoothing, DEFAULT_THRESHOLDS), \
            seconds, len(stream.events)

    def row(spec: str, window: float, count: int, rows: list[dict]) -> str:
        s = summarize(rows)
        b = s["balanced"]
        cells = [f"{100 * s[k]['hits'] / s[k]['commands']:.1f} % ({s[k]['threshold']:g})" if s[k] else "-" for k in BUDGETS]
        return (f"| {spec} | {window:g} | {count} | {b['threshold']:g}: {100 * b['hits'] / b['commands']:.1f} %, "
                f"{b['false_accepts_per_hour']:.1f}, {b['wrong_label']} | " + " | ".join(cells) + " |")

    print("| models | averaging ms | minimum count | balanced: t, hits, FA/h, wrong | "
          + " | ".join(f"<= {b} FA/h" for b in BUDGETS) + " |")
    print("|---|---:|---:|---|" + "---:|" * len(BUDGETS))
    total_seconds, words = 0.0, 0
    for spec in args.models:
        for window in args.average_window_ms:
            for count in args.minimum_count:
                smoothing = SmoothingConfig(window, 0.5, args.suppression_ms, count)
                per_seed = []
                total_seconds, words = 0.0, 0
                for seed in args.stream_seeds:
                    rows, seconds, n = seed_rows(spec, seed, smoothing)
                    per_seed.append(rows)
                    total_seconds += seconds
                    words += n
                    if args.per_seed and len(args.stream_seeds) > 1:
                        print(row(f"{spec} (stream seed {seed})", window, count, rows), flush=True)
                print(row(spec if len(per_seed) == 1 else f"{spec} (seeds {' '.join(map(str, args.stream_seeds))} pooled)",
                          window, count, pool_sweeps(per_seed)), flush=True)
    print(f"\nDEV real-speech stream: {total_seconds / 60:.1f} min, {words} words"
          + (f" ({len(args.stream_seeds)} stream seeds pooled)" if len(args.stream_seeds) > 1 else ""))


if __name__ == "__main__":
    main()
