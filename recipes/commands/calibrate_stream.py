"""Ship the bundled `commands` model with a live operating point chosen on the DEV half of the detection
benchmark's streams, written into the model file's ``info["operating_point"]`` (with what it was measured
on, and the DEV curve: false accepts per hour and hit rate at each threshold), which `speech listen`, `speech bench detection`, `speech transcribe` and the Python API use when no
threshold is given. Two rules:

- ``--far-per-hour F``: the lowest threshold of the sweep whose false accepts per hour of other (real) speech
  are at most F (when none is, the one with the fewest false accepts, then the most hits; ``target_met``
  false);
- default: the threshold with the most hits minus false accepts minus wrong labels on the DEV stream (a
  false command costs as much as a missed one; ties go to the higher threshold), the rule the CTC path's
  rejection was chosen by (docs/live.md).

    speech bench detection --model runs/commands/commands/model.pt --halves dev --out dev.json
    python recipes/commands/calibrate_stream.py --model runs/commands/commands/model.pt --report dev.json \
        [--far-per-hour 2]

A DEV run with several ``--seed`` values (the same clips in other orders, with other noise), or several
``--report`` files, each a DEV run with another ``--seed`` and the same model and settings, are pooled:
hits, false accepts and seconds of other speech summed at each threshold, so the point is chosen on
several times the hours of other speech (recipe README, "A longer DEV: stream seeds pooled": one
30-minute stream's order moves the hits at <= 2 false accepts per hour by 23 points).

    speech bench detection --model M --halves dev --seed 0 1 2 3 4 --out dev.json   # one report, pooled
    python recipes/commands/calibrate_stream.py --model M --report dev.json

or, run by run: ``for s in 0 1 2 3 4; do speech bench detection ... --seed $s --out dev$s.json; done`` and
``--report dev0.json ... dev4.json`` (the same sums).

Only the DEV half is read (the report must hold no TEST row): TEST stays the final, unseen measurement.
"""
from __future__ import annotations

import argparse
import json
import sys


def choose(sweep: list[dict], far_per_hour: float) -> tuple[dict, bool]:
    """The sweep row to ship and whether it meets ``far_per_hour``."""
    rows = sorted(sweep, key=lambda r: r["threshold"])
    for row in rows:
        if row["false_accepts_per_hour"] <= far_per_hour:
            return row, True
    return min(rows, key=lambda r: (r["false_accepts_per_hour"], -r["hits"])), False


def balanced(sweep: list[dict]) -> dict:
    """The sweep row with the most hits - false accepts on other speech - wrong labels (ties: the higher threshold)."""
    return max(sweep, key=lambda r: (r["hits"] - r["false_accepts_on_speech"] - r["wrong_label"], r["threshold"]))


SAME_SETTINGS = ("model", "engine", "snr_db", "minutes_per_stream", "hop_ms", "window_s", "average_window_ms", "suppression_ms",
                 "minimum_count", "thresholds", "gate_db", "tolerance_s")


def pooled_dev_sweep(paths: list[str]) -> tuple[list[dict], list[dict]]:
    """``(reports, sweep)``: each report read and checked (the DEV half's real-speech stream only), and the
    sweeps of their streams pooled (:func:`speech.bench.detection.pool_sweeps`). Several reports must share
    the settings and differ in their seed (the same stream twice would only look longer). ValueError: one
    line naming the file and the problem."""
    from speech.bench.detection import pool_sweeps

    reports = []
    for path in paths:
        try:
            report = json.loads(open(path).read())
            streams = [s for s in report["streams"] if s["negatives"] == "real"]
            dev_only = all(s["half"] == "dev" for s in report["streams"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a speech bench detection report ({e})") from None
        if not dev_only or len(streams) != 1:
            raise ValueError(f"{path}: expected the DEV half's real-speech stream only (speech bench detection --halves dev)")
        report["streams"] = streams
        reports.append(report)
    first = reports[0]["config"]
    seen: dict = {}
    for path, report in zip(paths, reports):
        config = report["config"]
        differ = [k for k in SAME_SETTINGS if config.get(k) != first.get(k)]
        if differ:
            raise ValueError(f"{path}: other settings than {paths[0]} ({', '.join(differ)}); pool only runs that differ in --seed")
        for seed in report_seeds(report):
            if seed in seen:
                raise ValueError(f"{path}: the same --seed ({seed}) as {seen[seed]}: the same stream twice")
            seen[seed] = path
    return reports, pool_sweeps([r["streams"][0]["sweep"] for r in reports])


def report_seeds(report: dict) -> list[int]:
    """The stream seeds of a report: one, or the list of a pooled run (``--seed 0 1 2 3 4``)."""
    seed = report["config"]["seed"]
    return list(seed) if isinstance(seed, list) else [seed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model.pt to write the operating point into")
    parser.add_argument("--report", required=True, nargs="+",
                        help="speech bench detection --halves dev --out FILE (JSON); several (each another --seed, "
                             "the same model and settings): their sweeps pooled")
    parser.add_argument("--far-per-hour", type=float, default=None,
                        help="target false accepts per hour (default: none, the balanced rule of the docstring)")
    args = parser.parse_args()

    from speech.checkpoint import atomic_save, read_payload

    try:
        reports, sweep = pooled_dev_sweep(args.report)
    except ValueError as e:
        sys.exit(str(e))
    if args.far_per_hour is None:
        row, met = balanced(sweep), True
        rule = "most hits - false accepts - wrong labels"
    else:
        row, met = choose(sweep, args.far_per_hour)
        rule = f"lowest threshold at <= {args.far_per_hour:g} false accepts per hour"
    config, stream = reports[0]["config"], reports[0]["streams"][0]
    seeds = [seed for r in reports for seed in report_seeds(r)]
    point = {
        "threshold": float(row["threshold"]),
        "kind": "live stream (averaged posterior)",
        "rule": rule,
        "target_false_accepts_per_hour": args.far_per_hour,
        "false_accepts_per_hour": row["false_accepts_per_hour"],
        "hit_rate": round(row["hits"] / max(row["commands"], 1), 4),
        "commands": row["commands"],
        "other_speech_minutes": round(row["other_seconds"] / 60, 1),
        "target_met": met,
        "smoothing": {k: config[k] for k in ("average_window_ms", "suppression_ms", "minimum_count", "hop_ms")},
        "measured_on": (f"speech bench detection DEV half ({stream['stream']}: {len(stream['speakers'].get('commands', []))} "
                        f"unseen speakers' commands among real other speech, {config['snr_db']:g} dB SNR, "
                        + (f"seed {seeds[0]})" if len(seeds) == 1 else f"seeds {' '.join(map(str, seeds))} pooled)")),
        "stream_seeds": seeds,
        # the whole DEV curve, so that a false-accept rate can pick another threshold (speech listen
        # --false-accepts-per-hour, speech.streaming.threshold_for_false_accepts)
        "dev_curve": [{"threshold": float(r["threshold"]), "false_accepts_per_hour": r["false_accepts_per_hour"],
                       "hit_rate": round(r["hits"] / max(r["commands"], 1), 4)} for r in sorted(sweep, key=lambda r: r["threshold"])],
    }
    payload = read_payload(args.model)
    payload["info"] = {**payload.get("info", {}), "operating_point": point}
    atomic_save(payload, args.model)
    target = "" if args.far_per_hour is None else f", target {args.far_per_hour:g}/h {'met' if met else 'NOT met'}"
    print(f"operating point ({rule}): threshold {point['threshold']:.2f}: {row['false_accepts_per_hour']:.1f} false "
          f"accepts per hour, {100 * point['hit_rate']:.1f} % hits on the DEV stream{target} -> {args.model}")


if __name__ == "__main__":
    main()
