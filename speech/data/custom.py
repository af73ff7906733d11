"""``speech prepare commands``: a training set for your own command words, from nothing but offline speech
synthesis.

    speech prepare commands --commands "lights on,lights off,open the door" --out DIR

Each command is synthesized with every installed engine (``--variants`` speakers each). Other speech is
``_unknown_``: the ``--negative-words`` most common English words (wordfreq), near misses of each
command word (words of the 20,000 most common whose espeak-ng phonemes are one edit away, e.g. "house" ->
"mouse", "how's"), the single words and partial phrases of multi-word commands ("lights", "open the"),
and pairs of common words. ``_silence_`` is 1 s cuts of synthesized noise (and of ``--noise-dir``
recordings). Speakers (``engine:voice:variant``) are split: every fifth variant is the validation set,
which ``speech train`` uses to choose the epoch and the operating point; no speaker is in both, and a
fifth of the unknown words (by a hash of the text) are validation only, so the operating point is
measured on words the model never heard.

Writes ``train.jsonl``, ``valid.jsonl``, ``test.jsonl`` (empty: test on real speech of your own) and
``commands.json`` (the commands, engines, counts, the negative words and near misses used). The
synthesized clips go to ``--synth-dir`` (resumable and shared between runs, default
``$SPEECH_CACHE_DIR/synth`` or ``~/.cache/speech/synth``), so a second run with more commands only
synthesizes the new ones.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

from speech.data.manifest import Utterance, read_manifest
from speech.data.prepare import PrepareError, default_cache_dir, finish

UNKNOWN, SILENCE = "_unknown_", "_silence_"
NEAR_MISS_VOCABULARY = 20000  # common words searched for near misses
VALID_EVERY = 5  # every fifth synthesized speaker (variant) is validation
NEGATIVE_SPEAKER_GROUPS = 10  # unknown words are spoken by this many seeded speaker sets per engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--commands", required=True,
                        help="comma-separated commands, words or phrases: 'lights on,lights off,open the door'")
    parser.add_argument("--out", required=True, type=Path, help="where the manifests go")
    parser.add_argument("--engines", default=None,
                        help="comma-separated synthesis engines (default: every installed one of speech synth's defaults)")
    parser.add_argument("--variants", type=int, default=40, help="synthesized speakers per command per engine (default 40)")
    parser.add_argument("--negative-words", type=int, default=600, help="common English words as unknown speech (default 600)")
    parser.add_argument("--negative-variants", type=int, default=1,
                        help="speakers per unknown word per engine (default 1; the words are spread over "
                             f"{NEGATIVE_SPEAKER_GROUPS} speaker sets)")
    parser.add_argument("--near-misses", type=int, default=12, help="near-miss words per command word (default 12; 0: none)")
    parser.add_argument("--unknown-factor", type=float, default=4.0,
                        help="unknown clips kept, as a multiple of one command's count (default 4)")
    parser.add_argument("--clip-seconds", type=float, default=1.5, help="clip length the synthesized speech is centred in (default 1.5)")
    parser.add_argument("--noise-dir", type=Path, default=None, help="background noise recordings to cut silence clips from (optional)")
    parser.add_argument("--synth-dir", type=Path, default=None, help="synthesized clips (resumable; default: the cache folder)")
    parser.add_argument("--jobs", type=int, default=2, help="synthesis processes (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def parse_commands(text: str) -> list[str]:
    """``"Lights on, lights off"`` -> ``["lights on", "lights off"]`` (lowercase, single spaces, no duplicates)."""
    out: list[str] = []
    for part in text.split(","):
        phrase = " ".join(re.sub(r"[^\w' -]", " ", part.lower()).split())
        if phrase and phrase not in out:
            out.append(phrase)
    return out


def common_words(count: int) -> list[str]:
    """The ``count`` most frequent English words (wordfreq), letters and apostrophes only."""
    try:
        from wordfreq import top_n_list
    except ImportError:
        raise PrepareError("unknown speech needs the wordfreq package (pip install 'speech[synth]')") from None
    words = [w for w in top_n_list("en", count * 2) if re.fullmatch(r"[a-z][a-z']*", w) and len(w) > 1 or w in ("a", "i")]
    return words[:count]


def phonemes(words: list[str]) -> dict[str, str]:
    """espeak-ng's English phoneme strings of ``words`` (stress marks dropped), one call for all of them;
    empty when espeak-ng is not installed."""
    binary = shutil.which("espeak-ng") or shutil.which("espeak")
    if binary is None or not words:
        return {}
    text = "".join(f"{w}.\n" for w in words)
    try:
        proc = subprocess.run([binary, "-q", "-x", "-v", "en-us"], input=text, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out = proc.stdout if proc.returncode == 0 else ""
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if len(lines) != len(words):  # espeak joined or split a clause: give up rather than misalign
        return {}
    return {w: re.sub(r"[',_:!]", "", p) for w, p in zip(words, lines)}


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def near_misses(command_words: list[str], vocabulary: list[str], per_word: int) -> dict[str, list[str]]:
    """For each command word, up to ``per_word`` vocabulary words whose phonemes are one edit (up to two
    for words of 6+ phonemes) from its own, the most common first; homophones (the same phonemes: "know" for
    "no") are left out, since they are the command to a listener; ``{}`` without espeak-ng."""
    if per_word <= 0:
        return {}
    table = phonemes(sorted(set(command_words) | set(vocabulary)))
    found: dict[str, list[str]] = {}
    for word in command_words:
        target = table.get(word)
        if not target:
            continue
        limit = 2 if len(target) >= 6 else 1
        close = [v for v in vocabulary if v != word and v in table and v not in command_words and table[v] != target
                 and abs(len(table[v]) - len(target)) <= limit and edit_distance(table[v], target) <= limit]
        found[word] = close[:per_word]
    return found


def negative_texts(commands: list[str], words: list[str], misses: dict[str, list[str]], seed: int) -> list[str]:
    """What ``_unknown_`` says: common words, near misses, parts of multi-word commands, word pairs; never
    a command itself."""
    command_set = set(commands)
    parts = set()
    for c in commands:
        tokens = c.split()
        for n in range(1, len(tokens)):
            parts.update(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    rng = random.Random(f"{seed}-pairs")
    pairs = {f"{rng.choice(words[:200])} {rng.choice(words)}" for _ in range(len(words) // 4)}
    texts = list(dict.fromkeys([*words, *(w for ws in misses.values() for w in ws), *sorted(parts), *sorted(pairs)]))
    return [t for t in texts if t not in command_set]


def installed_engines(requested: str | None) -> dict:
    from speech.synth.engines import DEFAULT_ENGINES, ENGINES, find_voices

    names = [e.strip() for e in requested.split(",")] if requested else list(DEFAULT_ENGINES)
    unknown = [e for e in names if e not in ENGINES]
    if unknown:
        raise PrepareError(f"--engines: unknown engine {unknown[0]!r} (choose from {', '.join(ENGINES)})")
    voices = {e: v for e, v in find_voices(names).items() if v}
    if not voices:
        raise PrepareError("no usable synthesis engine (install flite, festival or espeak-ng, or pip install 'speech[synth]')")
    return voices


def synthesize_items(items: list[tuple[str, str]], folder: Path, voices: dict, variants: int, clip_seconds: float,
                     args: argparse.Namespace, seed: int | None = None, manifest: str = "") -> list[Utterance]:
    """Synthesize (label, text) items into ``folder / manifest`` (resumable); the kept clips' rows."""
    from speech.synth import ClipSettings, synthesize

    if not items:
        return []
    seed = args.seed if seed is None else seed
    out = (folder / manifest if manifest else folder) / f"seed{seed}"  # a clip's file name holds no seed
    settings = ClipSettings(clip_seconds=clip_seconds, max_speech=None, use_sox=bool(shutil.which("sox")))
    synthesize(items, out, variants=variants, seed=seed, jobs=args.jobs, settings=settings,
               progress=not args.quiet, voices=voices)
    # the folder is shared between runs: keep only what this run planned (its engines, voices, variants)
    planned = {(e, v) for e, vs in voices.items() for v in vs}
    rows = []
    for u in read_manifest(out / "synth.jsonl"):
        engine, voice, variant = u.speaker.rsplit(":", 2)
        if (engine, voice) in planned and int(variant) < variants:
            rows.append(u)
    return rows


def validation_speaker(u: Utterance) -> bool:
    return int(u.speaker.rsplit(":", 1)[-1]) % VALID_EVERY == VALID_EVERY - 1


def validation_word(text: str) -> bool:
    return zlib.crc32(text.encode("utf-8")) % VALID_EVERY == VALID_EVERY - 1


def run(args: argparse.Namespace) -> int:
    from speech.data.speech_commands import make_silence_clips
    from speech.synth import write_noise
    from speech.synth.plan import safe_name

    commands = parse_commands(args.commands)
    if not commands:
        raise PrepareError("--commands: no command given")
    if args.variants < VALID_EVERY:
        raise PrepareError(f"--variants must be at least {VALID_EVERY} (every {VALID_EVERY}th speaker is validation)")
    voices = installed_engines(args.engines)
    synth_dir = args.synth_dir or default_cache_dir() / "synth"
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    # what to say
    vocabulary = common_words(max(args.negative_words, NEAR_MISS_VOCABULARY if args.near_misses else 0))
    command_words = sorted({w for c in commands for w in c.split()})
    misses = near_misses(command_words, vocabulary, args.near_misses)
    if args.near_misses and not misses:
        print("note: no near misses: finding them needs the espeak-ng program (apt-get install espeak-ng)", file=sys.stderr)
    negatives = negative_texts(commands, vocabulary[: args.negative_words], misses, args.seed)

    # synthesize: the commands, then unknown speech (labels name the folder; manifests get the classes)
    positive_rows = synthesize_items([(safe_name(c), c) for c in commands], synth_dir / "commands", voices,
                                     args.variants, args.clip_seconds, args)
    keep_commands = {safe_name(c): c for c in commands}
    positive_rows = [u for u in positive_rows if u.label in keep_commands]
    for u in positive_rows:
        u.label = u.text = keep_commands[u.label]
    # unknown words in groups, each group with its own seed: its own speakers (pitch, rate, voice order)
    negative_rows = []
    for group in range(NEGATIVE_SPEAKER_GROUPS):
        texts = [t for t in negatives if zlib.crc32(f"group-{t}".encode()) % NEGATIVE_SPEAKER_GROUPS == group]
        negative_rows += synthesize_items([(safe_name(t), t) for t in texts], synth_dir / "unknown", voices,
                                          max(args.negative_variants, 1), args.clip_seconds, args,
                                          seed=args.seed * 1000 + group + 1, manifest=f"group{group}")
    wanted = {safe_name(t) for t in negatives}
    negative_rows = [u for u in negative_rows if u.label in wanted and u.text not in commands]
    for u in negative_rows:
        u.label = UNKNOWN

    # silence: synthesized noise (and recordings), 1 s cuts
    noise_dir = out / "noise"
    noise_files = write_noise(noise_dir, 60.0, 16000, args.seed, [u.audio_filepath for u in negative_rows[:400]])
    if args.noise_dir is not None and not args.noise_dir.is_dir():  # e.g. no shared data on this machine
        print(f"note: --noise-dir {args.noise_dir}: no such folder; silence from synthesized noise only", file=sys.stderr)
    elif args.noise_dir is not None:
        noise_files = sorted(args.noise_dir.glob("*.wav")) + list(noise_files)
    per_command = max(Counter(u.label for u in positive_rows).values(), default=0)
    if not per_command:
        raise PrepareError("no command clip survived synthesis (see the synth summary above)")

    # commands: validation speakers apart; unknown speech: validation words apart too (the operating point
    # is then chosen on words the model never heard), and no validation speaker in training
    splits: dict[str, list[Utterance]] = {"train": [], "valid": [], "test": []}
    for u in positive_rows:
        splits["valid" if validation_speaker(u) else "train"].append(u)
    for u in negative_rows:
        if validation_word(u.text):
            splits["valid"].append(u)
        elif not validation_speaker(u):
            splits["train"].append(u)
    rng = random.Random(args.seed)
    for split in ("train", "valid"):  # unknown speech sampled to a multiple of one command's count
        unknown = [u for u in splits[split] if u.label == UNKNOWN]
        known = [u for u in splits[split] if u.label != UNKNOWN]
        per = max(Counter(u.label for u in known).values(), default=0)
        rng.shuffle(unknown)
        splits[split] = known + unknown[: int(per * args.unknown_factor)]
    silence_counts = {"train": per_command * (VALID_EVERY - 1) // VALID_EVERY, "valid": per_command // VALID_EVERY, "test": 0}
    bad: list[str] = []
    silence = make_silence_clips([Path(p) for p in noise_files], silence_counts, out / "silence", args.seed, bad)
    for split in splits:
        splits[split] += silence[split]
        random.Random(f"{args.seed}-{split}").shuffle(splits[split])
    summary = {
        "commands": commands, "engines": {e: len(v) for e, v in voices.items()}, "variants": args.variants,
        "seed": args.seed, "valid_speakers": f"variant % {VALID_EVERY} == {VALID_EVERY - 1}",
        "near_misses": misses, "negative_texts": len(negatives), "synth_dir": str(synth_dir),
        "counts": {s: dict(Counter(u.label for u in rows)) for s, rows in splits.items()},
    }
    tmp = out / f".commands.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out / "commands.json")
    for word, close in misses.items():
        print(f"near misses of {word!r}: {', '.join(close) or '-'}")
    return finish(out, splits, bad, [*commands, UNKNOWN, SILENCE])
