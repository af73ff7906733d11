"""Average the weights of a fine-tuned model with those of the model it started from (a "weight-space
ensemble", WiSE-FT: Wortsman et al., 2022): ``alpha`` of the fine-tuned weights, ``1 - alpha`` of the
start's. Both must be the same architecture, labels and features (a fine-tune with
``trainer.init_from=START``), so the average is one model of the same size and the same compute per window.

    python recipes/commands/soup.py --start speech/pretrained/commands.pt --tuned runs/G3/model.pt \
        --alpha 0.5 --out runs/G3/soup.pt

The output keeps the fine-tuned file's info (recipe settings) with a ``soup`` entry saying what was
averaged; the fine-tune's own measurements (test accuracy, loss, best epoch) move into that entry, since
they are not the average's, and its ``operating_point`` is dropped (a live threshold is chosen again, on DEV, for the new weights).
"""
from __future__ import annotations

import argparse
import sys


# what the fine-tune's training measured of its own weights, not of the average's: kept apart, under "soup"
TUNED_MEASUREMENTS = ("best_epoch", "train_loss", "test_accuracy", "test_count")


def with_fillers_of(start: dict, tuned: dict) -> dict:
    """``start`` as a model with ``tuned``'s filler classes (``model.filler_classes``), when the fine-tune
    added them: its output layer expanded as ``trainer.init_from`` expands it (the same posteriors), so the
    two can be averaged. Otherwise ``start`` unchanged."""
    import dataclasses

    from speech.checkpoint import model_from_payload, model_payload
    from speech.models import ModelConfig, SpeechModel, expanded_head

    fillers = tuned.get("model_config", {}).get("filler_classes", [])
    if start.get("model_config", {}).get("filler_classes", []) == fillers:
        return start
    source = model_from_payload(start)
    model = SpeechModel(dataclasses.replace(source.config, filler_classes=list(fillers)), source.feature_config, source.labels)
    head = expanded_head(source, model)
    if not head:
        return start
    model.load_state_dict({**source.state_dict(), **head})
    if ModelConfig(**tuned["model_config"]) != model.config:
        return start
    return model_payload(model, start.get("info"))


def soup(start: dict, tuned: dict, alpha: float) -> dict:
    """The payload of ``tuned`` with every floating-point tensor ``alpha * tuned + (1 - alpha) * start``
    (``start`` first given ``tuned``'s filler classes, :func:`with_fillers_of`)."""
    from speech.models import ModelConfig

    start = with_fillers_of(start, tuned)
    if ModelConfig(**start.get("model_config", {})) != ModelConfig(**tuned.get("model_config", {})):
        # compared as configs, so a start written before a field existed (its default) matches a fine-tune of it
        raise ValueError("the two models differ in model_config: not a fine-tune of the other")
    for key in ("feature_config", "labels", "sample_rate"):
        if start.get(key) != tuned.get(key):
            raise ValueError(f"the two models differ in {key}: not a fine-tune of the other")
    a, b = start["state_dict"], tuned["state_dict"]
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("the two models' weights differ in names or shapes")
    state = {k: (alpha * b[k] + (1 - alpha) * a[k]).to(b[k].dtype) if b[k].is_floating_point() else b[k] for k in b}
    info = {k: v for k, v in tuned.get("info", {}).items() if k not in ("operating_point", *TUNED_MEASUREMENTS)}
    measured = {k: v for k, v in tuned.get("info", {}).items() if k in TUNED_MEASUREMENTS}
    return {**tuned, "state_dict": state, "info": {**info, "soup": {"alpha": alpha, "tuned_measurements": measured}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", required=True, help="the model the fine-tune started from (model.pt)")
    parser.add_argument("--tuned", required=True, help="the fine-tuned model (model.pt)")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the fine-tuned model, in [0, 1] (default: 0.5)")
    parser.add_argument("--out", required=True, help="the averaged model.pt to write")
    args = parser.parse_args()
    if not 0.0 <= args.alpha <= 1.0:
        sys.exit("--alpha must be in [0, 1]")

    from speech.checkpoint import ModelFileError, atomic_save, read_payload

    try:
        payload = soup(read_payload(args.start), read_payload(args.tuned), args.alpha)
    except (ModelFileError, ValueError) as err:
        sys.exit(f"soup.py: {err}")
    payload["info"]["soup"] = {"start": str(args.start), "tuned": str(args.tuned), **payload["info"]["soup"]}
    atomic_save(payload, args.out)
    print(f"{args.out}: {args.alpha:g} x {args.tuned} + {1 - args.alpha:g} x {args.start}")


if __name__ == "__main__":
    main()
