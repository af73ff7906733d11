"""What the bundled `commands` model hears as `_unknown_` besides the 25 other Speech Commands words: the most
common English words and near misses of each command, written as two `speech synth --phrases` files.

    python recipes/commands/negatives.py --out data/commands_negatives [--common 2000] [--near-misses 20]

- ``common.txt``: the ``--common`` most frequent English words (wordfreq), without the 35 Speech Commands
  words (synthesized apart) and without homophones of a command (espeak-ng says them with the same phonemes:
  "know", "write"), which would teach the model that a command is not one.
- ``near_misses.txt``: the near misses the live streams showed and the issue lists (two/do/to, no/though/nine,
  go/so/grow/toe, ...) and, with espeak-ng, every common word whose phonemes are one edit from a command's
  (speech.data.custom.near_misses), homophones left out; synthesized with more speakers each.
``negatives.json`` records both lists and the homophones dropped.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from speech.data.custom import common_words, near_misses, phonemes

COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SPEECH_COMMANDS_WORDS = set(COMMANDS) | {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "bed", "bird", "cat", "dog",
    "happy", "house", "marvin", "sheila", "tree", "wow", "backward", "forward", "follow", "learn", "visual"}
# the confusions measured on the live streams and listed in issue #16, beside the phoneme search
LISTED = {
    "two": "do to too", "no": "though nine know snow", "go": "so grow toe goat", "on": "one won an in",
    "off": "of cough four awful", "up": "cup app upper", "down": "town now done", "left": "lift let loft",
    "right": "light eight five ride wright", "stop": "top shop stock", "yes": "chess guess yet less",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--common", type=int, default=2000, help="most frequent English words (default 2000)")
    parser.add_argument("--near-misses", type=int, default=20, help="phoneme near misses per command (default 20)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    vocabulary = common_words(20000)
    listed = sorted({w for words in LISTED.values() for w in words.split()} | {"two", "four", "five", "nine", "one", "eight"})
    misses = near_misses(COMMANDS, vocabulary, args.near_misses)
    table = phonemes(sorted(set(COMMANDS) | set(vocabulary[: args.common]) | set(listed)))
    command_sounds = {table[c] for c in COMMANDS if c in table}
    homophones = sorted(w for w, p in table.items() if p in command_sounds and w not in COMMANDS)

    def keep(word: str) -> bool:
        return word not in COMMANDS and word not in homophones

    near = sorted({w for w in listed if keep(w)} | {w for ws in misses.values() for w in ws if keep(w)})
    common = [w for w in vocabulary[: args.common] if keep(w) and w not in SPEECH_COMMANDS_WORDS and w not in near]
    (args.out / "common.txt").write_text("".join(f"{w}\n" for w in common))
    (args.out / "near_misses.txt").write_text("".join(f"{w}\n" for w in near if w not in SPEECH_COMMANDS_WORDS))
    (args.out / "negatives.json").write_text(json.dumps(
        {"common": len(common), "near_misses": near, "phoneme_near_misses": misses, "homophones_dropped": homophones,
         "espeak_phonemes": bool(table)}, indent=1))
    print(f"negatives: {len(common)} common words, {len(near)} near misses; homophones left out: {', '.join(homophones) or '-'}")


if __name__ == "__main__":
    main()
