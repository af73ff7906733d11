"""Operating points: the score threshold a classifier ships with, chosen for a target false-accept rate.

A clip *fires* a command when the model's best class is a command (not ``_unknown_`` or ``_silence_``)
with a probability of at least the threshold. On a labelled set (the validation split), the false-accept
rate is the share of non-command clips (``_unknown_``, ``_silence_``) that fire any command, and the hit
rate the share of command clips that fire their own command. :func:`choose_operating_point` picks the
lowest threshold whose false-accept rate is at most the target, so as many commands as possible still
fire. ``speech train`` saves it in ``model.pt`` (``info["operating_point"]``, with what it was measured on)
when ``trainer.operating_point_far`` is set, and ``speech transcribe``, ``speech listen`` and
:meth:`speech.Model.transcribe` use it when no threshold is given: a command scoring below it is answered
``_unknown_`` (``speech evaluate`` scores the best class unless given ``--threshold``).
"""
from __future__ import annotations

import sys

import torch

NON_COMMANDS = ("_unknown_", "_silence_")


def fire_scores(probabilities: torch.Tensor, labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``probabilities (N, C)`` -> ``(best class (N,), its probability (N,))``, where the best class is
    ``-1`` when it is not a command."""
    best_p, best = probabilities.max(-1)
    command = torch.tensor([label not in NON_COMMANDS for label in labels])
    best = torch.where(command[best], best, torch.full_like(best, -1))
    return best, best_p


def rates_at(threshold: float, best: torch.Tensor, score: torch.Tensor, targets: torch.Tensor,
             is_command: torch.Tensor) -> tuple[float, float]:
    """``(hit rate, false-accept rate)`` at ``threshold``."""
    fires = (best >= 0) & (score >= threshold)
    positives, negatives = is_command[targets], ~is_command[targets]
    hits = (fires & (best == targets) & positives).sum().item()
    false = (fires & negatives).sum().item()
    return hits / max(int(positives.sum()), 1), false / max(int(negatives.sum()), 1)


def choose_operating_point(probabilities: torch.Tensor, targets: torch.Tensor, labels: list[str],
                           target_far: float, measured_on: str = "") -> dict:
    """The lowest threshold (in 0.01 steps, from 0.5) whose false-accept rate on non-command clips is at
    most ``target_far`` (1.0, with ``target_met`` False, when none is). Returns ``{"threshold",
    "target_false_accept_rate", "false_accept_rate", "hit_rate", "commands", "non_commands", "measured_on",
    "target_met"}`` (plain values, for ``model.pt``)."""
    if not 0 < target_far < 1:
        raise ValueError(f"target false-accept rate must be in (0, 1), not {target_far}")
    is_command = torch.tensor([label not in NON_COMMANDS for label in labels])
    targets = targets.long()
    if not is_command[targets].any() or is_command[targets].all():
        raise ValueError("an operating point needs command clips and non-command clips (_unknown_ / _silence_)")
    best, score = fire_scores(probabilities.float(), labels)
    chosen, rates, met = 1.0, rates_at(1.0, best, score, targets, is_command), False
    for step in range(50, 101):  # below 0.5 a second class can outscore the best: not a decision anyone wants
        threshold = step / 100
        hit, far = rates_at(threshold, best, score, targets, is_command)
        if far <= target_far:
            chosen, rates, met = threshold, (hit, far), True
            break
    return {
        "threshold": chosen, "target_false_accept_rate": float(target_far),
        "false_accept_rate": round(rates[1], 5), "hit_rate": round(rates[0], 5),
        "commands": int(is_command[targets].sum()), "non_commands": int((~is_command[targets]).sum()),
        "measured_on": measured_on, "target_met": met,
    }


@torch.no_grad()
def probabilities_of(model, loader, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A classifier's softmax ``(N, C)`` over a loader's batches, with the targets ``(N,)``."""
    model.eval()
    probs, targets = [], []
    for batch in loader:
        output, _ = model(batch["waveform"].to(device), batch["lengths"].to(device))
        probs.append(torch.softmax(output.float().cpu(), -1))
        targets.append(model.fold_targets(batch["targets"]).cpu())
    return torch.cat(probs), torch.cat(targets)


def check_calibration(target_far: float, is_ctc: bool, has_validation: bool, labels: list[str]) -> None:
    """Whether an operating point can be chosen for this training: :class:`ValueError` (one line) if not."""
    if not 0 < target_far < 1:
        raise ValueError(f"must be in (0, 1), not {target_far}")
    if is_ctc or not has_validation or not set(labels) & set(NON_COMMANDS):
        raise ValueError("needs a classifier with _unknown_ or _silence_ among its labels and a validation set")


def calibrate(model, loader, device, labels: list[str], target_far: float, measured_on: str) -> dict:
    """:func:`choose_operating_point` on a classifier's answers over ``loader`` (the validation set), with
    a one-line report on stderr."""
    probabilities, targets = probabilities_of(model, loader, device)
    point = choose_operating_point(probabilities, targets, labels, target_far, f"{measured_on} ({len(targets)} clips)")
    if not point["target_met"]:
        print(f"operating point: no threshold up to 1.0 keeps the false accepts at {target_far}; saved 1.0", file=sys.stderr)
    print(f"operating point: threshold {point['threshold']:.2f}: false accepts {100 * point['false_accept_rate']:.2f} % "
          f"of {point['non_commands']} non-command clips, hits {100 * point['hit_rate']:.1f} % of {point['commands']} "
          "commands (validation set)", file=sys.stderr)
    return point
