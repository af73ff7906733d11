"""Do per-command live thresholds beat one? Measured on the DEV half of the detection benchmark only.

The DEV real-speech stream of ``speech bench detection`` is cut in two by time (the first and second half of
its commands and other speech). On the first half, one threshold and then ten per-command thresholds (two
rounds of coordinate ascent, starting from that one) are chosen to maximize ``hits - cost x (false accepts +
wrong labels)``; both are then scored on the second half, next to the sweep of one threshold there, so a
per-command set is better only if it lies above that sweep. TEST is not read.

    python recipes/commands/per_command.py --model commands --cache data/detection/cache [--cost 1 3]

The posteriors are those of the benchmark (same streams, pipeline and cache key), so ``--cache`` shared with
``speech bench detection --halves dev --cache DIR`` skips the model.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

GRID = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.84, 0.88, 0.9, 0.92, 0.94, 0.96)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="commands")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--cache", help="the posterior cache of speech bench detection")
    parser.add_argument("--cost", type=float, nargs="+", default=[1.0, 3.0], help="cost of a false accept, in missed commands")
    args = parser.parse_args()

    import torch

    from decision import dev_posteriors  # this folder's script: the DEV stream and its posteriors, as the benchmark's
    from speech.bench.detection import Fired, score_stream
    from speech.streaming import RecognizeCommands, SmoothingConfig
    from speech.streaming.detection import NEVER_FIRE

    torch.set_num_threads(1)
    recognizer, stream, post = dev_posteriors(args.model, args.data, args.cache, {}, say=lambda line: None)
    smoothing = SmoothingConfig()
    seconds = len(stream.audio) / recognizer.sample_rate
    parts = {"first": (0.0, seconds / 2), "second": (seconds / 2, seconds)}
    commands = [label for label in recognizer.labels if label not in NEVER_FIRE]

    class PerCommand(RecognizeCommands):
        def __init__(self, thresholds: dict[str, float]):
            super().__init__(recognizer.labels, smoothing)
            self.thresholds = thresholds

        def threshold(self, label: str) -> float:
            return self.thresholds.get(label, 1.0)

    def score(thresholds: dict[str, float], part: str) -> dict:
        lo, hi = parts[part]
        smoother, fired = PerCommand(thresholds), []
        for t, p in zip(post.times.tolist(), post.probabilities):
            if lo <= t < hi and (hit := smoother.process(t, p)) is not None:
                fired.append(Fired(t - lo, *hit))
        events = [replace(e, start=e.start - lo, end=e.end - lo) for e in stream.events if lo <= e.start < hi]
        return score_stream(fired, events, hi - lo)

    def line(r: dict) -> str:
        return (f"{r['hits']}/{r['commands']} hits ({100 * r['hits'] / r['commands']:.1f} %), {r['false_accepts_on_speech']} "
                f"false accepts ({r['false_accepts_per_hour']:.1f}/h), {r['wrong_label']} wrong labels")

    print(f"{args.model}: DEV real-speech stream, {seconds / 60:.1f} min, cut at {seconds / 120:.1f} min\n")
    print("one threshold, second half:")
    for t in GRID:
        print(f"  {t:.2f}: {line(score(dict.fromkeys(commands, t), 'second'))}")
    for cost in args.cost:
        gain = lambda r: (r["hits"] - cost * (r["false_accepts_on_speech"] + r["wrong_label"]))  # noqa: E731
        one = max(GRID, key=lambda t: (gain(score(dict.fromkeys(commands, t), "first")), t))
        per = dict.fromkeys(commands, one)
        for _ in range(2):
            for c in commands:
                per[c] = max(GRID, key=lambda t: (gain(score({**per, c: t}, "first")), t))
        print(f"\ncost {cost:g}: chosen on the first half")
        print(f"  one threshold {one:.2f}:  first {line(score(dict.fromkeys(commands, one), 'first'))}")
        print(f"                        second {line(score(dict.fromkeys(commands, one), 'second'))}")
        print(f"  per command {per}:")
        print(f"                        first {line(score(per, 'first'))}")
        print(f"                        second {line(score(per, 'second'))}")


if __name__ == "__main__":
    main()
