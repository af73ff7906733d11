"""telephone.py MANIFEST OUT: the clips of MANIFEST as heard down a G.711 telephone line
(``speech.augment.telephone_channel``: 8 kHz, the 300-3,400 Hz voice band and 8-bit mu-law, deterministic), written
to OUT/audio/ at each clip's own sample rate, with OUT/test.jsonl listing them under the same labels, for
``speech evaluate``. README.md, "The telephone line, and more tried on the MFCC recipe"."""
import argparse
import json
import os
from pathlib import Path

import soundfile as sf
import torch

from speech.augment import telephone_channel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest")
    parser.add_argument("out")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in open(args.manifest)]
    written = []
    for i, row in enumerate(rows):
        audio, rate = sf.read(row["audio_filepath"], dtype="float32", always_2d=True)
        wave = torch.from_numpy(audio.mean(1))[None, :]
        line = telephone_channel(wave, rate)[0].numpy()
        path = out / "audio" / f"{i:05d}_{Path(row['audio_filepath']).stem}.wav"
        tmp = path.with_suffix(".tmp.wav")
        sf.write(tmp, line, rate, subtype="PCM_16")
        os.replace(tmp, path)
        written.append({**row, "audio_filepath": str(path.resolve())})
    tmp = out / "test.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in written))
    os.replace(tmp, out / "test.jsonl")
    print(f"{len(written)} clips -> {out / 'test.jsonl'}")


if __name__ == "__main__":
    main()
