"""Build the `commands` recipe's manifests from synthesized speech, the real clips in the shared data,
and noise; record the speaker split.

    python recipes/commands/build_manifests.py --synth DIR --noise DIR --shared ../shared/data --out DIR

Real Speech Commands v0.02 test-set speakers (`speech_commands_v2_test_dev`, 72 speakers) are split by a
seeded shuffle: `--train-speakers` of them are trained on, `--valid-speakers` choose the epoch, the
rest are the test set, never trained on or used to choose. `split.json` lists which is which.
`--negatives` / `--near-misses` add synthesized words that are no command (recipes/commands/negatives.py),
the near misses kept (up to `--near-miss-limit`), the others pooled with the other unknown words before sampling. FSDD digits and the
v1 sample are real negative speech of the detection benchmark (`speech bench detection`): by default nothing
of them is trained on (`--fsdd N`, `--v1-sample` put them back, as before 2026-12-01).
Other words than the ten commands keep their word as label: training maps them to `_unknown_`
(`data.labels` fixes the 12 classes) and a CTC model uses their text.
"""
from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

from speech.cli import main as cli_main
from speech.data.manifest import Utterance, read_manifest, write_manifest
from speech.data.speech_commands import make_silence_clips

COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def unknown_sample(rows: list[Utterance], per_class: int, factor: float, seed: int) -> list[Utterance]:
    """Keep all command rows and a seeded sample of the others, about ``factor`` x one class's count."""
    commands = [r for r in rows if r.label in COMMANDS or r.label == "_silence_"]
    others = [r for r in rows if r not in commands]
    random.Random(seed).shuffle(others)
    return commands + others[: int(per_class * factor)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth", required=True, help="output folder of `speech synth` (synth.jsonl)")
    parser.add_argument("--phrases", help="output folder of `speech synth --phrases` (for the CTC manifest)")
    parser.add_argument("--noise", required=True, help="folder of synthesized noise WAVs (`speech synth --noise`)")
    parser.add_argument("--shared", required=True, help="the shared data folder (fsdd, speech_commands_*, background_noise)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--negatives", nargs="*", default=[], help="`speech synth` folders of other words (_unknown_)")
    parser.add_argument("--near-misses", nargs="*", default=[], help="`speech synth` folders of near misses (kept up to --near-miss-limit)")
    parser.add_argument("--near-miss-limit", type=int, default=0, help="near-miss clips kept, a seeded sample (default 0: all)")
    parser.add_argument("--fsdd", type=int, default=0, help="FSDD digits trained on as unknown words (default 0)")
    parser.add_argument("--v1-sample", action="store_true", help="train on the speech_commands_v1_sample clips too")
    parser.add_argument("--engines", default="flite,festival,espeak", help="synthesis engines to train on")
    parser.add_argument("--train-speakers", type=int, default=36)
    parser.add_argument("--valid-speakers", type=int, default=0,
                        help="speakers that choose the epoch (0: keep the last epoch, train on more voices)")
    parser.add_argument("--unknown-factor", type=float, default=3.0)
    parser.add_argument("--real-repeat", type=int, default=5,
                        help="list each real training clip this many times (real voices are scarce)")
    parser.add_argument("--silence", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out, shared = Path(args.out), Path(args.shared)
    out.mkdir(parents=True, exist_ok=True)

    # real: the v2 test-set part, split by speaker
    dev = out / "sc_v2_dev"
    cli_main(["prepare", "speech-commands", "--root", str(shared / "speech_commands_v2_test_dev"), "--task", "12", "--out", str(dev)])
    dev_rows = read_manifest(dev / "test.jsonl")
    speakers = sorted({r.speaker for r in dev_rows if r.speaker})
    random.Random(args.seed).shuffle(speakers)
    train_spk = set(speakers[: args.train_speakers])
    valid_spk = set(speakers[args.train_speakers : args.train_speakers + args.valid_speakers])
    test_spk = set(speakers) - train_spk - valid_spk
    silence = [r for r in dev_rows if r.label == "_silence_"]
    random.Random(args.seed + 1).shuffle(silence)
    n_sil_train = len(silence) * len(train_spk) // len(speakers)
    n_sil_valid = len(silence) * len(valid_spk) // len(speakers)
    split_dev = {
        "train": [r for r in dev_rows if r.speaker in train_spk] + silence[:n_sil_train],
        "valid": [r for r in dev_rows if r.speaker in valid_spk] + silence[n_sil_train : n_sil_train + n_sil_valid],
        "test": [r for r in dev_rows if r.speaker in test_spk] + silence[n_sil_train + n_sil_valid :],
    }
    # real: the v1 sample (all of it trains; its words keep their names) and FSDD digits (unknown words)
    v1 = out / "sc_v1_sample"
    cli_main(["prepare", "speech-commands", "--root", str(shared / "speech_commands_v1_sample"), "--version", "1",
              "--task", "35", "--out", str(v1)])
    v1_rows = [r for s in ("train", "valid", "test") for r in read_manifest(v1 / f"{s}.jsonl")] if args.v1_sample else []
    fsdd = out / "fsdd"
    cli_main(["prepare", "fsdd", "--root", str(shared / "fsdd"), "--split", "upstream", "--out", str(fsdd)])
    fsdd_rows = [r for s in ("train", "valid", "test") for r in read_manifest(fsdd / f"{s}.jsonl")]
    random.Random(args.seed + 2).shuffle(fsdd_rows)
    fsdd_rows = fsdd_rows[: args.fsdd]

    # synthesized words from the chosen engines
    engines = set(args.engines.split(","))
    synth_rows = [r for r in read_manifest(Path(args.synth) / "synth.jsonl") if r.speaker.split(":")[0] in engines]

    def negative_rows(folders: list[str]) -> list[Utterance]:
        rows = [r for f in folders for r in read_manifest(Path(f) / "synth.jsonl") if r.speaker.split(":")[0] in engines]
        for r in rows:  # the word as label (not a command: negatives.py leaves the commands out)
            r.label = r.text or r.label
        return [r for r in rows if r.label not in COMMANDS]

    other_rows, near_rows = negative_rows(args.negatives), negative_rows(args.near_misses)
    if args.near_miss_limit and len(near_rows) > args.near_miss_limit:
        random.Random(args.seed + 5).shuffle(near_rows)
        near_rows = near_rows[: args.near_miss_limit]

    # silence: 1 s cuts of the background noise recordings and of synthesized noise, at random levels
    noise_files = sorted(Path(shared / "background_noise").glob("*.wav")) + sorted(Path(args.noise).glob("*.wav"))
    sil = make_silence_clips(noise_files, {"train": args.silence, "valid": 0, "test": 0}, out / "silence", args.seed, [])

    # the CTC model's training set: every word (no unknown sampling), the phrases, a share of silence
    phrase_rows = []
    if args.phrases:
        phrase_rows = [r for r in read_manifest(Path(args.phrases) / "synth.jsonl") if r.speaker.split(":")[0] in engines]
    train_ctc = synth_rows + phrase_rows + v1_rows + fsdd_rows + split_dev["train"] + sil["train"][: args.silence // 4]
    random.Random(args.seed + 4).shuffle(train_ctc)
    write_manifest(out / "train_ctc.jsonl", train_ctc)
    write_manifest(out / "test_words.jsonl", [r for r in split_dev["test"] if r.label != "_silence_"])

    train = synth_rows + other_rows + v1_rows + fsdd_rows + split_dev["train"] + sil["train"]
    per_class = max(Counter(r.label for r in train if r.label in COMMANDS).values())
    train = unknown_sample(train, per_class, args.unknown_factor, args.seed) + near_rows
    synth_ids = {id(r) for r in synth_rows + other_rows + near_rows} | {id(r) for r in sil["train"]}
    train = [r for r in train for _ in range(1 if id(r) in synth_ids else args.real_repeat)]
    random.Random(args.seed + 3).shuffle(train)
    write_manifest(out / "train.jsonl", train)
    write_manifest(out / "valid.jsonl", split_dev["valid"])
    write_manifest(out / "test.jsonl", split_dev["test"])
    split = {"seed": args.seed, "engines": sorted(engines), "fsdd_clips": len(fsdd_rows), "v1_sample": args.v1_sample,
             "negatives": {"other_words": len(other_rows), "near_misses": len(near_rows)},
             "train_speakers": sorted(train_spk),
             "valid_speakers": sorted(valid_spk), "test_speakers": sorted(test_spk)}
    (out / "split.json").write_text(json.dumps(split, indent=1))

    def label12(r):
        return r.label if r.label in COMMANDS or r.label == "_silence_" else "_unknown_"

    for name, rows in (("train", train), ("valid", split_dev["valid"]), ("test", split_dev["test"])):
        counts = Counter(label12(r) for r in rows)
        print(f"{name}: {len(rows)} clips " + " ".join(f"{k}={counts[k]}" for k in COMMANDS + ["_unknown_", "_silence_"]))
    sources = defaultdict(int)
    for r in train:
        sources["synthesized (words, noise)" if id(r) in synth_ids else "real"] += 1
    print(f"train sources: {dict(sources)}; speakers: train {len(train_spk)}, valid {len(valid_spk)}, test {len(test_spk)}")


if __name__ == "__main__":
    main()
