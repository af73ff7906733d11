"""Hard-negative mining for the bundled `commands` model: run the model the way `speech listen` runs it over
long streams of speech that holds no command, keep the 1 s windows where a command scores high, and write
them as `_unknown_` training clips for the next training round.

    python recipes/commands/mine_negatives.py --model runs/commands/commands/model.pt \
        --manifest data/commands/train.jsonl --noise ../shared/data/background_noise data/commands/noise \
        --out data/commands/mined/round1 [--minutes 60] [--threshold 0.5] [--seed 1]

The streams (speech.data.streams.build_stream, the benchmark's builder) are made of the training manifest's
non-command words only (synthesized words, near misses and the real training speakers' other words: nothing
of the detection benchmark's DEV or TEST speakers), in background noise at 5-20 dB SNR. Every hop's
posteriors come from the live pipeline (speech.bench.detection.stream_posteriors: the energy gate, one
window per hop); a mined window is a local peak of the best command's probability above ``--threshold``,
at least 0.3 s from the next. Writes ``OUT/NNNNN.wav``, ``OUT/mined.jsonl`` (label `_unknown_`, speaker
``mined:<round>``) and ``OUT/summary.json`` (what fired, per label and per word).
"""
from __future__ import annotations

import argparse
import json
import os
import random
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def peaks(scores: np.ndarray, threshold: float, spacing: int) -> list[int]:
    """Hops where ``scores`` is above ``threshold`` and highest within ``spacing`` hops either side."""
    out = []
    for i in np.argsort(-scores):
        if scores[i] <= threshold:
            break
        if all(abs(int(i) - j) > spacing for j in out):
            out.append(int(i))
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--manifest", required=True, help="training manifest whose non-command words make the streams")
    parser.add_argument("--noise", nargs="+", required=True, help="folders of noise WAVs")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--minutes", type=float, default=60.0, help="stream audio to mine (default 60)")
    parser.add_argument("--stream-minutes", type=float, default=5.0, help="length of each stream (default 5)")
    parser.add_argument("--threshold", type=float, default=0.5, help="a window is kept above this command probability")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import torch

    from speech.audio import load_audio
    from speech.bench.detection import stream_posteriors
    from speech.data.manifest import Utterance, read_manifest, write_manifest
    from speech.data.streams import Clip, build_stream
    from speech.transcribe import load_recognizer

    torch.set_num_threads(1)
    recognizer = load_recognizer(args.model, "cpu", batch_size=64, engine="auto", threads=1)
    rate = recognizer.sample_rate
    window = int(round(recognizer.window_seconds * rate))
    command_index = [i for i, l in enumerate(recognizer.labels) if l in COMMANDS]
    rows = {r.audio_filepath: r for r in read_manifest(args.manifest)
            if (r.label not in COMMANDS and not r.label.startswith("_")) or r.label == "_unknown_"}
    rows = [rows[k] for k in sorted(rows)]
    random.Random(args.seed).shuffle(rows)
    noise = [load_audio(str(p), rate).numpy() for d in args.noise for p in sorted(Path(d).glob("*.wav"))]
    args.out.mkdir(parents=True, exist_ok=True)
    round_name = args.out.name
    streams = max(1, int(round(args.minutes / args.stream_minutes)))
    per_stream = len(rows) // streams
    mined, fired_labels, fired_words = [], Counter(), Counter()
    for s in range(streams):
        chunk = rows[s * per_stream : (s + 1) * per_stream]
        clips = [Clip(load_audio(r.audio_filepath, rate).numpy(), r.text or r.label, False, r.speaker, "train")
                 for r in chunk]
        snr = random.Random(f"{args.seed}-{s}").uniform(5.0, 20.0)
        audio, events = build_stream(clips, noise, sample_rate=rate, seed=args.seed * 1000 + s, snr_db=snr,
                                     seconds=args.stream_minutes * 60, gap=(0.2, 1.2))
        post = stream_posteriors(recognizer, audio, gate_db=10.0)
        best = post.probabilities[:, command_index].max(axis=1) if len(post.times) else np.zeros(0)
        for i in peaks(best, args.threshold, spacing=3):
            end = int(round(post.times[i] * rate))
            piece = audio[max(0, end - window) : end]
            if len(piece) < window:
                continue
            label = recognizer.labels[command_index[int(post.probabilities[i, command_index].argmax())]]
            t = post.times[i]
            words = [e.word for e in events if e.end > t - window / rate and e.start < t]
            path = args.out / f"{len(mined):05d}.wav"
            tmp = path.with_suffix(f".tmp{os.getpid()}.wav")
            sf.write(str(tmp), piece, rate, subtype="PCM_16")
            os.replace(tmp, path)
            mined.append(Utterance(str(path.resolve()), window / rate, label="_unknown_", text=" ".join(words),
                                   speaker=f"mined:{round_name}"))
            fired_labels[label] += 1
            fired_words.update(words)
        print(f"stream {s + 1}/{streams}: {args.stream_minutes:g} min at {snr:.1f} dB, {len(mined)} windows so far",
              flush=True)
    write_manifest(args.out / "mined.jsonl", mined)
    summary = {"model": args.model, "minutes": streams * args.stream_minutes, "threshold": args.threshold,
               "windows": len(mined), "per_hour": round(len(mined) / (streams * args.stream_minutes) * 60, 1),
               "fired_as": dict(fired_labels.most_common()), "words": dict(fired_words.most_common(40))}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
