"""room_report.py MANIFEST PREDICTIONS [PREDICTIONS ...]: accuracy of ``speech evaluate``'s predictions on a
test set made by ``reverberate.py``, by room response (file and channel) and, where the rows hold one, by the
room's measured RT60 (``--edges``, seconds). One column per predictions file; a markdown table on stdout.

    python recipes/commands/room_report.py data/sc_rooms/test.jsonl runs/eval_SP1/rooms/predictions.jsonl
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path


def groups_of(row: dict, edges: list[float]) -> list[str]:
    """The table rows a clip counts in: its RT60 band where known, else its response."""
    if row.get("rt60") is not None:
        bounds = [0.0, *edges, float("inf")]
        for low, high in zip(bounds, bounds[1:]):
            if low <= row["rt60"] < high:
                return [f"RT60 {low:g}-{high:g} s" if high != float("inf") else f"RT60 >= {low:g} s"]
    return [f"{row.get('room_file', '?')} channel {row.get('room_channel', 0)}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", help="the test.jsonl that reverberate.py wrote")
    parser.add_argument("predictions", nargs="+", help="predictions.jsonl of speech evaluate --out DIR")
    parser.add_argument("--edges", type=float, nargs="*", default=[0.3, 0.5, 0.7], help="RT60 band edges (default 0.3 0.5 0.7)")
    args = parser.parse_args()
    rows = {str(Path(r["audio_filepath"]).resolve()): r for r in map(json.loads, open(args.manifest))}
    counts = [defaultdict(lambda: [0, 0]) for _ in args.predictions]  # group -> [right, clips]
    for table, path in zip(counts, args.predictions):
        for prediction in map(json.loads, open(path)):
            row = rows.get(str(Path(prediction["path"]).resolve()))
            if row is None:
                raise SystemExit(f"room_report.py: {path}: {prediction['path']} is not in {args.manifest}")
            for group in [*groups_of(row, args.edges), "all"]:
                table[group][0] += bool(prediction["correct"])
                table[group][1] += 1
    groups = sorted({g for table in counts for g in table if g != "all"}) + ["all"]
    print("| rooms | clips | " + " | ".join(args.predictions) + " |")
    print("|---|---:|" + "---:|" * len(args.predictions))
    for group in groups:
        clips = counts[0][group][1]
        cells = [f"{t[group][0] / t[group][1] * 100:.1f} %" if t[group][1] else "-" for t in counts]
        print(f"| {group} | {clips} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
