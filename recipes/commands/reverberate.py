"""reverberate.py MANIFEST RIR_DIR OUT: the clips of MANIFEST as heard in the rooms of RIR_DIR (a folder of room
impulse responses, as ``augment.rir_dir`` takes: measured ones, or ``speech synth --rooms`` with a seed the model
was not trained with), written to OUT/audio/ at each clip's own rate with OUT/test.jsonl listing them under the
same labels, for ``speech evaluate``. Clip i hears room ``i mod rooms`` of a seeded shuffle (``--seed``), its
tail cut at the clip's end and its peak level kept (``speech.augment.reverberate``, as in training); the room
of each clip is written into its row (``room``: its index in the bank, ``room_file`` and ``room_channel``, and
``rt60`` where a ``rooms.jsonl`` of ``speech synth --rooms`` lists the file), for ``room_report.py``.
README.md, "Rooms"."""
import argparse
import json
import random
from pathlib import Path

import soundfile as sf
import torch

from speech.audio import save_audio
from speech.augment import load_rir_bank_with_sources, reverberate
from speech.data.manifest import write_manifest


def measured_rt60(rir_dir: str) -> dict[str, float]:
    """Each room file's measured RT60 from the ``rooms.jsonl`` that ``speech synth --rooms`` writes beside
    them (absolute path -> seconds); empty for folders without one (measured responses)."""
    found = {}
    for folder in (f.strip() for f in rir_dir.split(",") if f.strip()):
        listing = Path(folder) / "rooms.jsonl"
        if listing.is_file():
            for line in listing.read_text().splitlines():
                row = json.loads(line)
                found[str((Path(folder) / row["audio_filepath"]).resolve())] = row.get("rt60_measured")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest")
    parser.add_argument("rir_dir")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0, help="which clip hears which room (default 0)")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in open(args.manifest)]
    banks: dict[int, torch.Tensor] = {}  # one bank per sample rate met (the same rooms at each)
    order: list[int] = []
    sources: list[tuple[str, int]] = []
    rt60 = measured_rt60(args.rir_dir)
    written = []
    for i, row in enumerate(rows):
        audio, rate = sf.read(row["audio_filepath"], dtype="float32", always_2d=True)
        if rate not in banks:
            banks[rate], sources = load_rir_bank_with_sources(args.rir_dir, rate)
            if not order:
                order = list(range(banks[rate].shape[0]))
                random.Random(args.seed).shuffle(order)
        bank = banks[rate]
        room = order[i % len(order)]
        wave = torch.from_numpy(audio.mean(1))[None, :]
        wet = reverberate(wave, torch.tensor([wave.shape[1]]), bank[room: room + 1])[0].numpy()
        path = out / "audio" / f"{i:05d}_{Path(row['audio_filepath']).stem}.wav"
        save_audio(path, wet, rate)
        room_file, channel = sources[room]
        written.append({**row, "audio_filepath": str(path.resolve()), "room": room, "room_file": Path(room_file).name,
                        "room_channel": channel, "rt60": rt60.get(str(Path(room_file).resolve()))})
    write_manifest(out / "test.jsonl", written)
    print(f"{len(written)} clips in {bank.shape[0]} rooms -> {out / 'test.jsonl'}")


if __name__ == "__main__":
    main()
