"""A second model checks each live detection: does it beat the detector alone? DEV half (``--half test`` once).

Each detection of ``--model`` on the real-speech stream of ``speech bench detection`` (its posteriors replayed
through :class:`~speech.streaming.RecognizeCommands` at every threshold of the benchmark's sweep, the cache
shared with ``speech bench detection --cache DIR``) is kept only when the verifier, run once on the
``--before`` seconds of audio that end at the detection, agrees: a CTC verifier decodes them with a grammar
of the 35 Speech Commands words (the 25 that are no command stand for "some other word") and must answer
the detected command with confidence >= each ``--rejects`` value; a classifier verifier must give it a
posterior >= that value. Rows: the best hit rate within each false-accept budget, as ``decision.py``.

``--crop`` says which audio the verifier hears: ``before`` (the default: the ``--before`` seconds that end at
the detection), ``vad`` (1 s centred on the speech segment that the energy VAD of ``speech listen``'s CTC path,
:class:`~speech.streaming.utterances.EnergyVAD`, last found starting before the detection: the word as an
isolated clip) or ``word`` (1 s centred on the stream's own word there, from its event list: what a perfect
segmentation would give; a bound, not a detector).

    python recipes/commands/second_stage.py --model commands --cache data/detection/cache_final3 \\
        --verifier commands-ctc --rejects 0 0.05 0.2 [--half test]
    python recipes/commands/second_stage.py --model commands --cache data/detection/cache_ship4 \\
        --verifier commands --crop word --rejects 0 0.5 0.75 0.9
"""
from __future__ import annotations

import argparse

from decision import BUDGETS, dev_posteriors

WORDS35 = ("yes no up down left right on off stop go zero one two three four five six seven eight nine "
           "bed bird cat dog happy house marvin sheila tree wow backward forward follow learn visual").split()


def budget_cells(rows: list[dict]) -> list[str]:
    cells = []
    for budget in BUDGETS:
        ok = [r for r in rows if r["false_accepts_per_hour"] <= budget]
        best = max(ok, key=lambda r: (r["hits"], -r["threshold"]), default=None)
        cells.append(f"{100 * best['hits'] / best['commands']:.1f} % ({best['threshold']:g})" if best else "-")
    return cells


def centred_crops(stream, times: list[float], rate: int, crop: str) -> list:
    """1 s of the stream centred on the segment that last started before each time: a VAD segment (``vad``)
    or the stream's own word (``word``)."""
    import bisect

    import torch

    from speech.streaming.utterances import EnergyVAD, VADConfig

    if crop == "word":
        segments = [(e.start, e.end) for e in stream.events]
    else:
        config = VADConfig()
        vad = EnergyVAD(rate, config)
        segments, start = [], None
        for kind, sample in vad.process(stream.audio) + vad.flush():
            if kind == "start":
                start = sample / rate
            elif kind == "end" and start is not None:  # declared a hangover after the last speech frame
                segments.append((start, sample / rate - config.hangover_ms / 1000))
                start = None
            else:
                start = None
    starts = [b for b, _ in segments]
    crops = []
    for t in times:
        b, e = segments[max(0, bisect.bisect_right(starts, t) - 1)]
        lo = min(max(0, int(((b + e) / 2 - 0.5) * rate)), max(0, len(stream.audio) - rate))
        crops.append(torch.as_tensor(stream.audio[lo : lo + rate]).float())
    return crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="commands")
    parser.add_argument("--verifier", nargs="+", default=["commands-ctc"])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--cache", help="the posterior cache of speech bench detection")
    parser.add_argument("--half", default="dev", choices=("dev", "test"))
    parser.add_argument("--before", type=float, nargs="+", default=[1.0], help="seconds of audio the verifier hears")
    parser.add_argument("--rejects", type=float, nargs="+", default=[0.0])
    parser.add_argument("--crop", default="before", choices=("before", "vad", "word"))
    args = parser.parse_args()

    import torch

    from speech.bench.detection import replay, score_stream
    from speech.bench.detection_data import DEFAULT_THRESHOLDS
    from speech.recognizer import DecodeOptions
    from speech.streaming import SmoothingConfig
    from speech.transcribe import load_recognizer

    torch.set_num_threads(1)
    rec, stream, post = dev_posteriors(args.model, args.data, args.cache, {}, say=lambda line: None, half=args.half)
    rate, seconds = rec.sample_rate, len(stream.audio) / rec.sample_rate
    fired = {t: replay(post.times, post.probabilities, rec.labels, SmoothingConfig(detection_threshold=t))
             for t in DEFAULT_THRESHOLDS}
    times = sorted({f.time for found in fired.values() for f in found})
    print(f"| verifier | seconds heard | floor | " + " | ".join(f"<= {b} FA/h" for b in BUDGETS) + " |")
    print("|---|---:|---:|" + "---:|" * len(BUDGETS))
    for path in args.verifier:
        verifier = load_recognizer(path, "cpu", batch_size=64, engine="torch", threads=1)
        for before in args.before:
            crops = [torch.as_tensor(stream.audio[max(0, int((t - before) * rate)): int(t * rate)]).float() for t in times] \
                if args.crop == "before" else centred_crops(stream, times, rate, args.crop)
            if verifier.is_ctc:
                results = verifier.recognize(crops, DecodeOptions(grammar=WORDS35, reject=0.0))
                answer = {t: (r.text, r.confidence or 0.0) for t, r in zip(times, results)}
            else:
                probs = [torch.softmax(o, -1) for o in verifier.forward(crops)]
                answer = {t: (verifier.labels[int(p.argmax())], float(p.max())) for t, p in zip(times, probs)}
            for floor in args.rejects:
                rows = [{"threshold": t, **score_stream([f for f in found if answer[f.time][0] == f.label
                                                          and answer[f.time][1] >= floor], stream.events, seconds)}
                        for t, found in fired.items()]
                heard = f"{before:g}" if args.crop == "before" else f"1, centred ({args.crop})"
                print(f"| {path} | {heard} | {floor:g} | " + " | ".join(budget_cells(rows)) + " |", flush=True)
    rows = [{"threshold": t, **score_stream(found, stream.events, seconds)} for t, found in fired.items()]
    print(f"| (the detector alone) | | | " + " | ".join(budget_cells(rows)) + " |")
    print(f"\n{args.half.upper()} real-speech stream: {seconds / 60:.1f} min, {len(stream.events)} words")


if __name__ == "__main__":
    main()
