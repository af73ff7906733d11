"""Print the `commands` recipe's results as markdown: the classifier's per-class table on the held-out
real speakers, and the CTC model's accuracy with the 35-word grammar (as 35 words, and mapped to the
12-class task) beside it.

    python recipes/commands/report.py runs/commands
    python recipes/commands/report.py --det A/det_dev.json B/det_dev.json ...   # hits at false-accept budgets
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
from speech.bench.detection_score import BUDGETS, within_budgets  # budgets: false accepts per hour of other speech


def det_row(path: str) -> str:
    """One markdown row per real-speech stream of a `speech bench detection` report: the hit rate at the
    operating point, and the best hit rate of the sweep within each false-accept budget
    (:func:`speech.bench.detection_score.within_budgets`; a pooled report's rows are its pooled sums)."""
    report = json.loads(Path(path).read_text())
    rows = []
    for stream in report["streams"]:
        if stream["negatives"] != "real":
            continue
        op = stream["operating_point"]
        cells = [f"{100 * b['hits'] / b['commands']:.1f} % (t={b['threshold']:g})" if b["threshold"] is not None else "-"
                 for b in within_budgets(stream["sweep"], BUDGETS)]
        rows.append(f"| {path} | {stream['stream']} | {100 * op['hits'] / op['commands']:.1f} % / "
                    f"{op['false_accepts_per_hour']:.1f} (t={op['threshold']:g}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(run: str) -> None:
    run_dir = Path(run)
    split = json.loads(Path("data/commands/split.json").read_text()) if Path("data/commands/split.json").is_file() else {}
    cls = json.loads((run_dir / "commands" / "eval" / "metrics.json").read_text())
    print(f"Held-out real speakers: {len(split.get('test_speakers', []))} speakers of speech_commands_v2_test_dev "
          f"(never trained on; the configuration was chosen by its accuracy on them, see README.md); {cls['count']} clips.\n")
    print("| class | precision % | recall % | clips |\n|---|---|---|---|")
    for name, m in cls["per_class"].items():
        print(f"| {name} | {100 * m['precision']:.1f} | {100 * m['recall']:.1f} | {m['support']} |")
    print(f"| **all (12-class accuracy)** | | **{100 * cls['accuracy']:.1f}** | {cls['count']} |\n")
    ctc_dir = run_dir / "commands-ctc" / "eval"
    if (ctc_dir / "metrics.json").is_file():
        ctc = json.loads((ctc_dir / "metrics.json").read_text())
        rows = [json.loads(line) for line in (ctc_dir / "predictions.jsonl").read_text().splitlines()]
        to12 = lambda w: w if w in COMMANDS else "_unknown_"  # noqa: E731
        mapped = sum(to12(r["prediction"]) == to12(r["reference"]) for r in rows) / max(len(rows), 1)
        cls_rows = [json.loads(line) for line in (run_dir / "commands" / "eval" / "predictions.jsonl").read_text().splitlines()]
        speech_only = [r for r in cls_rows if r["reference"] != "_silence_"]
        cls_speech = sum(r["prediction"] == r["reference"] for r in speech_only) / max(len(speech_only), 1)
        print("| model | words (35-word grammar) | 12-class, speech clips only |\n|---|---|---|")
        print(f"| commands (classifier) | - | {100 * cls_speech:.1f} |")
        print(f"| commands-ctc + grammar of the 35 words | {100 * ctc['sequence_accuracy']:.1f} | {100 * mapped:.1f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--det":
        print("| report | stream | operating point: hits / FA per h | " + " | ".join(f"hits at <= {b} FA/h" for b in BUDGETS) + " |")
        print("|---|---|---|" + "---|" * len(BUDGETS))
        for p in sys.argv[2:]:
            print(det_row(p))
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "runs/commands")
