"""A run of hops over the threshold: does firing a command only after its averaged score has led and stayed
over the threshold for ``--hold`` hops in a row (1: the shipped rule, ``RecognizeCommands``) beat the live
detector? DEV half only (TEST is not read), on the posteriors ``speech bench detection`` cached
(``--cache``: the same streams and key as its ``--halves dev --seed S --cache DIR``), stream seeds pooled
as ``decision.py --stream-seeds`` pools them. Each row: the balanced point, the best hits within each budget of
false accepts per hour, the median latency at ``--latency-at``, and each seed's hits at <= 2 / <= 10.

    speech bench detection --halves dev --seed 0 1 2 3 4 --cache data/detection/cache_pooled
    python recipes/commands/hold_hops.py --cache data/detection/cache_pooled --hold 1 3 5 --average-window-ms 300 500
    python recipes/commands/hold_hops.py --cache data/detection/cache_pooled --hold 1 --top-windows 3 2 0

``--top-windows K``: the average itself changed instead, each class's K best windows of the averaging window
averaged (a peak rather than a mean), or their median (K = 0).
"""
from __future__ import annotations

import argparse

from decision import BUDGETS, dev_posteriors, summarize

from speech.streaming.detection import RecognizeCommands


class HoldingRecognizer(RecognizeCommands):
    """:class:`RecognizeCommands` that fires only on the ``hold``-th hop in a row on which the same command
    leads the averaged posterior at or over the threshold (``hold=1``: the parent's decisions). Before each
    hop the streak is counted on the average the parent is about to take; while it is short, the threshold
    is out of reach."""

    def __init__(self, labels, config, hold: int):
        super().__init__(labels, config)
        self.hold, self.streak, self.streak_label = hold, 0, None

    def process(self, time_s, probabilities):
        import numpy as np

        c = self.config
        window = [p for t, p in self.history if t > time_s - c.average_window_ms / 1000] + [np.asarray(probabilities, dtype=np.float64)]
        label, over = None, False
        if len(window) >= c.minimum_count:
            avg = self.average_of(window)
            top = int(np.argmax(avg))
            label = self.labels[top]
            over = label not in self.ignore and float(avg[top]) >= c.detection_threshold
        self.streak = (self.streak + 1 if label == self.streak_label else 1) if over else 0
        self.streak_label = label if over else None
        return super().process(time_s, probabilities)

    def threshold(self, label: str) -> float:
        return self.config.detection_threshold if self.streak >= self.hold else float("inf")

    def average(self):
        return self.average_of([p for _, p in self.history])

    def average_of(self, window: list):
        """The score of each class over the windows' posteriors ``[(classes,), ...]``: their mean."""
        import numpy as np

        return np.mean(window, axis=0)


class TopWindowsRecognizer(HoldingRecognizer):
    """The holding rule on another average: each class's ``top`` best windows of the averaging window
    averaged (``top`` >= the windows in it: the plain mean), or their median (``top=0``)."""

    def __init__(self, labels, config, hold: int, top: int):
        super().__init__(labels, config, hold)
        self.top = top

    def average_of(self, window: list):
        import numpy as np

        stack = np.stack(window)
        if self.top == 0:
            return np.median(stack, axis=0)
        return np.sort(stack, axis=0)[-min(self.top, len(stack)):].mean(axis=0)


def held_sweep(post, stream, labels, rate: int, window_ms: float, hold: int, thresholds, top: int | None = None) -> list[dict]:
    """The benchmark's sweep rows (``score_stream`` at each threshold) for the holding rule (``top``: on the
    average of :class:`TopWindowsRecognizer`)."""
    from speech.bench.detection import Fired, score_stream
    from speech.streaming import SmoothingConfig

    rows = []
    for t in thresholds:
        config = SmoothingConfig(window_ms, float(t), 1000.0, 3)
        rule = HoldingRecognizer(labels, config, hold) if top is None else TopWindowsRecognizer(labels, config, hold, top)
        fired = [Fired(float(tm), *d) for tm, p in zip(post.times, post.probabilities) if (d := rule.process(float(tm), p))]
        rows.append({"threshold": float(t), **score_stream(fired, stream.events, len(stream.audio) / rate)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="commands")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--cache", help="the posterior cache of speech bench detection")
    parser.add_argument("--stream-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--hold", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--average-window-ms", type=float, nargs="+", default=[500.0])
    parser.add_argument("--top-windows", type=int, nargs="+", default=[],
                        help="also: the average replaced by the mean of each class's K best windows (0: their median)")
    parser.add_argument("--latency-at", type=float, default=0.7, help="threshold of the latency column (default: 0.7)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from speech.bench.detection import pool_sweeps
    from speech.bench.detection_data import DEFAULT_THRESHOLDS

    torch.set_num_threads(1)
    streams: dict = {}
    runs = [dev_posteriors(args.model, args.data, args.cache, streams, say=lambda line: None, stream_seed=s)
            for s in args.stream_seeds]
    thresholds = sorted(set(DEFAULT_THRESHOLDS) | {args.latency_at})
    print("| averaging ms | hold (hops) | balanced: t, hits, FA/h | " + " | ".join(f"<= {b} FA/h" for b in BUDGETS)
          + f" | latency median at {args.latency_at:g} (s) | per seed, <= 2 / <= 10 |")
    print("|---:|---:|---|" + "---:|" * len(BUDGETS) + "---:|---|")
    rules = [(hold, None) for hold in args.hold] + [(1, top) for top in args.top_windows]
    for window in args.average_window_ms:
        for hold, top in rules:
            per_seed = [held_sweep(post, stream, rec.labels, rec.sample_rate, window, hold, thresholds, top) for rec, stream, post in runs]
            s = summarize(pool_sweeps(per_seed))
            b = s["balanced"]
            cells = [f"{100 * s[k]['hits'] / s[k]['commands']:.1f} % ({s[k]['threshold']:g})" if s[k] else "-" for k in BUDGETS]
            latency = np.median([x for rows in per_seed for x in next(r for r in rows if r["threshold"] == args.latency_at)["latencies"]])
            seeds = []
            for rows in per_seed:
                one = summarize(rows)
                seeds.append(" / ".join(f"{100 * one[k]['hits'] / one[k]['commands']:.1f}" if one[k] else "-" for k in (2, 10)))
            name = f"{hold}" if top is None else ("1, median of the windows" if top == 0 else f"1, mean of the {top} best windows")
            print(f"| {window:g} | {name} | {b['threshold']:g}: {100 * b['hits'] / b['commands']:.1f} %, "
                  f"{b['false_accepts_per_hour']:.1f} | " + " | ".join(cells) + f" | {latency:.2f} | {'; '.join(seeds)} |", flush=True)
    print(f"\nDEV real-speech streams, seeds {' '.join(map(str, args.stream_seeds))} pooled")


if __name__ == "__main__":
    main()
