"""Does another decision rule, or several models averaged, beat the shipped live detector? DEV half only.

The posteriors of each model on the DEV real-speech stream of ``speech bench detection`` (same streams,
pipeline and cache key, so ``--cache`` shared with ``speech bench detection --halves dev --cache DIR`` skips
the model) are replayed through :class:`~speech.streaming.RecognizeCommands` for every averaging window and
minimum count asked for, swept over the benchmark's thresholds. ``A+B`` as a model averages the posteriors
of A and B hop by hop first (an ensemble; every model sees the same hops). Each row: the best hit rate
within each false-accept budget, and the balanced point (most hits - false accepts - wrong labels, the rule
of ``calibrate_stream.py``). TEST is not read.

    python recipes/commands/decision.py --cache data/detection/cache_r4 --average-window-ms 500 1000 \
        commands A/model.pt A/model.pt+B/model.pt
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

BUDGETS = (2, 10, 30, 100)


def dev_posteriors(model: str, data: str, cache: str | None, streams: dict, say=print, half: str = "dev"):
    """``(recognizer, DEV real stream, Posteriors)`` of one model, as ``speech bench detection`` computes them
    (``streams``: the stream of each sample rate, built once; ``half="test"``: the TEST one)."""
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
    if rate not in streams:
        noise, clips, _ = load_inputs(recognizer, data, default_noise_dir(), None, lambda line: None)
        streams[rate] = next(benchmark_streams(clips, noise, rate, halves=[half]))
    stream = streams[rate]
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
    parser.add_argument("--mean", choices=("arithmetic", "geometric"), default="arithmetic",
                        help="how several models' posteriors are averaged (default: arithmetic)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from speech.bench.detection import sweep
    from speech.bench.detection_data import DEFAULT_THRESHOLDS
    from speech.streaming import SmoothingConfig

    torch.set_num_threads(1)
    known: dict = {}
    streams: dict = {}

    def posteriors(model: str):
        if model not in known:
            known[model] = dev_posteriors(model, args.data, args.cache, streams, say=lambda line: None)
        return known[model]

    print("| models | averaging ms | minimum count | balanced: t, hits, FA/h, wrong | "
          + " | ".join(f"<= {b} FA/h" for b in BUDGETS) + " |")
    print("|---|---:|---:|---|" + "---:|" * len(BUDGETS))
    for spec in args.models:
        got = [posteriors(m) for m in spec.split("+")]
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
        for window in args.average_window_ms:
            for count in args.minimum_count:
                smoothing = SmoothingConfig(window, 0.5, args.suppression_ms, count)
                s = summarize(sweep(first.times, probs, recognizer.labels, stream.events, seconds, smoothing, DEFAULT_THRESHOLDS))
                b = s["balanced"]
                cells = [f"{100 * s[k]['hits'] / s[k]['commands']:.1f} % ({s[k]['threshold']:g})" if s[k] else "-" for k in BUDGETS]
                print(f"| {spec} | {window:g} | {count} | {b['threshold']:g}: {100 * b['hits'] / b['commands']:.1f} %, "
                      f"{b['false_accepts_per_hour']:.1f}, {b['wrong_label']} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nDEV real-speech stream: {seconds / 60:.1f} min, {len(stream.events)} words")

if __name__ == "__main__":
    main()
