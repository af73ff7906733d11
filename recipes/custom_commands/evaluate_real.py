"""Score a custom-commands model on real speech it never heard: Speech Commands clips of its words and of
other words, against the bundled CTC model with a grammar of the same words.

    python recipes/custom_commands/evaluate_real.py --model runs/custom_commands/model.pt \
        --words marvin,sheila,house,bird,happy --shared ../shared/data [--out DIR]

Real clips (`--shared`): `speech_commands_v2_test_dev` (every word folder, `_unknown_` by file name) and
`speech_commands_v1_sample`. The custom model was trained on synthesized speech only, so every clip is
unseen by it. The bundled `commands-ctc` model was trained on the v1 sample and on 36 of the 72 v2
speakers (recipes/commands, seed 0), so its fair test is the other 36 speakers: the table keeps the two
parts apart. A clip of one of the words is a hit when the answer is that word; a clip of any other word
(or of `_silence_`) is a false accept when the answer is one of the words.

The CTC model answers with a grammar in two ways: the words alone (every clip is forced onto one of
them) and the 35 Speech Commands words as the grammar with every answer outside the words taken as
"none of them" (the other words are garbage phrases that catch other speech).
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import speech
from speech.bench.detection_data import commands_split
from speech.synth import SPEECH_COMMANDS_WORDS


def real_clips(shared: Path) -> list[dict]:
    """``{"path", "word", "speaker", "part"}`` for every clip; ``part`` is ``v2 unseen``, ``v2 trained``
    (by the bundled models) or ``v1 sample``."""
    v2 = shared / "speech_commands_v2_test_dev"
    rows = []
    for folder in sorted(p for p in v2.iterdir() if p.is_dir()):
        for wav in sorted(folder.glob("*.wav")):
            word = wav.name.split("_")[0] if folder.name == "_unknown_" else folder.name
            speaker = wav.name.split("_nohash_")[0].split("_")[-1] if "_nohash_" in wav.name else None
            rows.append({"path": str(wav), "word": word, "speaker": speaker, "part": "v2"})
    trained = set(commands_split(shared)["train"])  # recipes/commands/build_manifests.py's split, redone
    for r in rows:
        r["part"] = "v2 trained" if r["speaker"] in trained else "v2 unseen"
    v1 = shared / "speech_commands_v1_sample"
    for folder in sorted(p for p in v1.iterdir() if p.is_dir()):
        for wav in sorted(folder.glob("*.wav")):
            rows.append({"path": str(wav), "word": folder.name, "speaker": wav.name.split("_nohash_")[0], "part": "v1 sample"})
    return rows


def score(answers: list[str], rows: list[dict], words: set[str]) -> dict:
    hits = sum(a == r["word"] for a, r in zip(answers, rows) if r["word"] in words)
    positives = sum(r["word"] in words for r in rows)
    others = [(a, r) for a, r in zip(answers, rows) if r["word"] not in words]
    false = sum(a in words for a, _ in others)
    return {"hits": hits, "positives": positives, "hit_rate": hits / max(positives, 1),
            "false_accepts": false, "negatives": len(others), "false_accept_rate": false / max(len(others), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--words", required=True)
    parser.add_argument("--shared", required=True, type=Path)
    parser.add_argument("--ctc", default="commands-ctc")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.0, 0.5, 0.6, 0.7, 0.8, 0.87, 0.9],
                        help="also score the custom model at these thresholds, all clips together (a sweep to "
                             "see where the saved point sits; not for choosing it: these clips are the test)")
    args = parser.parse_args()
    words = [w.strip() for w in args.words.split(",") if w.strip()]
    rows = real_clips(args.shared)
    paths = [r["path"] for r in rows]

    custom = speech.load(args.model)
    ctc = speech.load(args.ctc)
    plain = custom.transcribe(paths, threshold=0.0)
    saved = float(custom.operating_point.get("threshold", 0.0))
    answers = {
        f"custom model (threshold {saved:.2f}, saved)": [r.text if r.score >= saved else "_unknown_" for r in plain],
        f"{args.ctc} + grammar of the {len(words)} words": [r.text for r in ctc.transcribe(paths, grammar=words)],
        f"{args.ctc} + grammar of the 35 words (others = none)":
            [r.text for r in ctc.transcribe(paths, grammar=sorted(set(SPEECH_COMMANDS_WORDS) | set(words)))],
    }
    table = ["| model | clips | hits of the words | false accepts on other words |", "|---|---|---|---|"]
    report = {"words": words, "model": args.model, "counts": Counter(r["part"] for r in rows), "results": {}}
    wordset = set(words)
    for part in ("v2 unseen", "v2 trained", "v1 sample"):
        keep = [i for i, r in enumerate(rows) if r["part"] == part]
        for name, said in answers.items():
            s = score([said[i] for i in keep], [rows[i] for i in keep], wordset)
            report["results"][f"{part}: {name}"] = s
            table.append(f"| {name} | {part} | {s['hits']}/{s['positives']} = **{100 * s['hit_rate']:.1f} %** | "
                         f"{s['false_accepts']}/{s['negatives']} = **{100 * s['false_accept_rate']:.1f} %** |")
    sweep = ["| threshold | hits of the words | false accepts on other words |", "|---|---|---|"]
    for t in args.thresholds:
        s = score([r.text if r.score >= t else "_unknown_" for r in plain], rows, wordset)
        report["results"][f"all clips: custom model at {t:g}"] = s
        sweep.append(f"| {t:.2f} | {s['hits']}/{s['positives']} = {100 * s['hit_rate']:.1f} % | "
                     f"{s['false_accepts']}/{s['negatives']} = {100 * s['false_accept_rate']:.1f} % |")
    table += ["", "Custom model, every clip (all unseen by it):", ""] + sweep
    print("\n".join(table))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "real_eval.json").write_text(json.dumps(report, indent=1))
        (args.out / "real_eval.md").write_text("\n".join(table) + "\n")
        per_clip = [{**r, **{name: said[i] for name, said in answers.items()}} for i, r in enumerate(rows)]
        (args.out / "answers.jsonl").write_text("".join(json.dumps(p) + "\n" for p in per_clip))


if __name__ == "__main__":
    main()
