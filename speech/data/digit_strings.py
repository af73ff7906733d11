"""Write connected digit strings as WAV files + a manifest, so a fixed test set can be scored by
``speech evaluate`` and ``speech transcribe`` (training builds the same strings on the fly).

    python -m speech.data.digit_strings --manifest data/fsdd/fold_lucas/test.jsonl --count 300 --out DIR
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speech.audio import save_audio
from speech.data.dataset import AudioDataset, DigitStringsDataset
from speech.data.manifest import Utterance, read_manifest, write_manifest
from speech.text import Vocabulary


def write_digit_strings(manifest: str, out: str, count: int, seed: int, sample_rate: int = 16000,
                        min_digits: int = 2, max_digits: int = 7) -> Path:
    """Build ``count`` strings from the single-digit clips of ``manifest``; returns the manifest path."""
    vocab = Vocabulary.characters()
    words = AudioDataset(read_manifest(manifest), sample_rate, lambda u: 0)
    strings = DigitStringsDataset(words, vocab, count, seed, min_digits, max_digits)
    out_dir = Path(out)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        wave, tokens = strings[i]
        path = out_dir / "audio" / f"string_{i:05d}.wav"
        save_audio(path, wave.clamp(-1, 1), sample_rate)
        speaker = words.utterances[0].speaker if len(strings.speakers) == 1 else None
        rows.append(Utterance(str(path.resolve()), len(wave) / sample_rate, text=vocab.decode(tokens), speaker=speaker))
    target = out_dir / "strings.jsonl"
    write_manifest(target, rows)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True, help="single-digit clips (e.g. a held-out speaker's test.jsonl)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-digits", type=int, default=2)
    parser.add_argument("--max-digits", type=int, default=7)
    args = parser.parse_args(argv)
    path = write_digit_strings(args.manifest, args.out, args.count, args.seed, min_digits=args.min_digits,
                               max_digits=args.max_digits)
    print(f"wrote {args.count} strings to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
