"""tta.py MANIFEST MODEL.pt [MODEL.pt ...] [--warps 0.9 1 1.1] [--speeds 0.9 1 1.1] [--tempos 0.8 1]: test-time
augmentation, measured. Each clip is scored once per vocal-tract-length warp of the front end's filter bank
(the training augmentation ``augment.vtlp_*``, here at test time) and once per speaking rate (the waveform
resampled, as ``augment.speeds``) and once per tempo (feature frames resampled in time, pitch kept, as
``augment.tempo_*``); prints the clip accuracy of every single view and of the mean posterior
of all views (and of all models' views). README.md, "The telephone line, and more tried on the MFCC recipe"."""
import argparse
import json

import numpy as np
import torch
import torchaudio.functional as AF

from speech.audio import load_audio
from speech.augment import AugmentConfig, TempoPerturb
from speech.checkpoint import load_model
from speech.data.dataset import fit_to_length


def posteriors(model, waves: list[torch.Tensor], warp: float, tempo: float = 1.0, batch: int = 50) -> np.ndarray:
    """``(clips, classes)`` softmax of ``model`` on ``waves`` (padded in batches, as ``speech evaluate``),
    its front end's filter bank warped by ``warp``, its feature frames resampled in time by ``tempo`` (as
    ``augment.tempo_*``: > 1 is faster)."""
    retime = TempoPerturb(AugmentConfig(tempo_prob=1.0, tempo_min=tempo, tempo_max=tempo))
    out = []
    with torch.no_grad():
        for start in range(0, len(waves), batch):
            group = waves[start:start + batch]
            lengths = torch.tensor([len(w) for w in group])
            x = torch.zeros(len(group), int(lengths.max()))
            for row, w in enumerate(group):
                x[row, :len(w)] = w
            w = None if warp == 1.0 else torch.full((len(x),), float(warp))
            feats, n = model.front_end(x, lengths, w)  # the model's own features and normalization, warped
            if tempo != 1.0:
                feats, n = retime(feats, n)
            logits, _ = model.forward_features(feats, n)
            out.append(torch.softmax(logits, -1).numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--warps", type=float, nargs="+", default=[0.9, 0.95, 1.0, 1.05, 1.1])
    parser.add_argument("--speeds", type=float, nargs="+", default=[1.0])
    parser.add_argument("--tempos", type=float, nargs="+", default=[1.0])
    parser.add_argument("--views", nargs="+", metavar="SPEED:WARP:TEMPO",
                        help="these views only, instead of every combination of --speeds, --warps and --tempos")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in open(args.manifest)]
    everything = []
    if args.views:
        wanted = [tuple(float(x) for x in v.split(":")) for v in args.views]
        if any(len(v) != 3 for v in wanted):
            parser.error("--views takes SPEED:WARP:TEMPO triples, e.g. 1:1:1 0.9:1.1:1")
    else:
        wanted = [(s, w, t) for s in args.speeds for w in args.warps for t in args.tempos]
    for path in args.models:
        model = load_model(path)
        rate, pad = model.sample_rate, int(round(1.0 * model.sample_rate))
        ref = np.array([model.labels.index(r.get("label", r.get("text"))) for r in rows])
        raw = [torch.as_tensor(load_audio(r["audio_filepath"], rate)).reshape(-1) for r in rows]
        views = {}
        for speed in sorted({v[0] for v in wanted}):
            # speed s: the waveform read as recorded at s x its rate (s < 1: slower, pitch and formants x s), as
            # augment.speeds
            waves = raw if speed == 1.0 else [AF.resample(w, int(round(rate * speed)), rate) for w in raw]
            waves = [fit_to_length(w, pad) if len(w) < pad else w for w in waves]  # as Recognizer
            for view in (v for v in wanted if v[0] == speed):
                views[view] = posteriors(model, waves, view[1], view[2])
        for (speed, warp, tempo), p in views.items():
            print(f"{path}: speed {speed:g} warp {warp:g} tempo {tempo:g}: {100 * (p.argmax(1) == ref).mean():.1f} %")
        mean = np.mean(list(views.values()), 0)
        print(f"{path}: mean of {len(views)} views: {100 * (mean.argmax(1) == ref).mean():.1f} %")
        everything.extend(views.values())
    if len(args.models) > 1:
        print(f"all models, all views: {100 * (np.mean(everything, 0).argmax(1) == ref).mean():.1f} %")


if __name__ == "__main__":
    main()
