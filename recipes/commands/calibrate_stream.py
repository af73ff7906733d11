"""Ship the bundled `commands` model with a live operating point chosen on the DEV half of the detection
benchmark's streams, written into the model file's ``info["operating_point"]`` (with what it was measured
on), which `speech listen`, `speech bench detection`, `speech transcribe` and the Python API use when no
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model.pt to write the operating point into")
    parser.add_argument("--report", required=True, help="speech bench detection --halves dev --out FILE (JSON)")
    parser.add_argument("--far-per-hour", type=float, default=None,
                        help="target false accepts per hour (default: none, the balanced rule of the docstring)")
    args = parser.parse_args()

    from speech.checkpoint import atomic_save, read_payload

    report = json.loads(open(args.report).read())
    streams = [s for s in report["streams"] if s["negatives"] == "real"]
    if any(s["half"] != "dev" for s in report["streams"]) or len(streams) != 1:
        sys.exit(f"{args.report}: expected the DEV half's real-speech stream only (speech bench detection --halves dev)")
    stream = streams[0]
    if args.far_per_hour is None:
        row, met = balanced(stream["sweep"]), True
        rule = "most hits - false accepts - wrong labels"
    else:
        row, met = choose(stream["sweep"], args.far_per_hour)
        rule = f"lowest threshold at <= {args.far_per_hour:g} false accepts per hour"
    config = report["config"]
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
                        f"unseen speakers' commands among real other speech, {config['snr_db']:g} dB SNR, seed {config['seed']})"),
    }
    payload = read_payload(args.model)
    payload["info"] = {**payload.get("info", {}), "operating_point": point}
    atomic_save(payload, args.model)
    target = "" if args.far_per_hour is None else f", target {args.far_per_hour:g}/h {'met' if met else 'NOT met'}"
    print(f"operating point ({rule}): threshold {point['threshold']:.2f}: {row['false_accepts_per_hour']:.1f} false "
          f"accepts per hour, {100 * point['hit_rate']:.1f} % hits on the DEV stream{target} -> {args.model}")


if __name__ == "__main__":
    main()
